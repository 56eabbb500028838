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
#[ignore = "writes fuzz/seeds/install_params and fuzz/seeds/card_image"]
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
}
