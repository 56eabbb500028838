#!/usr/bin/env bash
# Installs the real browsers the tests drive and what they need to run without a screen:
# - chromium renders `tessera conform --html` pages (headless; screenshot under
#   target/tmp/conformance-report/);
# - firefox-esr logs into the login lab with a card (headful on an Xvfb display, the PIN typed into
#   Firefox's own dialog by xdotool; screenshots under target/tmp/browser-login/).
# Idempotent; scripts/pcsc-install.sh runs it, so CI has the browsers too.
set -euo pipefail

packages=(chromium firefox-esr xvfb xdotool)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "browser-install: not a Debian-based system; install by hand: ${packages[*]}" >&2
  exit 1
fi
missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "${package}" 2>/dev/null || true)
  if [[ "${status}" != "install ok installed" ]]; then
    missing+=("${package}")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "browser-install: ${packages[*]} already installed"
  exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
  echo "browser-install: missing ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "browser-install: installing ${missing[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
