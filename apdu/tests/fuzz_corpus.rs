//! Replays the fuzz inputs of the `apdu_command` and `ber_tlv` targets (`fuzz/seeds/<target>/`, named
//! by hand, and `fuzz/corpus/<target>/`, minimized by `cargo fuzz cmin`) as ordinary tests, through
//! the very properties the targets check (`fuzz/src/apdu_properties.rs`).
#![allow(clippy::unwrap_used)]

#[path = "../../fuzz/src/apdu_properties.rs"]
mod apdu_properties;

use std::path::Path;

/// Every file of `fuzz/seeds/<target>/` and `fuzz/corpus/<target>/`.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for kind in ["seeds", "corpus"] {
        let dir = fuzz.join(kind).join(target);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    files.sort();
    files
}

#[test]
fn the_apdu_command_corpus_replays() {
    let inputs = inputs("apdu_command");
    assert!(inputs.len() >= 4, "the seeds are there");
    for (name, data) in &inputs {
        let replayed = std::panic::catch_unwind(|| apdu_properties::command(data));
        assert!(replayed.is_ok(), "{name}");
    }
}

#[test]
fn the_ber_tlv_corpus_replays() {
    let inputs = inputs("ber_tlv");
    assert!(inputs.len() >= 2, "the seeds are there");
    for (name, data) in &inputs {
        let replayed = std::panic::catch_unwind(|| apdu_properties::ber_tlv(data));
        assert!(replayed.is_ok(), "{name}");
    }
}

#[test]
fn the_hand_made_seeds_are_what_they_say() {
    let seeds = inputs("apdu_command");
    let seed = |name: &str| {
        let (_, data) = seeds
            .iter()
            .find(|(n, _)| n.ends_with(&format!("seeds/apdu_command/{name}")))
            .unwrap();
        apdu::Command::from_bytes(data).unwrap()
    };
    assert_eq!(seed("select-piv.bin").ins, 0xA4);
    assert_eq!(seed("verify-pin.bin").ins, 0x20);
    assert_eq!(seed("extended-general-authenticate.bin").ins, 0x87);
}
