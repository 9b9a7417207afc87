#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs Debian's docker.io and starts dockerd when
# `docker info` fails. Needs root. Used by the suites and scripts that run real containers.
set -euo pipefail
# The overlay data plane's tools (nft, conntrack) come with the engine: the agent needs both.
if ! command -v conntrack >/dev/null 2>&1 || ! command -v nft >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq conntrack nftables >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq conntrack nftables >/dev/null; }
fi
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 1
  done
  echo "ensure-docker: dockerd did not come up; see /var/log/dockerd.log" >&2
  exit 1
fi
