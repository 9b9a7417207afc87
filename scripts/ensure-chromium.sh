#!/usr/bin/env bash
# Makes sure Debian's chromium is installed: the dashboard's browser test (test/ui) drives it
# headless through puppeteer-core. Needs root for the install; does nothing when it is there.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq chromium >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
command -v chromium >/dev/null
