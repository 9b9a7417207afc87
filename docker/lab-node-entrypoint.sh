#!/bin/sh
# A lab node's first process: starts this node's own Docker engine, waits until it answers, then
# boots the node as shoal-entrypoint (docker/entrypoint.sh) does: SHOAL_BOOTSTRAP=init|manager|worker
# the first time, `shoald run` on every later start; with arguments, runs them instead. Killing the
# container (`shoal lab stop`) takes the engine and every task container with it, as powering off
# a host does; starting it again boots the host: its engine, then its shoald.
# SHOAL_LAB_REGISTRY (ADDR:PORT, set by `shoal lab up`): the lab's registry, which this engine
# pulls from over plain HTTP (it serves no TLS: it lives on the lab's private network).
set -eu
rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid 2>/dev/null || true
registry_flag=
if [ -n "${SHOAL_LAB_REGISTRY:-}" ]; then registry_flag="--insecure-registry=$SHOAL_LAB_REGISTRY"; fi
dockerd --host unix:///var/run/docker.sock ${registry_flag:+"$registry_flag"} >/var/log/dockerd.log 2>&1 &
i=0
until docker info >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -gt 60 ]; then
    echo "lab-node: dockerd did not answer within 60 s:" >&2
    tail -20 /var/log/dockerd.log >&2
    exit 1
  fi
  sleep 1
done
exec shoal-entrypoint "$@"
