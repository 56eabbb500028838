//! RSA keys on the PIV card as YubiKey 5.7 has them: generated (1024–4096) or imported in CRT form,
//! the raw private operation behind GENERAL AUTHENTICATE for PKCS#1 signatures and decryption, their
//! metadata and their attestation — each checked against the `rsa` crate on the host side.

mod support;

use piv_host::{GenerateOptions, PivSession, PublicKey, RsaCrtParts};
use piv_types::{KeyAlgorithm, KeySlot, PinPolicy, TouchPolicy};
use rsa::rand_core::SeedableRng;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::BoxedUint;
use support::*;

/// The DER prefix of a SHA-256 DigestInfo (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// `00 01 FF…FF 00 DigestInfo(hash)`: the block a PKCS#11 module sends for CKM_SHA256_RSA_PKCS.
fn signature_block(hash: &[u8; 32], modulus_len: usize) -> Vec<u8> {
    let mut block = vec![0x00, 0x01];
    block.resize(
        modulus_len - SHA256_DIGEST_INFO.len() - hash.len() - 1,
        0xFF,
    );
    block.push(0x00);
    block.extend_from_slice(&SHA256_DIGEST_INFO);
    block.extend_from_slice(hash);
    block
}

fn host_public(public: &PublicKey) -> rsa::PublicKey {
    let PublicKey::Rsa {
        modulus, exponent, ..
    } = public
    else {
        panic!("an RSA key, got {public:?}");
    };
    rsa::PublicKey::new(
        BoxedUint::from_be_slice_vartime(modulus),
        BoxedUint::from_be_slice_vartime(exponent),
    )
    .expect("a valid RSA public key")
}

fn verify_pin(card: &mut card_os::Card) -> u16 {
    tx_all(card, &h(VERIFY_DEFAULT_PIN)).1
}

fn slot(reference: u8) -> KeySlot {
    KeySlot::from_reference(reference).expect("a key slot")
}

fn generate_rsa(card: &mut card_os::Card, slot: KeySlot, algorithm: KeyAlgorithm) -> PublicKey {
    let mut reader = card_transport::DirectReader::new(card);
    PivSession::attach(&mut reader)
        .generate(slot, algorithm, GenerateOptions::default())
        .expect("RSA key generated")
}

fn private_op(
    card: &mut card_os::Card,
    slot: KeySlot,
    alg: KeyAlgorithm,
    block: &[u8],
) -> (Vec<u8>, u16) {
    let mut reader = card_transport::DirectReader::new(card);
    match PivSession::attach(&mut reader).sign(slot, alg, block) {
        Ok(result) => (result, 0x9000),
        Err(error) => (
            Vec::new(),
            error.status_word().expect("a status word").to_u16(),
        ),
    }
}

#[test]
fn a_generated_rsa_2048_key_signs_pkcs1_blocks_the_host_verifies() {
    let mut card = card();
    default_auth(&mut card);
    let public = generate_rsa(&mut card, KeySlot::Authentication, KeyAlgorithm::Rsa2048);
    let PublicKey::Rsa {
        modulus, exponent, ..
    } = &public
    else {
        panic!("RSA");
    };
    assert_eq!(modulus.len(), 256);
    assert_eq!(modulus[0] & 0x80, 0x80, "a full 2048-bit modulus");
    assert_eq!(exponent, &[0x01, 0x00, 0x01]);

    let hash = [0x5A; 32];
    let block = signature_block(&hash, 256);
    // 9A's default policy is PIN once.
    assert_eq!(
        private_op(
            &mut card,
            KeySlot::Authentication,
            KeyAlgorithm::Rsa2048,
            &block
        )
        .1,
        0x6982
    );
    assert_eq!(verify_pin(&mut card), 0x9000);
    let (signature, sw) = private_op(
        &mut card,
        KeySlot::Authentication,
        KeyAlgorithm::Rsa2048,
        &block,
    );
    assert_eq!(sw, 0x9000);
    assert_eq!(signature.len(), 256);
    host_public(&public)
        .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash, &signature)
        .expect("the card's signature verifies");

    // The same command as yubico-piv-tool sends it: short APDUs chained (CLA 10), Le 00, the
    // 264-byte answer fetched with GET RESPONSE.
    let mut template = h("7C 82 01 06 82 00 81 82 01 00");
    template.extend_from_slice(&block);
    let (answer, sw) = tx_chained(&mut card, 0x87, 0x07, 0x9A, &template);
    assert_eq!(sw, 0x9000);
    assert_eq!(&answer[..8], &h("7C 82 01 04 82 82 01 00")[..]);
    assert_eq!(answer[8..], signature[..], "PKCS#1 v1.5 is deterministic");

    // Inputs that are not one block below the modulus, or for another algorithm.
    assert_eq!(
        private_op(
            &mut card,
            KeySlot::Authentication,
            KeyAlgorithm::Rsa2048,
            modulus
        )
        .1,
        0x6A80
    );
    assert_eq!(
        private_op(
            &mut card,
            KeySlot::Authentication,
            KeyAlgorithm::Rsa2048,
            &block[1..]
        )
        .1,
        0x6A80
    );
    assert_eq!(
        private_op(
            &mut card,
            KeySlot::Authentication,
            KeyAlgorithm::Rsa1024,
            &block[..128]
        )
        .1,
        0x6A86
    );
    assert_eq!(
        private_op(
            &mut card,
            KeySlot::Authentication,
            KeyAlgorithm::EccP256,
            &hash
        )
        .1,
        0x6A86
    );
    // No ECDH with an RSA key.
    let mut ecdh = h("7C 45 82 00 85 41 04");
    ecdh.extend_from_slice(&[1; 64]);
    assert_eq!(tx_chained(&mut card, 0x87, 0x07, 0x9A, &ecdh).1, 0x6A80);
}

#[test]
fn an_rsa_key_decrypts_what_the_host_encrypted_to_it() {
    let mut card = card();
    default_auth(&mut card);
    let public = generate_rsa(&mut card, KeySlot::KeyManagement, KeyAlgorithm::Rsa1024);
    let host = host_public(&public);
    // A PKCS#1 v1.5 encryption block (type 2), encrypted raw by the host.
    let secret = b"a session key for the card";
    let mut block = vec![0x00, 0x02];
    block.resize(128 - secret.len() - 1, 0x7B);
    block.push(0x00);
    block.extend_from_slice(secret);
    let ciphertext =
        rsa::hazmat::rsa_encrypt(&host, &BoxedUint::from_be_slice(&block, 1024).unwrap()).unwrap();
    let ciphertext = ciphertext.to_be_bytes();
    assert_eq!(verify_pin(&mut card), 0x9000);
    let (plain, sw) = private_op(
        &mut card,
        KeySlot::KeyManagement,
        KeyAlgorithm::Rsa1024,
        &ciphertext,
    );
    assert_eq!(sw, 0x9000);
    assert_eq!(
        plain, block,
        "the whole block comes back; the host strips the padding"
    );
}

#[test]
fn every_rsa_size_is_generated_and_described_by_its_metadata() {
    let mut card = card();
    default_auth(&mut card);
    for (slot, algorithm, len) in [
        (slot(0x82), KeyAlgorithm::Rsa1024, 128),
        (slot(0x83), KeyAlgorithm::Rsa2048, 256),
        (slot(0x84), KeyAlgorithm::Rsa3072, 384),
        (slot(0x85), KeyAlgorithm::Rsa4096, 512),
    ] {
        let public = generate_rsa(&mut card, slot, algorithm);
        let mut reader = card_transport::DirectReader::new(&mut card);
        let metadata = PivSession::attach(&mut reader)
            .metadata(slot.reference())
            .expect("metadata");
        assert_eq!(metadata.algorithm, Some(algorithm.id()));
        assert_eq!(metadata.origin, Some(0x01), "generated");
        let reported = PublicKey::from_template(algorithm, &metadata.public_key.unwrap()).unwrap();
        assert_eq!(reported, public);
        let PublicKey::Rsa { modulus, .. } = &public else {
            panic!("RSA");
        };
        assert_eq!(modulus.len(), len, "{algorithm:?}");
    }
}

/// A host-made key's CRT parts, each `len` bytes.
struct Crt {
    p: Vec<u8>,
    q: Vec<u8>,
    dp: Vec<u8>,
    dq: Vec<u8>,
    qinv: Vec<u8>,
}

fn crt_of(key: &rsa::PrivateKey) -> Crt {
    let bytes = |v: &BoxedUint| v.to_be_bytes_trimmed_vartime().to_vec();
    Crt {
        p: bytes(key.primes()[0].as_ref()),
        q: bytes(key.primes()[1].as_ref()),
        dp: bytes(key.dp().expect("a generated key has dP")),
        dq: bytes(key.dq().expect("a generated key has dQ")),
        qinv: bytes(&key.crt_coefficient().expect("a generated key has qInv")),
    }
}

fn import(card: &mut card_os::Card, slot: KeySlot, algorithm: KeyAlgorithm, crt: &Crt) -> u16 {
    let mut reader = card_transport::DirectReader::new(card);
    let parts = RsaCrtParts {
        p: &crt.p,
        q: &crt.q,
        dp: &crt.dp,
        dq: &crt.dq,
        qinv: &crt.qinv,
    };
    let options = GenerateOptions {
        pin_policy: PinPolicy::Never,
        touch_policy: TouchPolicy::Never,
    };
    match PivSession::attach(&mut reader).import_rsa(slot, algorithm, &parts, options) {
        Ok(()) => 0x9000,
        Err(error) => error.status_word().expect("a status word").to_u16(),
    }
}

#[test]
fn an_imported_rsa_key_signs_as_the_host_key_and_a_mismatched_crt_set_is_refused() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(42);
    let key = rsa::PrivateKey::new(&mut rng, 2048).unwrap();
    let crt = crt_of(&key);
    let mut card = card();
    default_auth(&mut card);

    // Every part tampered with, one at a time: refused, and the slot stays empty.
    for part in 0..5 {
        let mut bad = crt_of(&key);
        let field = [
            &mut bad.p,
            &mut bad.q,
            &mut bad.dp,
            &mut bad.dq,
            &mut bad.qinv,
        ]
        .into_iter()
        .nth(part)
        .unwrap();
        let last = field.len() - 1;
        field[last] ^= 0x02;
        assert_eq!(
            import(&mut card, KeySlot::Signature, KeyAlgorithm::Rsa2048, &bad),
            0x6A80,
            "part {part}"
        );
    }
    // The wrong size for the algorithm.
    assert_eq!(
        import(&mut card, KeySlot::Signature, KeyAlgorithm::Rsa3072, &crt),
        0x6A80
    );
    assert_eq!(tx(&mut card, "00 F7 00 9C"), "6A88");

    assert_eq!(
        import(&mut card, KeySlot::Signature, KeyAlgorithm::Rsa2048, &crt),
        0x9000
    );
    let mut reader = card_transport::DirectReader::new(&mut card);
    let metadata = PivSession::attach(&mut reader).metadata(0x9C).unwrap();
    assert_eq!(metadata.origin, Some(0x02), "imported");
    assert_eq!(
        metadata.policy,
        Some((PinPolicy::Never.byte(), TouchPolicy::Never.byte()))
    );
    let reported =
        PublicKey::from_template(KeyAlgorithm::Rsa2048, &metadata.public_key.unwrap()).unwrap();
    let PublicKey::Rsa { modulus, .. } = &reported else {
        panic!("RSA");
    };
    assert_eq!(BoxedUint::from_be_slice_vartime(modulus), *key.n().as_ref());

    // PIN policy never: no VERIFY needed.
    let hash = [0x33; 32];
    let block = signature_block(&hash, 256);
    let (signature, sw) = private_op(&mut card, KeySlot::Signature, KeyAlgorithm::Rsa2048, &block);
    assert_eq!(sw, 0x9000);
    let expected = key
        .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash)
        .unwrap();
    assert_eq!(
        signature, expected,
        "the same signature as the host's own key"
    );

    // An imported key cannot be attested (YubiKey answers 6A 80).
    assert_eq!(tx(&mut card, "00 F9 9C 00"), "6A80");
}

#[test]
fn a_generated_rsa_key_is_attested_with_its_own_public_key() {
    use der::Decode as _;
    let mut card = card();
    default_auth(&mut card);
    let public = generate_rsa(
        &mut card,
        KeySlot::CardAuthentication,
        KeyAlgorithm::Rsa2048,
    );
    let mut reader = card_transport::DirectReader::new(&mut card);
    let der = PivSession::attach(&mut reader)
        .attest(KeySlot::CardAuthentication)
        .expect("attestation");
    let certificate = x509_cert::Certificate::from_der(&der).expect("an X.509 certificate");
    let spki = &certificate.tbs_certificate().subject_public_key_info();
    assert_eq!(
        spki.algorithm.oid,
        der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
        "rsaEncryption"
    );
    use rsa::pkcs8::DecodePublicKey as _;
    let spki_der = der::Encode::to_der(*spki).unwrap();
    let attested = rsa::PublicKey::from_public_key_der(&spki_der).unwrap();
    assert_eq!(attested, host_public(&public));
}

#[test]
fn an_rsa_key_survives_the_card_image_and_moves_between_slots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.img");
    let public = {
        let mut card = file_card(&path, 9);
        default_auth(&mut card);
        let public = generate_rsa(&mut card, slot(0x86), KeyAlgorithm::Rsa1024);
        // MOVE KEY 86 → 87, then the key answers from 87 only.
        assert_eq!(tx(&mut card, "00 F6 87 86"), "9000");
        public
    };
    let mut card = reopen(&path);
    assert_eq!(tx(&mut card, "00 F7 00 86"), "6A88");
    let hash = [0x44; 32];
    let block = signature_block(&hash, 128);
    assert_eq!(verify_pin(&mut card), 0x9000);
    let (signature, sw) = private_op(&mut card, slot(0x87), KeyAlgorithm::Rsa1024, &block);
    assert_eq!(sw, 0x9000);
    host_public(&public)
        .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash, &signature)
        .unwrap();
}
