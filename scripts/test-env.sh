#!/usr/bin/env bash
# Everything the Docker-backed tests need: a running Docker engine (scripts/ensure-docker.sh),
# the offline test image shoal/busybox:latest (scripts/build-test-image.sh), a Compose tool
# (scripts/ensure-compose.sh; test/deploy builds the Shoal images itself) and Debian's chromium
# for the dashboard's browser test (scripts/ensure-chromium.sh). Needs root.
# Idempotent; takes about a second when all four are already in place.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/ensure-docker.sh"
bash "$here/build-test-image.sh" >/dev/null
bash "$here/ensure-compose.sh" >/dev/null
bash "$here/ensure-chromium.sh"
