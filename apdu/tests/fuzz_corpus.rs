//! Replays the fuzz inputs of the `apdu_command` and `ber_tlv` targets (`fuzz/seeds/<target>/`, named
//! by hand, and `fuzz/corpus/<target>/`, minimized) as ordinary tests, through the very properties
//! the targets check (`fuzz/src/apdu_properties.rs`).

#[path = "../../fuzz/src/apdu_properties.rs"]
mod apdu_properties;
#[path = "../../fuzz/src/corpus.rs"]
mod corpus;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn the_apdu_command_corpus_replays() {
    let replayed = corpus::replay(&fuzz_dir(), "apdu_command", apdu_properties::command);
    assert!(replayed >= 4, "the seeds are there");
}

#[test]
fn the_ber_tlv_corpus_replays() {
    let replayed = corpus::replay(&fuzz_dir(), "ber_tlv", apdu_properties::ber_tlv);
    assert!(replayed >= 2, "the seeds are there");
}

#[test]
fn the_hand_made_seeds_are_what_they_say() {
    let seeds = corpus::files(&fuzz_dir(), "seeds", "apdu_command");
    let ins = |name: &str| {
        let (_, data) = seeds.iter().find(|(n, _)| n == name).expect(name);
        apdu::Command::from_bytes(data).expect(name).ins
    };
    assert_eq!(ins("select-piv.bin"), 0xA4);
    assert_eq!(ins("verify-pin.bin"), 0x20);
    assert_eq!(ins("extended-general-authenticate.bin"), 0x87);
}
