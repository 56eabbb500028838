//! Ed25519 (algorithm E0) and X25519 (E1) keys on the PIV card as YubiKey 5.7 and ykman have them:
//! generated or imported (`07` / `08` private values), PureEdDSA over the whole message, X25519 key
//! agreement, metadata and attestation — each checked against the dalek crates on the host side.

#![allow(clippy::unwrap_used)]

mod support;

use ed25519_dalek::Verifier as _;
use piv_host::{GenerateOptions, PivSession, PublicKey};
use piv_types::{KeyAlgorithm, KeySlot};
use support::*;

fn generate(card: &mut card_os::Card, slot: KeySlot, algorithm: KeyAlgorithm) -> [u8; 32] {
    let mut reader = card_transport::DirectReader::new(card);
    let public = PivSession::attach(&mut reader)
        .generate(slot, algorithm, GenerateOptions::default())
        .expect("key generated");
    let PublicKey::Ec { point, .. } = public else {
        panic!("a curve key, got {public:?}");
    };
    point.try_into().expect("a 32-byte public key")
}

fn sign(card: &mut card_os::Card, slot: KeySlot, message: &[u8]) -> Result<Vec<u8>, u16> {
    let mut reader = card_transport::DirectReader::new(card);
    PivSession::attach(&mut reader)
        .sign(slot, KeyAlgorithm::Ed25519, message)
        .map_err(|e| e.status_word().expect("a status word").to_u16())
}

fn agree(card: &mut card_os::Card, slot: KeySlot, peer: &[u8]) -> Result<Vec<u8>, u16> {
    let mut reader = card_transport::DirectReader::new(card);
    PivSession::attach(&mut reader)
        .ecdh(slot, KeyAlgorithm::X25519, peer)
        .map(|shared| shared.to_vec())
        .map_err(|e| e.status_word().expect("a status word").to_u16())
}

fn verify_pin(card: &mut card_os::Card) {
    assert_eq!(tx_all(card, &h(VERIFY_DEFAULT_PIN)).1, 0x9000);
}

#[test]
fn a_generated_ed25519_key_signs_whole_messages_the_host_verifies() {
    let mut card = card();
    default_auth(&mut card);
    let public = generate(&mut card, KeySlot::Authentication, KeyAlgorithm::Ed25519);
    let verifier = ed25519_dalek::VerifyingKey::from_bytes(&public).expect("a valid Ed25519 key");

    // 9A: PIN once.
    assert_eq!(
        sign(&mut card, KeySlot::Authentication, b"tessera"),
        Err(0x6982)
    );
    verify_pin(&mut card);
    for message in [&b"tessera"[..], &[0xA5; 1500][..]] {
        // 1 500 bytes: more than one short APDU, so the message arrives chained.
        let signature = sign(&mut card, KeySlot::Authentication, message).expect("signed");
        let signature = ed25519_dalek::Signature::from_slice(&signature).expect("64 bytes");
        verifier
            .verify(message, &signature)
            .expect("the card's signature verifies");
        assert!(verifier.verify(b"another message", &signature).is_err());
    }

    // An Ed25519 key does no key agreement, and P1 must name the key's algorithm.
    assert_eq!(
        tx(
            &mut card,
            &format!("00 87 E0 9A 26 7C 24 82 00 85 20 {}", "09 ".repeat(32))
        ),
        "6A80"
    );
    assert_eq!(
        tx(&mut card, "00 87 11 9A 0A 7C 08 82 00 81 04 01 02 03 04"),
        "6A86"
    );
}

#[test]
fn a_generated_x25519_key_agrees_with_the_host_and_refuses_small_order_peers() {
    let mut card = card();
    default_auth(&mut card);
    let public = generate(&mut card, KeySlot::KeyManagement, KeyAlgorithm::X25519);
    let host = x25519_dalek::StaticSecret::from([0x42; 32]);
    let host_public = x25519_dalek::PublicKey::from(&host);
    verify_pin(&mut card);
    let shared = agree(&mut card, KeySlot::KeyManagement, host_public.as_bytes()).expect("ECDH");
    assert_eq!(
        shared,
        host.diffie_hellman(&x25519_dalek::PublicKey::from(public))
            .as_bytes()
            .to_vec()
    );
    // The all-zero point (small order) gives the all-zero secret: refused as bad data.
    assert_eq!(
        agree(&mut card, KeySlot::KeyManagement, &[0; 32]),
        Err(0x6A80)
    );
    // Not 32 bytes, or an X25519 key asked to sign: the parser refuses.
    assert_eq!(
        agree(&mut card, KeySlot::KeyManagement, &[9; 33]),
        Err(0x6A80)
    );
    assert_eq!(
        tx(&mut card, "00 87 E1 9D 0A 7C 08 82 00 81 04 01 02 03 04"),
        "6A80"
    );
}

#[test]
fn imported_rfc_vectors_give_the_rfc_answers_and_metadata_describes_them() {
    let mut card = card();
    default_auth(&mut card);
    let ed_seed = h("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
    let x_scalar = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    // The private value under the other algorithm's tag, or of the wrong length: 6A 80.
    assert_eq!(
        tx(
            &mut card,
            &format!("00 FE E0 82 22 08 20 {}", hex::encode(&ed_seed))
        ),
        "6A80"
    );
    assert_eq!(
        tx(
            &mut card,
            &format!("00 FE E0 82 21 07 1F {}", hex::encode(&ed_seed[..31]))
        ),
        "6A80"
    );
    {
        let mut reader = card_transport::DirectReader::new(&mut card);
        let mut piv = PivSession::attach(&mut reader);
        piv.import_ec(
            slot(0x82),
            KeyAlgorithm::Ed25519,
            &ed_seed,
            GenerateOptions::default(),
        )
        .expect("Ed25519 imported");
        piv.import_ec(
            slot(0x83),
            KeyAlgorithm::X25519,
            &x_scalar,
            GenerateOptions::default(),
        )
        .expect("X25519 imported");
        let metadata = piv.metadata(0x82).expect("metadata");
        assert_eq!(metadata.algorithm, Some(0xE0));
        assert_eq!(metadata.origin, Some(0x02), "imported");
        let reported =
            PublicKey::from_template(KeyAlgorithm::Ed25519, &metadata.public_key.unwrap()).unwrap();
        assert_eq!(
            reported.ec_point(),
            Some(&h("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")[..])
        );
        assert_eq!(piv.metadata(0x83).expect("metadata").algorithm, Some(0xE1));
    }
    verify_pin(&mut card);
    // RFC 8032 §7.1 TEST 2.
    assert_eq!(
        sign(&mut card, slot(0x82), &[0x72]).expect("signed"),
        h(concat!(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da",
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ))
    );
    // RFC 7748 §6.1: Alice's key with Bob's public key.
    assert_eq!(
        agree(
            &mut card,
            slot(0x83),
            &h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        )
        .expect("ECDH"),
        h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    );
    // Imported keys are not attested.
    assert_eq!(tx(&mut card, "00 F9 82 00"), "6A80");
}

#[test]
fn generated_curve25519_keys_are_attested_with_their_rfc_8410_public_keys() {
    use der::Decode as _;
    let mut card = card();
    default_auth(&mut card);
    for (slot, algorithm, oid) in [
        (KeySlot::Signature, KeyAlgorithm::Ed25519, "1.3.101.112"),
        (
            KeySlot::CardAuthentication,
            KeyAlgorithm::X25519,
            "1.3.101.110",
        ),
    ] {
        let public = generate(&mut card, slot, algorithm);
        let mut reader = card_transport::DirectReader::new(&mut card);
        let der = PivSession::attach(&mut reader)
            .attest(slot)
            .expect("attestation");
        let certificate = x509_cert::Certificate::from_der(&der).expect("an X.509 certificate");
        let spki = certificate.tbs_certificate().subject_public_key_info();
        assert_eq!(
            spki.algorithm.oid,
            der::oid::ObjectIdentifier::new_unwrap(oid)
        );
        assert!(
            spki.algorithm.parameters.is_none(),
            "RFC 8410: parameters absent"
        );
        assert_eq!(spki.subject_public_key.raw_bytes(), public);
    }
}

#[test]
fn a_curve25519_key_survives_the_card_image_and_a_move() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.img");
    let public = {
        let mut card = file_card(&path, 11);
        default_auth(&mut card);
        let public = generate(&mut card, slot(0x90), KeyAlgorithm::Ed25519);
        assert_eq!(tx(&mut card, "00 F6 91 90"), "9000");
        public
    };
    let mut card = reopen(&path);
    assert_eq!(tx(&mut card, "00 F7 00 90"), "6A88");
    verify_pin(&mut card);
    let signature = sign(&mut card, slot(0x91), b"after a restart").expect("signed");
    ed25519_dalek::VerifyingKey::from_bytes(&public)
        .unwrap()
        .verify(
            b"after a restart",
            &ed25519_dalek::Signature::from_slice(&signature).unwrap(),
        )
        .expect("the moved key is the generated one");
}

fn slot(reference: u8) -> KeySlot {
    KeySlot::from_reference(reference).expect("a key slot")
}
