#!/usr/bin/env bash
# One-time set-up on a fresh machine: install the locked dependencies and build every package.
# Idempotent. (Docker is installed and started by scripts/ensure-docker.sh, for the suites that
# need it.)
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
npm run build
