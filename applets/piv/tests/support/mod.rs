//! Shared helpers for the PIV transcript tests: a card in memory, hex transcripts, host-side crypto.
#![allow(dead_code, clippy::unwrap_used)]

use card_os::apdu::Command;
use card_os::{AppletRegistry, Card, CardConfig, Clock, Installation, Storage};
use card_transport::{DirectReader, Transport};
use piv_host::{GenerateOptions, ManagementKey, PivError, PivSession};
use piv_types::{KeyAlgorithm, KeySlot, ManagementAlgorithm, ObjectId};

pub const SELECT_5: &str = "00 A4 04 00 05 A0 00 00 03 08 00";
pub const SELECT_9: &str = "00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00";
pub const SELECT_ANSWER: &str = "61114F0600001000010079074F05A0000003089000";
pub const DEFAULT_KEY: &str = "010203040506070801020304050607080102030405060708";
pub const VERIFY_DEFAULT_PIN: &str = "00 20 00 80 08 31 32 33 34 35 36 FF FF";

pub fn config(seed: u64) -> CardConfig {
    CardConfig {
        clock: Clock::Fixed(1_700_000_000),
        seed: Some(seed),
        ..CardConfig::default()
    }
}

pub fn registry() -> AppletRegistry {
    AppletRegistry::new().register(piv_applet::aid(), piv_applet::factory)
}

pub fn card_with(seed: u64, params: Vec<u8>) -> Card {
    let inst = Installation {
        aid: piv_applet::aid(),
        params,
        default_selected: false,
    };
    Card::create(config(seed), &registry(), &[inst], Storage::Memory).expect("PIV card")
}

/// A deterministic default card kept in the image file `path` (relaxed durability), PIV selected.
pub fn file_card(path: &std::path::Path, seed: u64) -> Card {
    let inst = Installation {
        aid: piv_applet::aid(),
        params: Vec::new(),
        default_selected: false,
    };
    let storage = card_os::Storage::File {
        path,
        durability: card_os::Durability::Relaxed,
    };
    let mut card = Card::create(config(seed), &registry(), &[inst], storage).expect("PIV card");
    assert_eq!(tx(&mut card, SELECT_5), SELECT_ANSWER);
    card
}

/// The card in the image file `path`, reopened, PIV selected.
pub fn reopen(path: &std::path::Path) -> Card {
    let mut card =
        Card::open(path, &registry(), card_os::Durability::Relaxed).expect("the image reopens");
    assert_eq!(tx(&mut card, SELECT_5), SELECT_ANSWER);
    card
}

/// A deterministic default card with PIV selected (5-byte prefix, as ykpiv does).
pub fn card() -> Card {
    let mut card = card_with(7, Vec::new());
    assert_eq!(tx(&mut card, SELECT_5), SELECT_ANSWER);
    card
}

pub fn h(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).expect("hex")
}

/// Sends a hex APDU; the hex response (upper case).
pub fn tx(card: &mut Card, apdu: &str) -> String {
    hex::encode_upper(card.transmit(&h(apdu)).expect("card answered"))
}

pub fn txb(card: &mut Card, apdu: &[u8]) -> Vec<u8> {
    card.transmit(apdu).expect("card answered")
}

pub fn sw(response: &str) -> &str {
    &response[response.len() - 4..]
}

/// The host-side rules (`61 xx`, chaining) and the PIV client, straight onto a card a test holds.
fn reader(card: &mut Card) -> DirectReader<'_, Card> {
    DirectReader::new(card)
}

fn status(error: &PivError) -> u16 {
    error
        .status_word()
        .unwrap_or_else(|| panic!("the card did not answer as PIV: {error}"))
        .to_u16()
}

/// Sends a command, then GET RESPONSE while `61 xx`: the whole data and the final status word.
pub fn tx_all(card: &mut Card, apdu: &[u8]) -> (Vec<u8>, u16) {
    let command = Command::from_bytes(apdu).expect("a well-formed APDU");
    let response = reader(card).exchange(&command).expect("card answered");
    (response.data, response.sw.to_u16())
}

/// Sends data with command chaining in 255-byte pieces (CLA 10, last CLA 00), ykpiv style (Le 00).
pub fn tx_chained(card: &mut Card, ins: u8, p1: u8, p2: u8, data: &[u8]) -> (Vec<u8>, u16) {
    let command = Command::new(0x00, ins, p1, p2)
        .with_data(data)
        .with_le(256)
        .expect("Le 00");
    let response = reader(card)
        .exchange_chained(&command)
        .expect("card answered");
    (response.data, response.sw.to_u16())
}

/// Mutual authentication with the management key, as ykpiv does it; panics unless it succeeds.
pub fn mgmt_auth(card: &mut Card, alg: u8, key: &[u8]) {
    let algorithm = ManagementAlgorithm::from_id(alg).expect("a management algorithm");
    let key = ManagementKey::new(algorithm, key).expect("a key of the algorithm's length");
    PivSession::attach(&mut reader(card))
        .authenticate(&key)
        .expect("mutual authentication");
}

pub fn default_auth(card: &mut Card) {
    mgmt_auth(card, 0x03, &h(DEFAULT_KEY));
}

/// Generates a P-256 key in the slot; returns the uncompressed point.
pub fn generate(card: &mut Card, slot: u8) -> Vec<u8> {
    let slot = KeySlot::from_reference(slot).expect("a key slot");
    let public = PivSession::attach(&mut reader(card))
        .generate(slot, KeyAlgorithm::EccP256, GenerateOptions::default())
        .expect("key generated");
    public.ec_point().expect("an EC point").to_vec()
}

/// GENERAL AUTHENTICATE sign of a hash: (DER signature or empty, status word).
pub fn sign(card: &mut Card, slot: u8, hash: &[u8]) -> (Vec<u8>, u16) {
    let slot = KeySlot::from_reference(slot).expect("a key slot");
    match PivSession::attach(&mut reader(card)).sign(slot, KeyAlgorithm::EccP256, hash) {
        Ok(der) => (der, 0x9000),
        Err(error) => (Vec::new(), status(&error)),
    }
}

pub fn verify_signature(point: &[u8], hash: &[u8], der: &[u8]) {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
    let sig = p256::ecdsa::DerSignature::from_bytes(der).unwrap();
    key.verify_prehash(hash, &sig).unwrap();
}

/// GET DATA of a 3-byte tag; (value inside 53, status).
pub fn get_object(card: &mut Card, tag: &[u8]) -> (Vec<u8>, u16) {
    let object = ObjectId::from_tag_bytes(tag).expect("a PIV object tag");
    match PivSession::attach(&mut reader(card)).get_object(object) {
        Ok(value) => (value, 0x9000),
        Err(error) => (Vec::new(), status(&error)),
    }
}

/// PUT DATA of a value (wrapped in 53), chained.
pub fn put_object(card: &mut Card, tag: &[u8], value: &[u8]) -> u16 {
    let object = ObjectId::from_tag_bytes(tag).expect("a PIV object tag");
    match PivSession::attach(&mut reader(card)).put_object(object, value) {
        Ok(()) => 0x9000,
        Err(error) => status(&error),
    }
}
