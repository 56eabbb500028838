//! What ykman reads from the management applet, byte for byte.
#![allow(clippy::unwrap_used)]

use card_os::{AppletRegistry, Card, CardConfig, Installation, Storage};

fn new_card(params: Vec<u8>) -> Result<Card, card_os::CardOsError> {
    let registry =
        AppletRegistry::new().register(yubikey_mgmt_applet::aid(), yubikey_mgmt_applet::factory);
    let installation = Installation {
        aid: yubikey_mgmt_applet::aid(),
        params,
        default_selected: false,
    };
    Card::create(
        CardConfig::default(),
        &registry,
        &[installation],
        Storage::Memory,
    )
}

fn tx(card: &mut Card, apdu: &str) -> String {
    let bytes = hex::decode(apdu.replace(' ', "")).unwrap();
    hex::encode_upper(card.transmit(&bytes).unwrap())
}

const SELECT: &str = "00 A4 04 00 08 A0 00 00 05 27 47 11 17";

#[test]
fn select_names_the_version_and_read_config_describes_the_device() {
    let mut card = new_card(yubikey_mgmt_applet::install_params(Some(0x0123_4567))).unwrap();
    let select = tx(&mut card, SELECT);
    assert_eq!(
        select,
        format!(
            "{}9000",
            hex::encode_upper(b"tessera mgmt - FW version 5.7.1")
        )
    );
    // len 0x19 (25 bytes of TLVs); USB supported PIV; serial; USB enabled PIV; form factor USB-A; version; unlocked.
    assert_eq!(
        tx(&mut card, "00 1D 00 00 00"),
        "19 01020010 020401234567 03020010 040101 0503050701 0A0100 9000".replace(' ', "")
    );
    // No further page.
    assert_eq!(tx(&mut card, "00 1D 01 00 00"), "009000");
}

#[test]
fn without_a_serial_the_tag_is_left_out() {
    let mut card = new_card(Vec::new()).unwrap();
    tx(&mut card, SELECT);
    assert_eq!(
        tx(&mut card, "00 1D 00 00 00"),
        "13 01020010 03020010 040101 0503050701 0A0100 9000".replace(' ', "")
    );
}

#[test]
fn what_it_does_not_do_is_refused_with_its_status_word() {
    let mut card = new_card(Vec::new()).unwrap();
    tx(&mut card, SELECT);
    assert_eq!(tx(&mut card, "00 1C 00 00 02 0000"), "6D00", "WRITE CONFIG");
    assert_eq!(tx(&mut card, "00 16 11 00 00"), "6D00", "SET MODE");
    assert_eq!(tx(&mut card, "80 1D 00 00 00"), "6E00");
    assert_eq!(tx(&mut card, "00 1D 00 01 00"), "6A86");
    assert_eq!(tx(&mut card, "00 1D 00 00 01 00"), "6700");
    assert!(new_card(vec![1, 2, 3]).is_err(), "a serial is 4 bytes");
}
