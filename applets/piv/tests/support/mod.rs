//! Shared helpers for the PIV transcript tests: a card in memory, hex transcripts, host-side crypto.
#![allow(dead_code, clippy::unwrap_used)]

use card_os::crypto::{BlockCipher, Crypto};
use card_os::{AppletRegistry, Card, CardConfig, Clock, Installation, Storage};

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

/// Sends a command, then GET RESPONSE while `61 xx`: the whole data and the final status word.
pub fn tx_all(card: &mut Card, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut out = Vec::new();
    let mut response = txb(card, apdu);
    loop {
        let n = response.len();
        let (s1, s2) = (response[n - 2], response[n - 1]);
        out.extend_from_slice(&response[..n - 2]);
        if s1 == 0x61 {
            response = txb(card, &[0x00, 0xC0, 0x00, 0x00, s2]);
        } else {
            return (out, u16::from_be_bytes([s1, s2]));
        }
    }
}

/// Sends data with command chaining in 255-byte pieces (CLA 10, last CLA 00), ykpiv style (Le 00).
pub fn tx_chained(card: &mut Card, ins: u8, p1: u8, p2: u8, data: &[u8]) -> (Vec<u8>, u16) {
    let chunks: Vec<&[u8]> = data.chunks(255).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        let mut apdu = vec![
            if last { 0x00 } else { 0x10 },
            ins,
            p1,
            p2,
            chunk.len() as u8,
        ];
        apdu.extend_from_slice(chunk);
        apdu.push(0x00);
        if last {
            return tx_all(card, &apdu);
        }
        let response = txb(card, &apdu);
        assert_eq!(response, [0x90, 0x00], "chain link {i}");
    }
    unreachable!("no data")
}

pub fn cipher_of(alg: u8) -> BlockCipher {
    match alg {
        0x03 => BlockCipher::TripleDes,
        0x08 => BlockCipher::Aes128,
        0x0A => BlockCipher::Aes192,
        _ => BlockCipher::Aes256,
    }
}

/// ykpiv's mutual authentication with the management key; panics unless it succeeds.
pub fn mgmt_auth(card: &mut Card, alg: u8, key: &[u8]) {
    let cipher = cipher_of(alg);
    let block = cipher.block_len();
    let r = tx_all(
        card,
        &[0x00, 0x87, alg, 0x9B, 0x04, 0x7C, 0x02, 0x80, 0x00, 0x00],
    );
    assert_eq!(r.1, 0x9000);
    assert_eq!(&r.0[..4], &[0x7C, (block + 2) as u8, 0x80, block as u8]);
    let witness = Crypto::block_decrypt(cipher, key, &r.0[4..]).unwrap();
    let challenge: Vec<u8> = (0..block as u8).collect();
    let mut body = vec![0x7C, (2 * block + 4) as u8, 0x80, block as u8];
    body.extend_from_slice(&witness);
    body.extend_from_slice(&[0x81, block as u8]);
    body.extend_from_slice(&challenge);
    let mut apdu = vec![0x00, 0x87, alg, 0x9B, body.len() as u8];
    apdu.extend_from_slice(&body);
    apdu.push(0x00);
    let r = tx_all(card, &apdu);
    assert_eq!(r.1, 0x9000, "mutual auth step 2");
    assert_eq!(&r.0[..4], &[0x7C, (block + 2) as u8, 0x82, block as u8]);
    assert_eq!(
        r.0[4..],
        Crypto::block_encrypt(cipher, key, &challenge).unwrap()[..]
    );
}

pub fn default_auth(card: &mut Card) {
    mgmt_auth(card, 0x03, &h(DEFAULT_KEY));
}

/// Generates a P-256 key in the slot; returns the uncompressed point.
pub fn generate(card: &mut Card, slot: u8) -> Vec<u8> {
    let (data, sw) = tx_all(
        card,
        &[
            0x00, 0x47, 0x00, slot, 0x05, 0xAC, 0x03, 0x80, 0x01, 0x11, 0x00,
        ],
    );
    assert_eq!(sw, 0x9000);
    assert_eq!(&data[..5], &[0x7F, 0x49, 0x43, 0x86, 0x41]);
    assert_eq!(data.len(), 5 + 65);
    data[5..].to_vec()
}

/// GENERAL AUTHENTICATE sign of a 32-byte hash: (DER signature or empty, status word).
pub fn sign(card: &mut Card, slot: u8, hash: &[u8]) -> (Vec<u8>, u16) {
    let mut body = vec![
        0x7C,
        (hash.len() + 4) as u8,
        0x82,
        0x00,
        0x81,
        hash.len() as u8,
    ];
    body.extend_from_slice(hash);
    let mut apdu = vec![0x00, 0x87, 0x11, slot, body.len() as u8];
    apdu.extend_from_slice(&body);
    apdu.push(0x00);
    let (data, sw) = tx_all(card, &apdu);
    if sw != 0x9000 {
        return (data, sw);
    }
    assert_eq!(data[0], 0x7C);
    assert_eq!(data[2], 0x82);
    assert_eq!(usize::from(data[1]), data.len() - 2);
    (data[4..].to_vec(), sw)
}

pub fn verify_signature(point: &[u8], hash: &[u8], der: &[u8]) {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
    let sig = p256::ecdsa::DerSignature::from_bytes(der).unwrap();
    key.verify_prehash(hash, &sig).unwrap();
}

/// GET DATA of a 3-byte tag; (value inside 53, status).
pub fn get_object(card: &mut Card, tag: &[u8]) -> (Vec<u8>, u16) {
    let mut apdu = vec![
        0x00,
        0xCB,
        0x3F,
        0xFF,
        tag.len() as u8 + 2,
        0x5C,
        tag.len() as u8,
    ];
    apdu.extend_from_slice(tag);
    apdu.push(0x00);
    let (data, sw) = tx_all(card, &apdu);
    if sw != 0x9000 {
        return (data, sw);
    }
    let value = card_os::apdu::tlv::expect(&data, 0x53u32).unwrap().to_vec();
    (value, sw)
}

/// PUT DATA of a value (wrapped in 53), chained.
pub fn put_object(card: &mut Card, tag: &[u8], value: &[u8]) -> u16 {
    let mut body = vec![0x5C, tag.len() as u8];
    body.extend_from_slice(tag);
    card_os::apdu::tlv::write(&mut body, 0x53u32, value);
    tx_chained(card, 0xDB, 0x3F, 0xFF, &body).1
}
