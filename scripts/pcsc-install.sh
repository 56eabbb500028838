#!/usr/bin/env bash
# Installs what the PC/SC path needs on Debian: pcscd with the vpcd driver, the pcsc
# crate's build dependency, and the real-peer tools the conformance tests drive.
# Idempotent: installs only what is missing, and nothing when all is there.
set -euo pipefail

packages=(
  pcscd libpcsclite-dev pcsc-tools opensc opensc-pkcs11 vsmartcard-vpcd
  yubico-piv-tool libnss3-tools pkg-config
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "pcsc-install: not a Debian-based system; install by hand: ${packages[*]}" >&2
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
  echo "pcsc-install: all ${#packages[@]} packages already installed; nothing to do"
  exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
  echo "pcsc-install: missing ${missing[*]}; run as root to install them" >&2
  exit 1
fi

echo "pcsc-install: installing ${missing[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
echo "pcsc-install: installed ${missing[*]}"
