#!/usr/bin/env bash
# Makes sure a Compose tool runs docker-compose.yml: `docker-compose` (Debian 12's 1.29, the v1
# tool) or the `docker compose` plugin; installs Debian's docker-compose when neither answers.
# Needs root for the install. Prints the command to use ("docker-compose" or "docker compose").
set -euo pipefail
if docker-compose version >/dev/null 2>&1; then echo docker-compose; exit 0; fi
if docker compose version >/dev/null 2>&1; then echo "docker compose"; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq docker-compose >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq docker-compose >/dev/null
fi
docker-compose version >/dev/null
echo docker-compose
