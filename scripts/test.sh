#!/usr/bin/env bash
# The README's test command: set up everything the tests need on a fresh Debian 12 machine
# (dependencies and build, a Docker engine and the offline busybox test image, the lab node image;
# needs root for the Docker part), then run every suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
bash scripts/test-env.sh
# Built once per run here (debootstrap: a few minutes the first time), not inside a test's hook.
bash scripts/build-lab-image.sh >/dev/null
npm test
