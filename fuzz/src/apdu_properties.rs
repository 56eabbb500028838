//! What the `apdu_command` and `ber_tlv` targets check of one input. Shared with the replay test
//! (`apdu/tests/fuzz_corpus.rs` includes this file), so the corpus is held to the same properties.

use apdu::{tlv, Command, Response};

/// Command and response decoding: never a panic, and a decoded command re-encodes to bytes that
/// decode to the same command (whatever length form the input used); a response is its bytes.
pub fn command(data: &[u8]) {
    if let Ok(command) = Command::from_bytes(data) {
        let again = Command::from_bytes(&command.to_bytes());
        assert!(
            again.as_ref() == Ok(&command),
            "re-encoding changed the command: {command:?} -> {again:?}"
        );
    }
    if let Ok(response) = Response::from_bytes(data) {
        assert_eq!(response.to_bytes(), data, "a response is its bytes");
    }
}

/// BER-TLV decoding: never a panic; the iterator stops at the error `parse_all` reports; a sequence
/// that decodes re-encodes (minimal lengths) to one with the same tags and values; `find` agrees.
pub fn ber_tlv(data: &[u8]) {
    let items = tlv::parse_all(data);
    let streamed: Vec<_> = tlv::iter(data).collect();
    match &items {
        Ok(items) => assert_eq!(streamed.len(), items.len()),
        Err(_) => assert!(matches!(streamed.last(), Some(Err(_)))),
    }
    let Ok(items) = items else { return };
    let mut encoded = Vec::new();
    for item in &items {
        tlv::write(&mut encoded, item.tag, item.value);
    }
    let again = tlv::parse_all(&encoded).expect("re-encoded TLVs decode");
    assert_eq!(again, items);
    if let Some(first) = items.first() {
        let found = tlv::find(data, first.tag).expect("a valid sequence has no error");
        assert_eq!(found, Some(first.value));
    }
}
