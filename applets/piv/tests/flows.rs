//! ykpiv / OpenSC style flows as byte transcripts over a real card in memory.

#![allow(clippy::unwrap_used)]

mod support;

use card_os::crypto::Crypto;
use der::{Decode, Encode};
use support::*;
use x509_cert::Certificate;

#[test]
fn select_by_prefix_and_version_serial_metadata() {
    let mut card = card_with(7, Vec::new());
    assert_eq!(tx(&mut card, SELECT_9), SELECT_ANSWER);
    assert_eq!(tx(&mut card, SELECT_5), SELECT_ANSWER);
    assert_eq!(tx(&mut card, "00 FD 00 00 00"), "0507019000");
    let serial = tx(&mut card, "00 F8 00 00 00");
    assert_eq!(serial.len(), 12);
    assert_eq!(sw(&serial), "9000");
    // Management key metadata: 3DES, no touch, default.
    assert_eq!(tx(&mut card, "00 F7 00 9B 00"), "010103020200010501019000");
    // PIN and PUK: default, 3 of 3.
    assert_eq!(
        tx(&mut card, "00 F7 00 80 00"),
        "0101FF0501010602030390 00".replace(' ', "")
    );
    assert_eq!(tx(&mut card, "00 F7 00 81 00"), "0101FF050101060203039000");
    // Empty slot and the bio probe: 6A88.
    assert_eq!(tx(&mut card, "00 F7 00 9A 00"), "6A88");
    assert_eq!(tx(&mut card, "00 F7 00 96 00"), "6A88");
    // The attestation key exists: generated, no PIN, no touch.
    let f9 = tx(&mut card, "00 F7 00 F9 00");
    assert!(f9.starts_with("0101110202010103010104438641"), "{f9}");
    // Discovery, exactly.
    assert_eq!(
        tx(&mut card, "00 CB 3F FF 03 5C 01 7E 00"),
        "7E124F0BA0000003080000100001005F2F0240009000"
    );
}

#[test]
fn opensc_probes_with_le_8_then_reads_everything() {
    let mut card = card();
    let first = tx(&mut card, "00 CB 3F FF 05 5C 03 5F C1 02 08");
    assert!(first.starts_with("533B3019"), "{first}");
    assert!(sw(&first).starts_with("61"));
    let (chuid, status) = get_object(&mut card, &[0x5F, 0xC1, 0x02]);
    assert_eq!(status, 0x9000);
    let guid = card_os::apdu::tlv::find(&chuid, 0x34u32).unwrap().unwrap();
    assert_eq!(guid.len(), 16);
    let (ccc, status) = get_object(&mut card, &[0x5F, 0xC1, 0x07]);
    assert_eq!(status, 0x9000);
    assert!(!hex::encode_upper(&ccc).contains("F310"));
    assert_eq!(get_object(&mut card, &[0x5F, 0xC1, 0x0C]).1, 0x6A82);
    assert_eq!(get_object(&mut card, &[0x5F, 0xC1, 0x05]).1, 0x6A82);
    // Other middleware's AIDs: 6A82, and PIV stays usable.
    assert_eq!(tx(&mut card, "00 A4 04 00 07 A0 00 00 01 16 DB 00"), "6A82");
    assert_eq!(tx(&mut card, SELECT_5), SELECT_ANSWER);
}

#[test]
fn generate_put_certificate_chained_read_back_sign_and_ecdh() {
    let mut card = card();
    assert_eq!(tx(&mut card, "00 47 00 9A 05 AC 03 80 01 11 00"), "6982");
    default_auth(&mut card);
    let point = generate(&mut card, 0x9A);
    // Metadata reflects the key.
    let meta = tx(&mut card, "00 F7 00 9A 00");
    assert_eq!(
        meta,
        format!(
            "010111020202010301010443 8641{}9000",
            hex::encode_upper(&point)
        )
        .replace(' ', "")
    );
    // A 1000-byte "certificate" via chaining; read back through 61xx.
    let cert: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let value = {
        let mut v = card_os::apdu::tlv::encode(0x70u32, &cert);
        v.extend_from_slice(&[0x71, 0x01, 0x00, 0xFE, 0x00]);
        v
    };
    assert_eq!(put_object(&mut card, &[0x5F, 0xC1, 0x05], &value), 0x9000);
    let (back, status) = get_object(&mut card, &[0x5F, 0xC1, 0x05]);
    assert_eq!((back, status), (value.clone(), 0x9000));
    // OpenSC-style case-3 PUT DATA delete.
    assert_eq!(tx(&mut card, "00 DB 3F FF 07 5C 03 5F C1 05 53 00"), "9000");
    assert_eq!(get_object(&mut card, &[0x5F, 0xC1, 0x05]).1, 0x6A82);

    // Sign needs the PIN.
    let hash = Crypto::sha256(b"hello tessera");
    assert_eq!(sign(&mut card, 0x9A, &hash).1, 0x6982);
    assert_eq!(tx(&mut card, VERIFY_DEFAULT_PIN), "9000");
    let (sig, status) = sign(&mut card, 0x9A, &hash);
    assert_eq!(status, 0x9000);
    verify_signature(&point, &hash, &sig);
    // Still verified after a re-SELECT (OpenSC re-selects on errors).
    assert_eq!(tx(&mut card, SELECT_9), SELECT_ANSWER);
    assert_eq!(tx(&mut card, "00 20 00 80 00"), "9000");
    let (sig, status) = sign(&mut card, 0x9A, &hash[..20]);
    assert_eq!(status, 0x9000);
    let mut padded = [0u8; 32];
    padded[12..].copy_from_slice(&hash[..20]);
    verify_signature(&point, &padded, &sig);

    // ECDH with 9D against a host key.
    let km = generate(&mut card, 0x9D);
    let mut host = Crypto::new(card_os::crypto::CardRng::seeded(99, 0));
    let host_key = host.generate_p256().unwrap();
    let mut apdu = vec![
        0x00, 0x87, 0x11, 0x9D, 0x47, 0x7C, 0x45, 0x82, 0x00, 0x85, 0x41,
    ];
    apdu.extend_from_slice(&host_key.public_point());
    apdu.push(0x00);
    let (data, status) = tx_all(&mut card, &apdu);
    assert_eq!(status, 0x9000);
    assert_eq!(&data[..4], &[0x7C, 0x22, 0x82, 0x20]);
    let expected = Crypto::ecdh(&host_key, &km).unwrap();
    assert_eq!(&data[4..], expected.expose());
    // A point off the curve: 6A80.
    let mut bad = apdu.clone();
    bad[12] ^= 0x01;
    assert_eq!(tx_all(&mut card, &bad).1, 0x6A80);

    // Log out (ykpiv ≥ 5.4.3), then the PIN is needed again.
    assert_eq!(tx(&mut card, "00 20 FF 80 00"), "9000");
    assert_eq!(tx(&mut card, "00 20 00 80 00"), "63C3");
    assert_eq!(sign(&mut card, 0x9A, &hash).1, 0x6982);
    // A reset drops verification and management authentication.
    assert_eq!(tx(&mut card, VERIFY_DEFAULT_PIN), "9000");
    card.reset();
    assert_eq!(tx(&mut card, SELECT_5), SELECT_ANSWER);
    assert_eq!(tx(&mut card, "00 20 00 80"), "63C3");
    assert_eq!(tx(&mut card, "00 47 00 9A 05 AC 03 80 01 11 00"), "6982");
}

#[test]
fn signature_slot_needs_pin_before_each_signature_and_9e_needs_none() {
    let mut card = card();
    default_auth(&mut card);
    let point = generate(&mut card, 0x9C);
    let card_auth = generate(&mut card, 0x9E);
    let hash = Crypto::sha256(b"sign me");
    assert_eq!(sign(&mut card, 0x9C, &hash).1, 0x6982);
    assert_eq!(tx(&mut card, VERIFY_DEFAULT_PIN), "9000");
    let (sig, status) = sign(&mut card, 0x9C, &hash);
    assert_eq!(status, 0x9000);
    verify_signature(&point, &hash, &sig);
    assert_eq!(
        sign(&mut card, 0x9C, &hash).1,
        0x6982,
        "second signature without PIN"
    );
    assert_eq!(tx(&mut card, VERIFY_DEFAULT_PIN), "9000");
    assert_eq!(sign(&mut card, 0x9C, &hash).1, 0x9000);
    // 9E: no PIN at all, even after a reset.
    card.reset();
    assert_eq!(tx(&mut card, SELECT_5), SELECT_ANSWER);
    let (sig, status) = sign(&mut card, 0x9E, &hash);
    assert_eq!(status, 0x9000);
    verify_signature(&card_auth, &hash, &sig);
    // Metadata shows 9C's PIN-always policy.
    assert!(tx(&mut card, "00 F7 00 9C 00").starts_with("01011102020301"));
}

#[test]
fn policies_given_at_generation_are_kept() {
    let mut card = card();
    default_auth(&mut card);
    // 9A with PIN never, touch always.
    let r = tx(
        &mut card,
        "00 47 00 9A 0B AC 09 80 01 11 AA 01 01 AB 01 02 00",
    );
    // Exactly the answer ykpiv parses by offsets: 7F 49 43 86 41 04‖X‖Y 90 00.
    assert!(r.starts_with("7F4943864104"), "{r}");
    assert_eq!(r.len(), 2 * (5 + 65 + 2));
    assert!(r.ends_with("9000"));
    assert!(tx(&mut card, "00 F7 00 9A 00").starts_with("010111020201020301"));
    let (_, status) = sign(&mut card, 0x9A, &[1; 32]);
    assert_eq!(status, 0x9000);
}

#[test]
fn aes256_management_key_after_set_management_key() {
    let mut card = card();
    let key: Vec<u8> = (0x40..0x60).collect();
    let mut apdu = h("00 FF FF FF 23 0C 9B 20");
    apdu.extend_from_slice(&key);
    assert_eq!(txb(&mut card, &apdu), [0x69, 0x82]);
    default_auth(&mut card);
    assert_eq!(txb(&mut card, &apdu), [0x90, 0x00]);
    assert_eq!(
        tx(&mut card, "00 F7 00 9B 00"),
        "0101 0C 0202 0001 050100 9000".replace(' ', "")
    );
    // The old algorithm is refused now; AES-256 works.
    assert_eq!(tx(&mut card, "00 87 03 9B 04 7C 02 80 00 00"), "6A86");
    mgmt_auth(&mut card, 0x0C, &key);
    generate(&mut card, 0x82);
    // AES-128 and AES-192 too, with touch (P2 FE) recorded.
    let aes128 = [0x11u8; 16];
    let mut apdu = h("00 FF FF FE 13 08 9B 10");
    apdu.extend_from_slice(&aes128);
    assert_eq!(txb(&mut card, &apdu), [0x90, 0x00]);
    assert_eq!(tx(&mut card, "00 F7 00 9B 00"), "010108020200020501009000");
    mgmt_auth(&mut card, 0x08, &aes128);
    // Wrong key length for the algorithm.
    assert_eq!(
        tx(
            &mut card,
            "00 FF FF FF 13 0A 9B 10 00000000000000000000000000000000"
        ),
        "6A80"
    );
}

#[test]
fn management_failures_and_external_authentication() {
    let mut card = card();
    // Step 2 without step 1.
    let body = "7C 14 80 08 0000000000000000 81 08 0000000000000000";
    assert_eq!(tx(&mut card, &format!("00 87 03 9B 16 {body}")), "6982");
    // A wrong decrypted witness.
    let r = tx(&mut card, "00 87 03 9B 04 7C 02 80 00 00");
    assert!(r.starts_with("7C0A8008"));
    assert_eq!(tx(&mut card, &format!("00 87 03 9B 16 {body}")), "6982");
    assert_eq!(tx(&mut card, "00 DB 3F FF 07 5C 03 5F C1 05 53 00"), "6982");
    // External authentication (OpenSC piv-tool): 81 00 → C, then 82 E_K(C).
    let (data, status) = tx_all(&mut card, &h("00 87 03 9B 04 7C 02 81 00 00"));
    assert_eq!(status, 0x9000);
    assert_eq!(&data[..4], &[0x7C, 0x0A, 0x81, 0x08]);
    let response = Crypto::block_encrypt(
        card_os::crypto::BlockCipher::TripleDes,
        &h(DEFAULT_KEY),
        &data[4..],
    )
    .unwrap();
    let mut apdu = h("00 87 03 9B 0C 7C 0A 82 08");
    apdu.extend_from_slice(&response);
    assert_eq!(txb(&mut card, &apdu), [0x90, 0x00]);
    assert_eq!(tx(&mut card, "00 DB 3F FF 07 5C 03 5F C1 05 53 00"), "9000");
    // Replay of the same response: the challenge was consumed.
    assert_eq!(txb(&mut card, &apdu), [0x69, 0x82]);
}

#[test]
fn attestation_certificate_verifies_under_the_f9_certificate() {
    use p256::ecdsa::signature::Verifier;
    let mut card = card();
    default_auth(&mut card);
    let point = generate(&mut card, 0x9A);
    let (attestation, status) = tx_all(&mut card, &h("00 F9 9A 00 00"));
    assert_eq!(status, 0x9000);
    let cert = Certificate::from_der(&attestation).unwrap();
    let (object, status) = get_object(&mut card, &[0x5F, 0xFF, 0x01]);
    assert_eq!(status, 0x9000);
    let f9_der = card_os::apdu::tlv::find(&object, 0x70u32).unwrap().unwrap();
    let f9 = Certificate::from_der(f9_der).unwrap();
    assert_eq!(
        cert.tbs_certificate().issuer(),
        f9.tbs_certificate().subject()
    );
    assert_eq!(
        f9.tbs_certificate().subject().to_string(),
        piv_applet::ATTESTATION_SUBJECT.to_string()
    );
    let issuer_point = f9
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let issuer = p256::ecdsa::VerifyingKey::from_sec1_bytes(&issuer_point).unwrap();
    let tbs = cert.tbs_certificate().to_der().unwrap();
    let sig = p256::ecdsa::DerSignature::from_bytes(cert.signature().raw_bytes()).unwrap();
    issuer.verify(&tbs, &sig).unwrap();
    // The self-signed F9 certificate verifies under its own key.
    let f9_sig = p256::ecdsa::DerSignature::from_bytes(f9.signature().raw_bytes()).unwrap();
    issuer
        .verify(&f9.tbs_certificate().to_der().unwrap(), &f9_sig)
        .unwrap();
    // The attested key is the slot's key; Yubico extensions present.
    assert_eq!(
        cert.tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes(),
        &point[..]
    );
    let exts = cert.tbs_certificate().extensions().unwrap();
    let firmware = exts
        .iter()
        .find(|e| e.extn_id.to_string() == "1.3.6.1.4.1.41482.3.3")
        .unwrap();
    assert_eq!(firmware.extn_value.as_bytes(), &[5, 7, 1]);
    // Empty slot 6A88, imported key 6A80.
    assert_eq!(tx(&mut card, "00 F9 9C 00 00"), "6A88");
    let d = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721";
    assert_eq!(tx(&mut card, &format!("00 FE 11 9C 22 06 20 {d}")), "9000");
    assert_eq!(tx(&mut card, "00 F9 9C 00 00"), "6A80");
    assert!(tx(&mut card, "00 F7 00 9C 00").starts_with("01011102020301030102"));
}

#[test]
fn import_move_and_delete_keys() {
    let mut card = card();
    let d = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721";
    assert_eq!(tx(&mut card, &format!("00 FE 11 9A 22 06 20 {d}")), "6982");
    default_auth(&mut card);
    assert_eq!(
        tx(&mut card, &format!("00 FE 11 9A 25 06 20 {d} AA 01 01")),
        "9000"
    );
    let pair = Crypto::p256_from_private(&h(d)).unwrap();
    let hash = [0x5A; 32];
    let (sig, status) = sign(&mut card, 0x9A, &hash);
    assert_eq!(status, 0x9000);
    verify_signature(&pair.public_point(), &hash, &sig);
    // Invalid scalar (zero).
    assert_eq!(
        tx(
            &mut card,
            &format!("00 FE 11 9D 22 06 20 {}", "00".repeat(32))
        ),
        "6A80"
    );
    // Move 9A → 85, then 9A is empty and 85 signs.
    assert_eq!(tx(&mut card, "00 F6 85 9A"), "9000");
    assert_eq!(tx(&mut card, "00 F7 00 9A"), "6A88");
    assert_eq!(sign(&mut card, 0x85, &hash).1, 0x9000);
    generate(&mut card, 0x9A);
    // Destination occupied.
    assert_eq!(tx(&mut card, "00 F6 85 9A"), "6985");
    // Delete.
    assert_eq!(tx(&mut card, "00 F6 FF 85"), "9000");
    assert_eq!(tx(&mut card, "00 F6 FF 85"), "6A88");
    assert_eq!(sign(&mut card, 0x85, &hash).1, 0x6A88);
}

#[test]
fn pin_change_unblock_and_retries() {
    let mut card = card();
    // Wrong PIN counts down, status never decrements.
    assert_eq!(
        tx(&mut card, "00 20 00 80 08 31 31 31 31 31 31 FF FF"),
        "63C2"
    );
    assert_eq!(tx(&mut card, "00 20 00 80"), "63C2");
    assert_eq!(tx(&mut card, "00 20 00 80 00"), "63C2");
    assert_eq!(tx(&mut card, VERIFY_DEFAULT_PIN), "9000");
    assert_eq!(tx(&mut card, "00 20 00 80"), "9000");
    // Change PIN to 654321, with a malformed new value refused for free.
    assert_eq!(
        tx(
            &mut card,
            "00 24 00 80 10 313233343536FFFF 3132FFFFFFFFFFFF"
        ),
        "6A80"
    );
    assert_eq!(
        tx(&mut card, "00 24 00 80 0F 313233343536FFFF 36353433323131"),
        "6A80"
    );
    assert_eq!(
        tx(
            &mut card,
            "00 24 00 80 10 313233343536FFFF 363534333231FFFF"
        ),
        "9000"
    );
    assert_eq!(tx(&mut card, "00 F7 00 80"), "0101FF050100060203039000");
    // Block the PIN.
    for left in ["63C2", "63C1", "63C0"] {
        assert_eq!(tx(&mut card, VERIFY_DEFAULT_PIN), left);
    }
    assert_eq!(tx(&mut card, VERIFY_DEFAULT_PIN), "6983");
    assert_eq!(tx(&mut card, "00 20 00 80"), "6983");
    assert_eq!(
        tx(
            &mut card,
            "00 24 00 80 10 363534333231FFFF 313233343536FFFF"
        ),
        "6983"
    );
    // Unblock with the PUK, wrong PUK first.
    assert_eq!(
        tx(
            &mut card,
            "00 2C 00 80 10 3837363534333231 3131313131313131"
        ),
        "63C2"
    );
    assert_eq!(
        tx(
            &mut card,
            "00 2C 00 80 10 3132333435363738 3131313131313131"
        ),
        "9000"
    );
    assert_eq!(tx(&mut card, "00 20 00 80 08 3131313131313131"), "9000");
    // The PUK counter was restored by the right PUK.
    assert_eq!(tx(&mut card, "00 F7 00 81"), "0101FF050101060203039000");
    // Change PUK.
    assert_eq!(
        tx(
            &mut card,
            "00 24 00 81 10 3132333435363738 3837363534333231"
        ),
        "9000"
    );
    assert_eq!(tx(&mut card, "00 F7 00 81"), "0101FF050100060203039000");
    // Set retries: needs management key and PIN; resets both to defaults.
    assert_eq!(tx(&mut card, "00 FA 05 06"), "6982");
    default_auth(&mut card);
    assert_eq!(tx(&mut card, "00 FA 05 06"), "9000");
    assert_eq!(tx(&mut card, "00 F7 00 80"), "0101FF050101060205059000");
    assert_eq!(tx(&mut card, "00 F7 00 81"), "0101FF050101060206069000");
    assert_eq!(tx(&mut card, "00 20 00 80"), "63C5");
    assert_eq!(tx(&mut card, VERIFY_DEFAULT_PIN), "9000");
    assert_eq!(tx(&mut card, "00 FA 00 06"), "6A86");
}

#[test]
fn reset_only_when_pin_and_puk_are_blocked() {
    let mut card = card();
    let (serial, _) = tx_all(&mut card, &h("00 F8 00 00"));
    let (attestation_before, _) = get_object(&mut card, &[0x5F, 0xFF, 0x01]);
    let (chuid_before, _) = get_object(&mut card, &[0x5F, 0xC1, 0x02]);
    default_auth(&mut card);
    generate(&mut card, 0x9A);
    assert_eq!(
        put_object(&mut card, &[0x5F, 0xC1, 0x05], &[0x70, 0x01, 0x00]),
        0x9000
    );
    let new_key: Vec<u8> = vec![0x33; 24];
    let mut apdu = h("00 FF FF FF 1B 03 9B 18");
    apdu.extend_from_slice(&new_key);
    assert_eq!(txb(&mut card, &apdu), [0x90, 0x00]);
    assert_eq!(tx(&mut card, "00 FB 00 00"), "6985");
    for _ in 0..3 {
        tx(&mut card, "00 20 00 80 08 3030303030303030");
    }
    assert_eq!(tx(&mut card, "00 FB 00 00"), "6985");
    for _ in 0..3 {
        tx(
            &mut card,
            "00 2C 00 80 10 3030303030303030 3131313131313131",
        );
    }
    assert_eq!(
        tx(
            &mut card,
            "00 2C 00 80 10 3132333435363738 3131313131313131"
        ),
        "6983"
    );
    assert_eq!(tx(&mut card, "00 FB 00 00"), "9000");
    // Factory state: default PIN, mgmt key, no keys or certificates; serial and attestation kept.
    assert_eq!(tx(&mut card, "00 F7 00 9B"), "010103020200010501019000");
    assert_eq!(tx(&mut card, "00 F7 00 80"), "0101FF050101060203039000");
    assert_eq!(tx(&mut card, "00 F7 00 9A"), "6A88");
    assert_eq!(get_object(&mut card, &[0x5F, 0xC1, 0x05]).1, 0x6A82);
    assert_eq!(tx_all(&mut card, &h("00 F8 00 00")).0, serial);
    assert_eq!(
        get_object(&mut card, &[0x5F, 0xFF, 0x01]).0,
        attestation_before
    );
    let (chuid_after, status) = get_object(&mut card, &[0x5F, 0xC1, 0x02]);
    assert_eq!(status, 0x9000);
    assert_ne!(chuid_after, chuid_before, "a reset card gets a new GUID");
    assert_eq!(tx(&mut card, "00 DB 3F FF 07 5C 03 5F C1 05 53 00"), "6982");
    default_auth(&mut card);
    assert_eq!(tx(&mut card, VERIFY_DEFAULT_PIN), "9000");
    assert!(tx(&mut card, "00 F7 00 F9").starts_with("010111"));
}

#[test]
fn printed_info_needs_the_pin_and_size_cap_is_enforced() {
    let mut card = card();
    default_auth(&mut card);
    assert_eq!(
        put_object(&mut card, &[0x5F, 0xC1, 0x09], &[0x88, 0x00]),
        0x9000
    );
    assert_eq!(get_object(&mut card, &[0x5F, 0xC1, 0x09]).1, 0x6982);
    assert_eq!(tx(&mut card, VERIFY_DEFAULT_PIN), "9000");
    assert_eq!(
        get_object(&mut card, &[0x5F, 0xC1, 0x09]),
        (vec![0x88, 0x00], 0x9000)
    );
    // Yubico admin data is an ordinary object.
    assert_eq!(
        put_object(
            &mut card,
            &[0x5F, 0xFF, 0x00],
            &[0x80, 0x03, 0x81, 0x01, 0x01]
        ),
        0x9000
    );
    assert_eq!(get_object(&mut card, &[0x5F, 0xFF, 0x00]).1, 0x9000);
    let max = vec![0xAB; piv_applet::MAX_OBJECT_LEN];
    assert_eq!(put_object(&mut card, &[0x5F, 0xC1, 0x0A], &max), 0x9000);
    assert_eq!(get_object(&mut card, &[0x5F, 0xC1, 0x0A]).0, max);
    let too_big = vec![0xAB; piv_applet::MAX_OBJECT_LEN + 1];
    assert_eq!(put_object(&mut card, &[0x5F, 0xC1, 0x0A], &too_big), 0x6A84);
    // Discovery cannot be written; malformed bodies are 6A80.
    assert_eq!(tx(&mut card, "00 DB 3F FF 05 5C 01 7E 53 00"), "6A80");
    assert_eq!(tx(&mut card, "00 DB 3F FF 06 5C 03 5F C1 05 53"), "6A80");
    assert_eq!(
        tx(&mut card, "00 DB 3F FF 09 5C 03 5F C1 05 53 00 01 02"),
        "6A80"
    );
}

#[test]
fn cards_get_different_guids_and_the_same_seed_gives_the_same_transcript() {
    let script = [
        SELECT_5,
        "00 FD 00 00",
        "00 F8 00 00",
        "00 CB 3F FF 05 5C 03 5F C1 02 00",
        "00 87 03 9B 04 7C 02 80 00 00",
        "00 F9 F9 00",
        "00 CB 3F FF 05 5C 03 5F FF 01 00",
    ];
    let run = |seed: u64| -> Vec<String> {
        let mut card = card_with(seed, Vec::new());
        script.iter().map(|apdu| tx(&mut card, apdu)).collect()
    };
    assert_eq!(run(11), run(11));
    let guid = |seed: u64| {
        let mut card = card_with(seed, Vec::new());
        tx(&mut card, SELECT_5);
        let (chuid, _) = get_object(&mut card, &[0x5F, 0xC1, 0x02]);
        card_os::apdu::tlv::find(&chuid, 0x34u32)
            .unwrap()
            .unwrap()
            .to_vec()
    };
    assert_ne!(guid(1), guid(2));
    // Two OS-random cards too.
    let os_guid = || {
        let inst = card_os::Installation {
            aid: piv_applet::aid(),
            params: Vec::new(),
            default_selected: true,
        };
        let mut card = card_os::Card::create(
            card_os::CardConfig::default(),
            &registry(),
            &[inst],
            card_os::Storage::Memory,
        )
        .unwrap();
        let (chuid, _) = get_object(&mut card, &[0x5F, 0xC1, 0x02]);
        chuid
    };
    assert_ne!(os_guid(), os_guid());
}

#[test]
fn installation_parameters_are_applied() {
    let params = piv_applet::InstallParams {
        pin: card_os::Secret::new(b"24681357".to_vec()),
        puk: card_os::Secret::new(b"ABCDEFGH".to_vec()),
        pin_retries: 5,
        puk_retries: 2,
        management_key: card_os::Secret::new(vec![0x42; 32]),
        management_algorithm: piv_applet::ManagementAlgorithm::Aes256,
        serial: 1234567,
    };
    let mut card = card_with(5, params.to_bytes());
    tx(&mut card, SELECT_5);
    assert_eq!(tx(&mut card, "00 F8 00 00"), "0012D6879000");
    assert_eq!(tx(&mut card, "00 F7 00 80"), "0101FF050100060205059000");
    assert_eq!(tx(&mut card, "00 F7 00 81"), "0101FF050100060202029000");
    assert_eq!(tx(&mut card, "00 F7 00 9B"), "01010C020200010501009000");
    assert_eq!(tx(&mut card, "00 20 00 80 08 3234363831333537"), "9000");
    mgmt_auth(&mut card, 0x0C, &[0x42; 32]);
    // Bad parameters make installation fail.
    let bad = piv_applet::InstallParams {
        pin: card_os::Secret::new(b"12".to_vec()),
        ..piv_applet::InstallParams::default()
    };
    let inst = card_os::Installation {
        aid: piv_applet::aid(),
        params: bad.to_bytes(),
        default_selected: false,
    };
    assert!(
        card_os::Card::create(config(1), &registry(), &[inst], card_os::Storage::Memory).is_err()
    );
}

/// P-384 (algorithm 14), as YubiKey 5.7 does it: generated and imported keys, SHA-384 signatures,
/// ECDH, metadata and attestation.
#[test]
fn p384_keys_generate_sign_agree_report_and_attest() {
    use p384::ecdsa::signature::hazmat::PrehashVerifier;
    use sha2::Digest;
    let mut card = card();
    default_auth(&mut card);
    // GENERATE: 7F49 { 86 61 04‖X‖Y } — a 97-byte point.
    let (answer, status) = tx_all(&mut card, &h("00 47 00 9D 05 AC 03 80 01 14 00"));
    assert_eq!(status, 0x9000);
    let template = card_os::apdu::tlv::find(&answer, 0x7F49u32)
        .unwrap()
        .unwrap();
    let point = card_os::apdu::tlv::find(template, 0x86u32)
        .unwrap()
        .unwrap()
        .to_vec();
    assert_eq!((point.len(), point[0]), (97, 0x04));
    let verifying = p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();

    // Sign a SHA-384 hash (9D: PIN once).
    let hash: [u8; 48] = sha2::Sha384::digest(b"tessera").into();
    let mut sign = h("00 87 14 9D 36 7C 34 82 00 81 30");
    sign.extend_from_slice(&hash);
    sign.push(0x00);
    assert_eq!(txb(&mut card, &sign), h("6982"), "the PIN first");
    tx(&mut card, VERIFY_DEFAULT_PIN);
    let (answer, status) = tx_all(&mut card, &sign);
    assert_eq!(status, 0x9000);
    let inner = card_os::apdu::tlv::find(&answer, 0x7Cu32).unwrap().unwrap();
    let der = card_os::apdu::tlv::find(inner, 0x82u32).unwrap().unwrap();
    let signature = p384::ecdsa::DerSignature::from_bytes(der).unwrap();
    verifying.verify_prehash(&hash, &signature).unwrap();
    // The P-256 algorithm byte on a P-384 key is refused.
    assert_eq!(tx(&mut card, "00 87 11 9D 07 7C 05 82 00 81 01 AA"), "6A86");

    // ECDH with a host key: both sides agree.
    let host = p384::SecretKey::from_slice(&[0x42; 48]).unwrap();
    let host_point = p384_point(&host);
    let mut ecdh = h("00 87 14 9D 67 7C 65 82 00 85 61");
    ecdh.extend_from_slice(&host_point);
    ecdh.push(0x00);
    let (answer, status) = tx_all(&mut card, &ecdh);
    assert_eq!(status, 0x9000);
    let inner = card_os::apdu::tlv::find(&answer, 0x7Cu32).unwrap().unwrap();
    let shared = card_os::apdu::tlv::find(inner, 0x82u32).unwrap().unwrap();
    let card_public = p384::PublicKey::from_sec1_bytes(&point).unwrap();
    let expected = p384::ecdh::diffie_hellman(host.to_nonzero_scalar(), card_public.as_affine());
    assert_eq!(shared, expected.raw_secret_bytes().as_slice());

    // Metadata: algorithm 14, PIN once / touch never, generated, the point.
    let metadata = tx(&mut card, "00 F7 00 9D 00");
    assert!(
        metadata.starts_with(&format!(
            "010114020202010301010463866104{}",
            hex::encode_upper(&point[1..])
        )),
        "{metadata}"
    );

    // Attestation: a certificate for the P-384 key, signed by the F9 (P-256) key.
    let (attestation, status) = tx_all(&mut card, &h("00 F9 9D 00 00"));
    assert_eq!(status, 0x9000);
    let cert = Certificate::from_der(&attestation).unwrap();
    assert_eq!(
        cert.tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes(),
        &point[..]
    );

    // IMPORT: a P-384 scalar (06 30 d); the metadata says imported and shows its point.
    let scalar = [0x17u8; 48];
    let mut import = h("00 FE 14 9E 32 06 30");
    import.extend_from_slice(&scalar);
    assert_eq!(txb(&mut card, &import), h("9000"));
    let imported = p384::SecretKey::from_slice(&scalar).unwrap();
    let imported_point = p384_point(&imported);
    let metadata = tx(&mut card, "00 F7 00 9E 00");
    assert!(
        metadata.starts_with(&format!(
            "010114020201010301020463866104{}",
            hex::encode_upper(&imported_point[1..])
        )),
        "{metadata}"
    );
    // A scalar of P-256's length is the wrong length for algorithm 14.
    let mut short = h("00 FE 14 9E 22 06 20");
    short.extend_from_slice(&[0x17; 32]);
    assert_eq!(txb(&mut card, &short), h("6A80"));
}

/// The uncompressed public point of a P-384 key.
fn p384_point(secret: &p384::SecretKey) -> Vec<u8> {
    use p384::elliptic_curve::sec1::ToSec1Point;
    secret.public_key().to_sec1_point(false).as_bytes().to_vec()
}
