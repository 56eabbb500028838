#!/usr/bin/env bash
# Installs Debian's chromium, which the HTML-report test renders `tessera conform --html` pages with
# (headless, screenshot kept under target/tmp/conformance-report/). Idempotent; scripts/pcsc-install.sh
# runs it, so CI has the browser too.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "browser-install: chromium already installed"
  exit 0
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "browser-install: not a Debian-based system; install chromium by hand" >&2
  exit 1
fi
if [[ "$(id -u)" -ne 0 ]]; then
  echo "browser-install: chromium missing; run as root to install it" >&2
  exit 1
fi
echo "browser-install: installing chromium"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
