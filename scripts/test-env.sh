#!/usr/bin/env bash
# Everything the Docker-backed tests need: a running Docker engine (scripts/ensure-docker.sh) and
# the offline test image shoal/busybox:latest (scripts/build-test-image.sh). Needs root.
# Idempotent; takes well under a second when both are already in place.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/ensure-docker.sh"
bash "$here/build-test-image.sh" >/dev/null
