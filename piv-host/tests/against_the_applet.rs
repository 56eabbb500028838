//! The client against the real PIV applet, in process: every method, and the refusals it reports.
#![allow(clippy::unwrap_used)]

use apdu::StatusWord;
use card_os::{AppletRegistry, Card, CardConfig, Installation, Storage};
use card_transport::{share, InProcessReader};
use piv_host::{GenerateOptions, ManagementKey, PinOutcome, PinValue, PivError, PivSession};
use piv_types::{KeyAlgorithm, KeySlot, ManagementAlgorithm, ObjectId, PinReference};

fn reader() -> InProcessReader {
    let applets = AppletRegistry::new().register(piv_applet::aid(), piv_applet::factory);
    let install = Installation {
        aid: piv_applet::aid(),
        params: Vec::new(),
        default_selected: false,
    };
    let card = Card::create(CardConfig::default(), &applets, &[install], Storage::Memory).unwrap();
    InProcessReader::new(share(card))
}

fn pin(text: &str) -> PinValue {
    PinValue::new(text).unwrap()
}

#[test]
fn keys_are_generated_used_and_attested() {
    let mut reader = reader();
    let mut piv = PivSession::open(&mut reader).unwrap();
    // Without the management key the card refuses to generate.
    let refused = piv
        .generate(
            KeySlot::Authentication,
            KeyAlgorithm::EccP256,
            GenerateOptions::default(),
        )
        .unwrap_err();
    assert_eq!(
        refused.status_word(),
        Some(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
    );
    piv.authenticate(&ManagementKey::factory()).unwrap();
    let public = piv
        .generate(
            KeySlot::CardAuthentication,
            KeyAlgorithm::EccP256,
            GenerateOptions::default(),
        )
        .unwrap();
    let point = public.ec_point().unwrap().to_vec();
    assert_eq!(point[0], 0x04);

    let hash = [0x5A; 32];
    let der = piv
        .sign(KeySlot::CardAuthentication, KeyAlgorithm::EccP256, &hash)
        .unwrap();
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    key.verify_prehash(&hash, &p256::ecdsa::DerSignature::from_bytes(&der).unwrap())
        .unwrap();

    let metadata = piv
        .metadata(KeySlot::CardAuthentication.reference())
        .unwrap();
    assert_eq!(metadata.algorithm, Some(KeyAlgorithm::EccP256.id()));
    assert_eq!(metadata.origin, Some(0x01));
    assert!(metadata.public_key.unwrap().ends_with(&point));

    let attestation = piv.attest(KeySlot::CardAuthentication).unwrap();
    assert_eq!(attestation[0], 0x30, "a DER certificate");
    assert_eq!(
        piv.read_certificate(KeySlot::CardAuthentication).unwrap(),
        None
    );
    piv.put_certificate(KeySlot::CardAuthentication, &attestation)
        .unwrap();
    assert_eq!(
        piv.read_certificate(KeySlot::CardAuthentication).unwrap(),
        Some(attestation)
    );

    // ECDH in 9D with a host key.
    let host = p256::SecretKey::from_bytes(&[7u8; 32].into()).unwrap();
    let card_public = piv
        .generate(
            KeySlot::KeyManagement,
            KeyAlgorithm::EccP256,
            GenerateOptions::default(),
        )
        .unwrap();
    assert!(piv.verify_pin(&pin("123456")).unwrap() == PinOutcome::Verified);
    use p256::elliptic_curve::sec1::ToSec1Point;
    let host_point = host.public_key().to_sec1_point(false);
    let shared = piv
        .ecdh(
            KeySlot::KeyManagement,
            KeyAlgorithm::EccP256,
            host_point.as_bytes(),
        )
        .unwrap();
    let card_key = p256::PublicKey::from_sec1_bytes(card_public.ec_point().unwrap()).unwrap();
    let expected = p256::ecdh::diffie_hellman(host.to_nonzero_scalar(), card_key.as_affine());
    assert_eq!(&shared[..], expected.raw_secret_bytes().as_slice());

    piv.move_key(KeySlot::KeyManagement, None).unwrap();
    assert!(piv.metadata(KeySlot::KeyManagement.reference()).is_err());
}

#[test]
fn objects_are_written_read_and_deleted() {
    let mut reader = reader();
    let mut piv = PivSession::open(&mut reader).unwrap();
    piv.authenticate(&ManagementKey::factory()).unwrap();
    let chuid = piv.get_object(ObjectId::CHUID).unwrap();
    assert_eq!(chuid.len(), 59);
    let long: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    piv.put_object(ObjectId::KEY_HISTORY, &long).unwrap();
    assert_eq!(piv.get_object(ObjectId::KEY_HISTORY).unwrap(), long);
    piv.delete_object(ObjectId::KEY_HISTORY).unwrap();
    assert_eq!(piv.read_object(ObjectId::KEY_HISTORY).unwrap(), None);
    assert!(matches!(
        piv.get_object(ObjectId::KEY_HISTORY),
        Err(PivError::Refused { .. })
    ));
    assert!(!piv.get_object(ObjectId::DISCOVERY).unwrap().is_empty());
}

#[test]
fn pins_are_checked_changed_blocked_and_unblocked() {
    let mut reader = reader();
    let mut piv = PivSession::open(&mut reader).unwrap();
    assert_eq!(
        piv.pin_status().unwrap(),
        PinOutcome::Wrong { tries_left: 3 }
    );
    assert_eq!(
        piv.verify_pin(&pin("000000")).unwrap(),
        PinOutcome::Wrong { tries_left: 2 }
    );
    assert_eq!(
        piv.verify_pin(&pin("123456")).unwrap(),
        PinOutcome::Verified
    );
    assert_eq!(piv.pin_status().unwrap(), PinOutcome::Verified);
    piv.log_out().unwrap();
    assert_eq!(
        piv.pin_status().unwrap(),
        PinOutcome::Wrong { tries_left: 3 }
    );
    assert_eq!(
        piv.change_reference(PinReference::Pin, &pin("123456"), &pin("24681357"))
            .unwrap(),
        PinOutcome::Verified
    );
    for left in [2, 1] {
        assert_eq!(
            piv.verify_pin(&pin("123456")).unwrap(),
            PinOutcome::Wrong { tries_left: left }
        );
    }
    assert_eq!(
        piv.verify_pin(&pin("123456")).unwrap(),
        PinOutcome::Wrong { tries_left: 0 }
    );
    assert_eq!(
        piv.verify_pin(&pin("24681357")).unwrap(),
        PinOutcome::Blocked
    );
    assert_eq!(
        piv.unblock_pin(&pin("12345678"), &pin("13572468")).unwrap(),
        PinOutcome::Verified
    );
    assert_eq!(
        piv.verify_pin(&pin("13572468")).unwrap(),
        PinOutcome::Verified
    );
}

#[test]
fn the_management_key_is_replaced_and_a_wrong_one_is_refused() {
    let mut reader = reader();
    let mut piv = PivSession::open(&mut reader).unwrap();
    piv.authenticate(&ManagementKey::factory()).unwrap();
    let aes = ManagementKey::new(ManagementAlgorithm::Aes192, &[0x42; 24]).unwrap();
    piv.set_management_key(&aes, false).unwrap();
    piv.authenticate(&aes).unwrap();
    let refused = piv.authenticate(&ManagementKey::factory()).unwrap_err();
    assert!(refused.status_word().is_some(), "{refused}");
    let wrong = ManagementKey::new(ManagementAlgorithm::Aes192, &[0x43; 24]).unwrap();
    let refused = piv.authenticate(&wrong).unwrap_err();
    assert_eq!(
        refused.status_word(),
        Some(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
    );
    let meta = piv.metadata(0x9B).unwrap();
    assert_eq!(meta.algorithm, Some(ManagementAlgorithm::Aes192.id()));
    assert_eq!(meta.is_default, Some(false));
}

#[test]
fn yubikey_identity() {
    let mut reader = reader();
    let mut piv = PivSession::open(&mut reader).unwrap();
    assert_eq!(piv.version().unwrap().to_string(), "5.7.1");
    assert!(piv.serial().unwrap() > 0);
}
