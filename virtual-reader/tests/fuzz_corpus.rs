//! Replays the fuzz inputs of the `vpcd_framing` target (`fuzz/seeds/vpcd_framing/`, named by hand,
//! and `fuzz/corpus/vpcd_framing/`, minimized) as ordinary tests, through the very property the target
//! checks (`fuzz/src/vpcd_properties.rs`).
#![allow(clippy::unwrap_used)]

#[path = "../../fuzz/src/corpus.rs"]
mod corpus;
#[path = "../../fuzz/src/vpcd_properties.rs"]
mod vpcd_properties;

use std::path::Path;

#[test]
fn the_vpcd_framing_corpus_replays() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let replayed = corpus::replay(&fuzz, "vpcd_framing", vpcd_properties::framing);
    assert!(replayed >= 2, "the seeds are there");
}

#[test]
fn the_hand_made_stream_holds_four_messages() {
    // Power on, get ATR, SELECT, power off — read in 8-byte pieces.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds/vpcd_framing/power-on-atr-select-off.bin");
    let data = std::fs::read(path).unwrap();
    let mut stream = std::io::Cursor::new(&data[1..]);
    let mut body = Vec::new();
    let mut messages = Vec::new();
    while virtual_reader::vpcd::protocol::read_frame(&mut stream, &mut body, &mut |_| {}).unwrap() {
        messages.push(format!(
            "{:?}",
            virtual_reader::vpcd::VpcdMessage::decode(&body).unwrap()
        ));
    }
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert_eq!(messages[0], "PowerOn");
    assert_eq!(messages[1], "GetAtr");
    assert!(messages[2].starts_with("Apdu("));
    assert_eq!(messages[3], "PowerOff");
}
