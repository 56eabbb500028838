//! A card image someone hands you may be crafted: checksum valid, structure hostile. Every byte of a real
//! PIV card's image is mutated in turn (two mutations each), the checksum recomputed so the image passes
//! the integrity check, and the card opened and driven through a PIV session. Opening may refuse the
//! image (with the file named) and the applet may answer status words, but nothing may panic.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};

use card_os::{Card, Durability};
use sha2::{Digest, Sha256};
use support::*;

const CHECKSUM_LEN: usize = 32;
/// Magic (13), version (2), body length (4): the body starts here.
const BODY_START: usize = 19;

/// A personalized-looking PIV card: a key in 9A, the PIN changed, a CHUID written.
fn real_image(path: &std::path::Path) -> Vec<u8> {
    let mut card = card();
    default_auth(&mut card);
    generate(&mut card, 0x9A);
    assert_eq!(
        put_object(&mut card, &h("5FC102"), &h("3019D4E739DA739CED39CE739D836858210842108421C84210C3EB341000112233445566778899AABBCCDDEEFF350832303330303130313E00FE00")),
        0x9000
    );
    assert_eq!(
        sw(&tx(
            &mut card,
            "00 24 00 80 10 31 32 33 34 35 36 FF FF 38 37 36 35 34 33 32 31"
        )),
        "9000"
    );
    card.save_new(path).expect("save");
    drop(card);
    std::fs::read(path).expect("read image")
}

/// What a host would do with a card it was handed.
const SESSION: &[&str] = &[
    SELECT_5,
    "00 CB 3F FF 05 5C 03 5F C1 02 00",
    "00 20 00 80 00",
    "00 20 00 80 08 38 37 36 35 34 33 32 31",
    "00 F7 00 9A 00",
    "00 F7 00 80 00",
    "00 87 11 9A 26 7C 24 82 00 81 20 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12 13 14 15 16 17 18 19 1A 1B 1C 1D 1E 1F 00",
    "00 CB 3F FF 05 5C 03 5F C1 05 00",
    "00 FD 00 00 00",
    "00 F8 00 00 00",
];

fn with_checksum(mut bytes: Vec<u8>) -> Vec<u8> {
    let signed = bytes.len() - CHECKSUM_LEN;
    let checksum = Sha256::digest(&bytes[..signed]);
    bytes[signed..].copy_from_slice(&checksum);
    bytes
}

#[test]
fn every_byte_of_a_checksum_valid_image_mutated_never_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original_path = dir.path().join("original.img");
    let original = real_image(&original_path);
    let hostile = dir.path().join("hostile.img");
    let registry = registry();

    // Quiet: a panic is caught and reported below, with the byte that caused it and where it fired.
    static LAST_PANIC: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = info.to_string();
        }
    }));
    let mut panics = Vec::new();
    let mut refused = 0usize;
    for position in BODY_START..original.len() - CHECKSUM_LEN {
        for mutation in [0x01u8, 0xFF] {
            let mut bytes = original.clone();
            bytes[position] ^= mutation;
            std::fs::write(&hostile, with_checksum(bytes)).expect("write");
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                match Card::open(&hostile, &registry, Durability::Relaxed) {
                    Err(error) => {
                        assert!(
                            error.to_string().contains("hostile.img"),
                            "the refusal names the file: {error}"
                        );
                        false
                    }
                    Ok(mut card) => {
                        for apdu in SESSION {
                            let _ = card.transmit(&h(apdu));
                        }
                        true
                    }
                }
            }));
            match outcome {
                Ok(false) => refused += 1,
                Ok(true) => {}
                Err(_) => panics.push((
                    position,
                    mutation,
                    LAST_PANIC.lock().map(|m| m.clone()).unwrap_or_default(),
                )),
            }
        }
    }
    let _ = std::panic::take_hook();
    assert!(refused > 0, "some mutations must be refused at open");
    assert!(
        panics.is_empty(),
        "{} mutated images panicked (byte offset, xor, panic): {:#?}",
        panics.len(),
        &panics[..panics.len().min(4)]
    );
}
