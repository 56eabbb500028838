//! Error status words a real PIV card / YubiKey gives, one by one.

#![allow(clippy::unwrap_used)]

mod support;

use support::*;

#[test]
fn transport_level_errors() {
    let mut card = card();
    assert_eq!(tx(&mut card, "00 99 00 00"), "6D00");
    assert_eq!(tx(&mut card, "80 FD 00 00"), "6E00");
    assert_eq!(tx(&mut card, "00 FD 00 01"), "6A86");
    assert_eq!(tx(&mut card, "00 FD 00 00 01 00"), "6700");
    assert_eq!(tx(&mut card, "00 F8 01 00"), "6A86");
    assert_eq!(tx(&mut card, "00 CB 3F FF"), "6700");
    assert_eq!(tx(&mut card, "00 CB 3F FE 05 5C 03 5F C1 02"), "6A86");
    assert_eq!(tx(&mut card, "00 CB 3F FF 05 5C 03 5F C2 02"), "6A82");
    assert_eq!(tx(&mut card, "00 CB 3F FF 04 5C 03 5F C1"), "6A80");
    assert_eq!(tx(&mut card, "00 CB 3F FF 05 53 03 5F C1 02"), "6A80");
}

#[test]
fn pin_errors() {
    let mut card = card();
    assert_eq!(tx(&mut card, "00 20 00 80 06 31 32 33 34 35 36"), "6A80");
    assert_eq!(tx(&mut card, "00 20 00 82"), "6A86");
    assert_eq!(tx(&mut card, "00 20 00 00"), "6A88");
    assert_eq!(tx(&mut card, "00 20 01 80"), "6A86");
    assert_eq!(tx(&mut card, "00 20 FF 80 08 313233343536FFFF"), "6700");
    assert_eq!(
        tx(
            &mut card,
            "00 2C 00 81 10 3132333435363738 3131313131313131"
        ),
        "6A86"
    );
    assert_eq!(tx(&mut card, "00 2C 00 80 08 3132333435363738"), "6A80");
    // None of that spent a try.
    assert_eq!(tx(&mut card, "00 20 00 80"), "63C3");
    // PUK VERIFY and its status.
    assert_eq!(tx(&mut card, "00 20 00 81 08 3132333435363730"), "63C2");
    assert_eq!(tx(&mut card, "00 20 00 81"), "63C2");
    assert_eq!(tx(&mut card, "00 20 00 81 08 3132333435363738"), "9000");
}

#[test]
fn key_errors() {
    let mut card = card();
    default_auth(&mut card);
    // An algorithm that does not exist, and slots without keys.
    assert_eq!(tx(&mut card, "00 47 00 9A 05 AC 03 80 01 99"), "6A80");
    assert_eq!(tx(&mut card, "00 47 00 9B 05 AC 03 80 01 11"), "6A86");
    assert_eq!(tx(&mut card, "00 47 00 F9 05 AC 03 80 01 11"), "6A86");
    assert_eq!(tx(&mut card, "00 47 01 9A 05 AC 03 80 01 11"), "6A86");
    assert_eq!(tx(&mut card, "00 47 00 9A 03 80 01 11"), "6A80");
    assert_eq!(
        tx(&mut card, "00 47 00 9A 08 AC 06 80 01 11 AA 01 07"),
        "6A80"
    );
    // Sign with an empty slot, wrong algorithm, oversize hash, bad template.
    assert_eq!(sign(&mut card, 0x9A, &[1; 32]).1, 0x6A88);
    generate(&mut card, 0x9E);
    assert_eq!(sign(&mut card, 0x9E, &[1; 33]).1, 0x6A80);
    // An RSA block to a P-256 key: the slot holds another algorithm (6A 86); an RSA-2048 input that
    // is not one 256-byte block is malformed whatever the slot holds (6A 80).
    let mut rsa_block = h("00 87 07 9E 00 01 0A 7C 82 01 06 82 00 81 82 01 00");
    rsa_block.extend_from_slice(&[0x11; 256]);
    assert_eq!(tx_all(&mut card, &rsa_block).1, 0x6A86);
    assert_eq!(tx(&mut card, "00 87 07 9E 07 7C 05 82 00 81 01 AA"), "6A80");
    assert_eq!(tx(&mut card, "00 87 11 9E 04 7C 02 80 00"), "6A80");
    assert_eq!(tx(&mut card, "00 87 11 9E 04 7C 02 82 00"), "6A80");
    assert_eq!(tx(&mut card, "00 87 11 9E 03 7C 02 82"), "6A80");
    // ECDH with a short point.
    assert_eq!(
        tx(&mut card, "00 87 11 9E 08 7C 06 82 00 85 02 04 01"),
        "6A80"
    );
    // Import with a malformed body, an unknown algorithm.
    assert_eq!(tx(&mut card, "00 FE 11 9A 04 06 02 01 02"), "6A80");
    assert_eq!(tx(&mut card, "00 FE 14 9A 04 06 02 01 02"), "6A80");
    // Move: the attestation key cannot move; an empty source is 6A88.
    assert_eq!(tx(&mut card, "00 F6 9A F9"), "6A86");
    assert_eq!(tx(&mut card, "00 F6 9A 9D"), "6A88");
    // Attest: F9 itself and unknown slots.
    assert_eq!(tx(&mut card, "00 F9 F9 00"), "6A86");
    assert_eq!(tx(&mut card, "00 F9 9E 01"), "6A86");
}

#[test]
fn management_errors() {
    let mut card = card();
    // Management operations without authentication.
    assert_eq!(
        tx(
            &mut card,
            "00 FF FF FF 1B 03 9B 18 010203040506070801020304050607080102030405060708"
        ),
        "6982"
    );
    assert_eq!(tx(&mut card, "00 FA 03 03"), "6982");
    assert_eq!(tx(&mut card, "00 F6 FF 9A"), "6982");
    // Wrong algorithm for the stored key; bad set-key P1/P2 and body.
    assert_eq!(tx(&mut card, "00 87 0C 9B 04 7C 02 80 00"), "6A86");
    default_auth(&mut card);
    assert_eq!(
        tx(
            &mut card,
            "00 FF FF 00 1B 03 9B 18 010203040506070801020304050607080102030405060708"
        ),
        "6A86"
    );
    assert_eq!(
        tx(
            &mut card,
            "00 FF FF FF 1B 03 9A 18 010203040506070801020304050607080102030405060708"
        ),
        "6A80"
    );
    assert_eq!(
        tx(
            &mut card,
            "00 FF FF FF 1B 05 9B 18 010203040506070801020304050607080102030405060708"
        ),
        "6A80"
    );
    // A mutual response of the wrong block size.
    tx(&mut card, "00 87 03 9B 04 7C 02 80 00");
    assert_eq!(
        tx(&mut card, "00 87 03 9B 0A 7C 08 80 02 0000 81 02 0000"),
        "6A80"
    );
    // FA needs the PIN too.
    assert_eq!(tx(&mut card, "00 FA 03 03"), "6982");
    // Reset before blocking.
    assert_eq!(tx(&mut card, "00 FB 00 00"), "6985");
    assert_eq!(tx(&mut card, "00 FB 01 00"), "6A86");
}

#[test]
fn sensitive_commands_are_redacted() {
    use card_os::apdu::Command;
    let applet = piv_applet::factory();
    let sensitive = |apdu: &str| applet.is_sensitive(&Command::from_bytes(&h(apdu)).unwrap());
    assert!(sensitive("00 20 00 80 08 313233343536FFFF"));
    assert!(sensitive("00 24 00 80 10 313233343536FFFF313233343536FFFF"));
    assert!(sensitive("00 2C 00 80 10 313233343536FFFF313233343536FFFF"));
    assert!(sensitive("00 FF FF FF 03 03 9B 00"));
    assert!(sensitive("00 FE 11 9A 02 06 00"));
    assert!(sensitive("00 87 03 9B 04 7C 02 80 00"));
    assert!(!sensitive("00 87 11 9A 04 7C 02 82 00"));
    assert!(!sensitive("00 CB 3F FF 03 5C 01 7E"));
}

#[test]
fn wrong_puk_is_compared_before_the_new_pin_is_judged() {
    // ykman blocks the PUK by sending all-FF PUK and PIN and expects 63 Cx each time, as a YubiKey
    // answers; the malformed new PIN must not short-circuit the PUK comparison.
    let mut card = card();
    tx(&mut card, SELECT_5);
    let all_ff = format!("00 2C 00 80 10 {}", "FF".repeat(16));
    for expected in ["63C2", "63C1", "63C0", "6983"] {
        assert_eq!(tx(&mut card, &all_ff), expected);
    }
    // The same for CHANGE REFERENCE DATA on the PIN.
    let mut card = card_with(1, Vec::new());
    tx(&mut card, SELECT_5);
    assert_eq!(
        tx(&mut card, &format!("00 24 00 80 10 {}", "FF".repeat(16))),
        "63C2"
    );
    // Right old PIN, malformed new one: 6A80, and the counter is full again.
    let right_old_bad_new = format!("00 24 00 80 10 313233343536FFFF {}", "FF".repeat(8));
    assert_eq!(tx(&mut card, &right_old_bad_new), "6A80");
    card.reset();
    tx(&mut card, SELECT_5);
    assert_eq!(tx(&mut card, "00 20 00 80"), "63C3");
}

#[test]
fn algorithm_00_is_triple_des_for_a_challenge_request() {
    // OpenSC's C_GenerateRandom asks for a 9B challenge with algorithm 00 (3-key TDEA in SP 800-78).
    let mut card = card();
    tx(&mut card, SELECT_5);
    let answer = tx(&mut card, "00 87 00 9B 04 7C 02 81 00 00");
    assert_eq!(&answer[..8], "7C0A8108", "{answer}");
    assert_eq!(sw(&answer), "9000");
    let mut other = card_with(3, Vec::new());
    tx(&mut other, SELECT_5);
    assert_ne!(tx(&mut other, "00 87 00 9B 04 7C 02 81 00 00"), answer);
}
