#!/usr/bin/env bash
# Installs what the PC/SC path needs on Debian: pcscd with the vpcd driver, the pcsc
# crate's build dependency, and the real-peer tools the conformance tests drive.
# Idempotent: installs only what is missing, and nothing when all is there.
set -euo pipefail

packages=(
  pcscd libpcsclite-dev pcsc-tools opensc opensc-pkcs11 vsmartcard-vpcd
  yubico-piv-tool libnss3-tools pkg-config poppler-utils
  libengine-pkcs11-openssl curl
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

# ykman (PyPI) is the most demanding YubiKey PIV client; the interop tests drive it. Pinned.
ykman_version=5.9.2
install_ykman() {
  if command -v ykman >/dev/null 2>&1 && ykman --version 2>/dev/null | grep -q "${ykman_version}"; then
    return 0
  fi
  if ! command -v pip3 >/dev/null 2>&1 && ! command -v pip >/dev/null 2>&1; then
    echo "pcsc-install: no pip; install yubikey-manager==${ykman_version} by hand for the ykman tests" >&2
    return 1
  fi
  echo "pcsc-install: installing yubikey-manager==${ykman_version} (ykman) from PyPI"
  "$(command -v pip3 || command -v pip)" install --quiet --disable-pip-version-check "yubikey-manager==${ykman_version}"
}

# The HTML conformance report is checked in a real browser (its own script, so it can be run alone).
install_browser() {
  bash "$(dirname "$0")/browser-install.sh"
}

if ((${#missing[@]} == 0)); then
  echo "pcsc-install: all ${#packages[@]} packages already installed"
  install_ykman
  install_browser
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
install_ykman
install_browser
