//! The host-side rules of one exchange, against scripted cards.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use apdu::{Command, StatusWord};

use super::*;

/// A card that records what it is sent and answers from a script.
#[derive(Default)]
struct Scripted {
    answers: VecDeque<Vec<u8>>,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl VirtualCard for Scripted {
    fn atr(&self) -> Vec<u8> {
        vec![0x3B, 0x00]
    }
    fn power_on(&mut self) {}
    fn power_off(&mut self) {}
    fn reset(&mut self) {}
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        self.seen.lock().unwrap().push(command.to_vec());
        self.answers.pop_front().unwrap_or_else(|| vec![0x6F, 0x00])
    }
}

fn reader(answers: &[&str]) -> (InProcessReader, Arc<Mutex<Vec<Vec<u8>>>>) {
    let card = Scripted {
        answers: answers.iter().map(|a| hex::decode(a).unwrap()).collect(),
        ..Scripted::default()
    };
    let seen = card.seen.clone();
    (InProcessReader::new(share(card)), seen)
}

fn sent(seen: &Arc<Mutex<Vec<Vec<u8>>>>) -> Vec<String> {
    seen.lock().unwrap().iter().map(hex::encode_upper).collect()
}

#[test]
fn exchange_follows_61xx_and_joins_the_data() {
    let (mut reader, seen) = reader(&["0102610A", "03046100", "059000"]);
    let response = reader
        .exchange(&Command::new(0x01, 0xCB, 0x3F, 0xFF).with_le(256).unwrap())
        .unwrap();
    assert_eq!(response.data, [1, 2, 3, 4, 5]);
    assert_eq!(response.sw, StatusWord::SUCCESS);
    // GET RESPONSE keeps the logical channel and asks for what the card announced (00 = 256).
    assert_eq!(sent(&seen), ["01CB3FFF00", "01C000000A", "01C0000000"]);
}

#[test]
fn exchange_resends_with_the_le_the_card_asked_for() {
    let (mut reader, seen) = reader(&["6C08", "11223344556677889000"]);
    let response = reader
        .exchange(&Command::new(0x00, 0xCA, 0x00, 0x6E).with_le(256).unwrap())
        .unwrap();
    assert_eq!(response.data.len(), 8);
    assert_eq!(sent(&seen), ["00CA006E00", "00CA006E08"]);
}

#[test]
fn a_card_that_never_stops_saying_61xx_is_an_error_not_a_hang() {
    let card = Scripted {
        answers: std::iter::repeat_n(vec![0xAA, 0x61, 0x01], 2000).collect(),
        ..Scripted::default()
    };
    let mut reader = InProcessReader::new(share(card));
    assert!(matches!(
        reader.exchange(&Command::new(0, 0xCB, 0, 0)),
        Err(TransportError::EndlessResponse { .. })
    ));
}

#[test]
fn long_data_is_chained_in_255_byte_links() {
    let (mut reader, seen) = reader(&["9000", "9000", "AB9000"]);
    let data: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
    let response = reader
        .exchange_chained(&Command::new(0x00, 0xDB, 0x3F, 0xFF).with_data(data.clone()))
        .unwrap();
    assert_eq!(response.data, [0xAB]);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(&seen[0][..5], &[0x10, 0xDB, 0x3F, 0xFF, 0xFF]);
    assert_eq!(&seen[1][..5], &[0x10, 0xDB, 0x3F, 0xFF, 0xFF]);
    assert_eq!(&seen[2][..5], &[0x00, 0xDB, 0x3F, 0xFF, 90]);
    let joined: Vec<u8> = seen.iter().flat_map(|link| link[5..].to_vec()).collect();
    assert_eq!(joined, data);
}

#[test]
fn a_refused_link_ends_the_chain() {
    let (mut reader, seen) = reader(&["6982"]);
    let response = reader
        .exchange_chained(&Command::new(0x00, 0xDB, 0x3F, 0xFF).with_data(vec![0; 300]))
        .unwrap();
    assert_eq!(response.sw, StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn short_data_is_one_link_with_its_le() {
    let command = Command::new(0x00, 0x87, 0x03, 0x9B)
        .with_data(vec![0x7C, 0x02, 0x80, 0x00])
        .with_le(256)
        .unwrap();
    assert_eq!(chain_links(&command), vec![command]);
}

#[test]
fn a_mute_card_and_a_one_byte_answer_are_errors() {
    let (mut reader, _) = reader(&["", "90"]);
    assert!(matches!(
        reader.transmit_raw(&[0, 0xA4, 4, 0]),
        Err(TransportError::Mute)
    ));
    assert!(matches!(
        reader.transmit_raw(&[0, 0xA4, 4, 0]),
        Err(TransportError::NoStatusWord { len: 1 })
    ));
    assert_eq!(reader.atr().unwrap(), [0x3B, 0x00]);
    assert_eq!(reader.name(), "in-process");
}

#[test]
fn errors_name_what_failed() {
    let e = TransportError::ReaderNotFound {
        reader: "X".into(),
        present: vec!["Virtual PCD 00 00".into()],
    };
    assert_eq!(
        e.to_string(),
        "reader \"X\" not found; readers present: [\"Virtual PCD 00 00\"]"
    );
    let e = TransportError::ReaderNotFound {
        reader: "X".into(),
        present: vec![],
    };
    assert!(e.to_string().ends_with("readers present: none"));
    assert!(TransportError::NoService
        .to_string()
        .contains("is pcscd started?"));
}

#[cfg(not(feature = "pcsc"))]
#[test]
fn without_the_pcsc_feature_every_pcsc_call_says_how_to_get_it() {
    for result in [
        PcscReader::list().map(drop),
        PcscReader::card_present("Virtual PCD 00 00").map(drop),
        PcscReader::card_atr("Virtual PCD 00 00").map(drop),
        PcscReader::connect("Virtual PCD 00 00").map(drop),
    ] {
        let error = result.unwrap_err();
        assert!(matches!(error, TransportError::PcscNotBuilt));
        assert!(error.to_string().contains("--features pcsc"), "{error}");
    }
}
