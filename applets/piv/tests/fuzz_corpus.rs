//! Replays the fuzz inputs of the `install_params` and `card_image` targets (`fuzz/seeds/<target>/`,
//! written by `write_fuzz_seeds` below, and `fuzz/corpus/<target>/`, minimized by `cargo fuzz cmin`)
//! as ordinary tests, through the very properties the targets check (`fuzz/src/card_properties.rs`).
//!
//! Seeds: `cargo test -p piv-applet --test fuzz_corpus write_fuzz_seeds -- --ignored`.
#![allow(clippy::unwrap_used)]

#[path = "../../../fuzz/src/card_properties.rs"]
mod card_properties;
#[path = "../../../fuzz/src/corpus.rs"]
mod corpus;
#[path = "../../../fuzz/src/piv_model.rs"]
mod piv_model;
mod support;

use std::path::{Path, PathBuf};

use support::*;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

#[test]
fn the_install_params_corpus_replays() {
    let replayed = corpus::replay(
        &fuzz_dir(),
        "install_params",
        card_properties::install_params,
    );
    assert!(replayed >= 2, "the seeds are there");
}

#[test]
fn the_card_image_corpus_replays() {
    let replayed = corpus::replay(&fuzz_dir(), "card_image", card_properties::card_image);
    assert!(replayed >= 2, "the seeds are there");
}

#[test]
fn the_piv_session_corpus_replays() {
    let replayed = corpus::replay(&fuzz_dir(), "piv_session", piv_model::piv_session);
    assert!(replayed >= 5, "the seeds are there");
}

#[test]
fn the_image_seeds_decode() {
    // The seeds are real images: as files (even first byte) and as framed bodies (odd).
    for name in ["piv-card-file.bin", "piv-card-body.bin"] {
        let path = fuzz_dir().join("seeds/card_image").join(name);
        let data = std::fs::read(&path).unwrap();
        let bytes = match data.split_first() {
            Some((first, body)) if first % 2 == 1 => card_properties::framed(body),
            Some((_, file)) => file.to_vec(),
            None => Vec::new(),
        };
        assert!(
            card_os::store::CardImage::decode(&bytes, &path).is_ok(),
            "{name}"
        );
    }
}

#[test]
#[ignore = "writes fuzz/seeds/install_params, fuzz/seeds/card_image and fuzz/seeds/piv_session"]
fn write_fuzz_seeds() {
    let params = fuzz_dir().join("seeds/install_params");
    std::fs::create_dir_all(&params).unwrap();
    std::fs::write(
        params.join("default.bin"),
        piv_applet::InstallParams::default().to_bytes(),
    )
    .unwrap();
    std::fs::write(params.join("empty.bin"), b"").unwrap();

    let images = fuzz_dir().join("seeds/card_image");
    std::fs::create_dir_all(&images).unwrap();
    let mut card = card();
    default_auth(&mut card);
    generate(&mut card, 0x9A);
    let image = card.image_bytes();
    let mut file = vec![0x00];
    file.extend_from_slice(&image);
    std::fs::write(images.join("piv-card-file.bin"), file).unwrap();
    // The body alone (after magic, version and length; before the checksum), to be framed.
    let mut body = vec![0x01];
    body.extend_from_slice(&image[19..image.len() - 32]);
    std::fs::write(images.join("piv-card-body.bin"), body).unwrap();

    let sessions = fuzz_dir().join("seeds/piv_session");
    std::fs::create_dir_all(&sessions).unwrap();
    for (name, ops) in piv_session_seeds() {
        std::fs::write(sessions.join(name), ops.concat()).unwrap();
    }
}

/// Operation sequences in the `piv_session` encoding (`fuzz/src/piv_model.rs`, `decode`): one op per
/// slice, its first byte the operation.
fn piv_session_seeds() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    const AUTHENTICATE: &[u8] = &[8, 0];
    const VERIFY_PIN: &[u8] = &[2, 0, 0];
    let wrong_pin = [&[2u8, 0, 3][..], b"99999999"].concat();
    let wrong_puk = [&[2u8, 1, 3][..], b"99999999"].concat();
    // Sign: slot index, curve (0 P-256, 1 P-384), a hash of the curve's length.
    let sign = |slot: u8| [&[14u8, slot, 0][..], &[0x5A; 32]].concat();
    let sign384 = |slot: u8| [&[14u8, slot, 1][..], &[0x5A; 48]].concat();
    // A new value of six digits: kind 4 (length 5 + 1), then the digits.
    let new_pin = |digits: &[u8; 6]| [&[4u8][..], digits].concat();
    vec![
        (
            "keys.bin",
            vec![
                AUTHENTICATE.to_vec(),
                // Generate: slot index, curve, PIN policy, touch policy.
                vec![12, 0, 0, 0, 0],
                VERIFY_PIN.to_vec(),
                sign(0),
                vec![12, 1, 0, 3, 2],
                sign(1),
                sign(1),
                // Import: slot index, curve, scalar kind (2: from the input), scalar, PIN policy.
                vec![13, 2, 0, 2]
                    .into_iter()
                    .chain([0x42; 32])
                    .chain([1])
                    .collect(),
                sign(2),
                vec![15, 0, 1, 4],
                vec![18, 4],
            ],
        ),
        (
            "p384-keys.bin",
            vec![
                AUTHENTICATE.to_vec(),
                vec![12, 2, 1, 0, 0],
                VERIFY_PIN.to_vec(),
                sign384(2),
                // The P-256 algorithm in P1 on a P-384 key: 6A 86.
                sign(2),
                vec![13, 3, 1, 2]
                    .into_iter()
                    .chain([0x17; 48])
                    .chain([1])
                    .collect(),
                sign384(3),
                vec![18, 2],
                vec![18, 3],
                vec![19, 0, 0],
                vec![12, 4, 1, 2, 0],
            ],
        ),
        (
            // The model's first find: Triple DES with K1 = K2 is single DES with K3, so this key
            // authenticates as the factory key (01‥08 three times), on this card as on a YubiKey.
            "triple-des-equivalent-key.bin",
            vec![[
                &[8u8, 3, 0][..],
                &[0xD0; 16],
                &[1, 2, 3, 4, 5, 6, 7, 8],
                &[0; 8],
            ]
            .concat()],
        ),
        (
            "pins.bin",
            vec![
                wrong_pin.clone(),
                wrong_pin.clone(),
                wrong_pin.clone(),
                vec![4, 0],
                [&[7u8, 0][..], &new_pin(&[1, 2, 3, 4, 5, 6])].concat(),
                VERIFY_PIN.to_vec(),
                [&[6u8, 0, 0][..], &new_pin(&[6, 5, 4, 3, 2, 1])].concat(),
                [&[6u8, 1, 0][..], &[0], &[1, 2, 3, 4, 5]].concat(),
                vec![17, 2, 0],
            ],
        ),
        (
            "cut-pin-change.bin",
            vec![
                vec![19, 1, 0],
                [&[6u8, 0, 0][..], &new_pin(&[2, 4, 6, 8, 0, 2])].concat(),
                vec![19, 0, 1],
                wrong_pin.clone(),
                vec![19, 2, 0],
                [&[7u8, 0][..], &new_pin(&[1, 1, 1, 1, 1, 1])].concat(),
            ],
        ),
        (
            "objects-and-reset.bin",
            vec![
                AUTHENTICATE.to_vec(),
                vec![10, 3, 2, 100, 0x30],
                vec![11, 3],
                vec![10, 4, 7, 0, 0x20],
                vec![10, 4, 7, 12, 0x20],
                vec![11, 4],
                VERIFY_PIN.to_vec(),
                vec![11, 4],
                vec![10, 3, 0],
                vec![11, 3],
                vec![9, 1, 0x11, 0x22],
                wrong_pin.clone(),
                wrong_pin.clone(),
                wrong_pin,
                wrong_puk.clone(),
                wrong_puk.clone(),
                wrong_puk,
                vec![17, 0],
                vec![11, 1],
                vec![17, 2, 2],
            ],
        ),
        (
            "raw.bin",
            vec![
                // Raw: the header, the length of the rest, the rest (Lc, data, Le).
                vec![
                    0, 0x00, 0xA4, 0x04, 0x00, 6, 5, 0xA0, 0x00, 0x00, 0x03, 0x08,
                ],
                vec![0, 0x10, 0xCB, 0x3F, 0xFF, 4, 0x03, 0x5C, 0x01, 0x7E],
                vec![4, 0],
                vec![0, 0x00, 0x70, 0x00, 0x00, 1, 1],
                vec![
                    0, 0x01, 0xA4, 0x04, 0x00, 6, 5, 0xA0, 0x00, 0x00, 0x03, 0x08,
                ],
                vec![0, 0x01, 0xF9, 0x9A, 0x00, 0],
                vec![17, 1],
                vec![4, 1],
            ],
        ),
    ]
}
