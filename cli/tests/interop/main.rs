//! The interop matrix: `tessera serve` plugged into a private pcscd (vpcd), driven by the real middleware
//! — yubico-piv-tool, ykman, OpenSC (opensc-tool, piv-tool, pkcs11-tool) and NSS (certutil/modutil) — with
//! every result checked in the tools' own output, not only by exit code.
//!
//! Each test function starts its own pcscd and card, so they are independent; they take turns on the
//! cross-process pcscd lock. Run with `cargo test -p tessera --test interop -- --nocapture` to see each
//! step and tool invocation (secrets masked). A failing assertion prints the command line, exit code and
//! the tool's combined output.
//!
//! # Known issues and skips
//! Each entry is asserted as it is today, so the test breaks — and the entry must be revisited — when the
//! tool or the card changes.
//!
//! - **yubico-piv-tool 2.2.0 `selfsign-certificate` fails client-side** ("Failed signing certificate.")
//!   before it sends any signing APDU: it signs by hooking a legacy EC_KEY_METHOD into the public key and
//!   calling `X509_sign`, which OpenSSL 3 routes through its provider instead, so the card is never asked
//!   (upstream Yubico/yubico-piv-tool#388). Asserted: exit ≠ 0 and no `00 87` GENERAL AUTHENTICATE in the
//!   `--verbose=2` trace after the PIN VERIFY. Workaround: the certificate is issued by a throwaway openssl
//!   CA for the card's public key (`openssl x509 -req -force_pubkey`), then `import-certificate`.
//!   `test-signature` is NOT affected (upstream #412 concerns file signing with EC keys): its success is
//!   asserted.
//! - **OpenSC 0.23 `piv-tool -G 9D:11` fails client-side** with "gen_key unable to gen EC key … invalid
//!   curve": its gen_key passes `sizeof(group_name)` (a pointer: 8) as the length of the curve name, so
//!   OpenSSL 3 is asked for curve "prime256" (fixed upstream in OpenSC commit 98f640c4, "piv-tool: fixed
//!   CID 380538", released in 0.24.0). Asserted: mutual authentication succeeds and the card answers
//!   `7F 49 43 86 41 04 ‖ X ‖ Y 90 00` in the `OPENSC_DEBUG=3` log; the key's presence is then proven by
//!   `yubico-piv-tool -a attest -s 9d` carrying that same point, and it is used for ECDH via PKCS#11.
//! - **ykman needs the `ykman` ATR preset**: ykman decides USB vs NFC from the ATR (T0 high nibble F → USB)
//!   and then insists on a "Yubico YubiKey" reader name; with tessera's default ATR (T0 = FB) it prints
//!   "Failed to connect to YubiKey." — asserted by `ykman::default_atr_is_refused_as_a_usb_yubikey`. The
//!   `--atr ykman` preset drops the zero TB1 byte (T0 = DB) so ykman takes the NFC path.
//! - **ykman is skipped when not installed**, unless `TESSERA_INTEROP_REQUIRE_ALL=1` is set, as
//!   `scripts/test.sh` (and so CI) does; `scripts/pcsc-install.sh` installs the pinned ykman from PyPI.
//!   Every other tool is always required.
//! - **pkcs11-tool `--test` signs with RSA keys only** ("non-RSA, skipping"), so its "No errors" does not
//!   cover EC signing: the ECDSA signature is checked separately (`pkcs11-tool --sign` + `openssl dgst
//!   -verify`), and OpenSC's PIV CI flow (`opensc::opensc_piv_ci_flow_with_rsa_and_p256`) puts RSA keys
//!   in 9A and 9E so that `--test` signs, verifies and decrypts on the card.
//! - **Ed25519 and X25519 are exercised through ykman only** (`ykman::ykman_ed25519_and_x25519`): OpenSC
//!   0.23 and yubico-piv-tool 2.2 have no algorithm E0/E1; the card-level checks against RFC 8032 and
//!   RFC 7748 vectors are in `applets/piv/tests/curve25519.rs`.

mod cns;
mod opensc;
mod persistence;
mod support;
mod ykman;
mod yubico_piv_tool;
