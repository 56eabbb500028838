//! End to end: a census of many users is personalized; after delivery and registration, envelope half +
//! e-mail half is the PIN the card's VERIFY accepts (and the PUK unblocks it) while the envelope half
//! alone is refused; the 9A certificate names the holder, lasts 6 years, chains to the staging CA and
//! holds the key the card generated.

mod support;

use std::time::{Duration, SystemTime};

use der::{Decode, Encode};
use personalization::batch::{self, BatchOptions};
use personalization::ca::StagingCa;
use personalization::lifecycle::{Batch, Mailer};
use personalization::registry::{CardState, EventKind};
use piv_host::{PinOutcome, PivSession};
use piv_types::KeySlot;
use support::*;

struct Bureau {
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
    batch: std::path::PathBuf,
    census: std::path::PathBuf,
    keys: [String; 5],
}

fn bureau(operators: usize) -> Bureau {
    let dir = tempfile::tempdir().expect("tempdir");
    let (csv, keys) = big_census(operators);
    let census = dir.path().join("census.csv");
    std::fs::write(&census, csv).expect("write census");
    let ca = dir.path().join("ca");
    StagingCa::init(&ca, SystemTime::now()).expect("ca init");
    let batch = dir.path().join("batch");
    Bureau {
        ca,
        batch,
        census,
        keys,
        _dir: dir,
    }
}

fn personalize(b: &Bureau) -> batch::BatchSummary {
    batch::personalize(
        &b.census,
        &b.ca,
        &b.batch,
        &piv_options(),
        &mut |_, _, _| {},
    )
    .expect("personalize")
}

fn open(b: &Bureau) -> (Batch<'_>, Mailer) {
    let batch = Batch::open(&b.batch, None, SystemTime::now()).expect("open batch");
    let mailer = Mailer::for_batch(&b.batch, None);
    (batch, mailer)
}

fn card_of(batch: &Batch<'_>, cf: &str) -> personalization::registry::CardRow {
    batch
        .registry
        .current_card(cf)
        .expect("registry")
        .unwrap_or_else(|| panic!("{cf} has no card"))
}

#[test]
fn census_to_working_card() {
    let b = bureau(6);
    let [prefecture_als, mayor, als, operator, shared] = b.keys.clone();
    let summary = personalize(&b);
    // 3 prefecture users + 2 × (mayor, ALS, ALP, 6 operators) + the shared person once.
    assert_eq!(summary.total, 3 + 2 * 9 + 1);
    assert_eq!(summary.personalized, summary.total);

    let (mut bureau_batch, mailer) = open(&b);
    let cards = bureau_batch.registry.cards().expect("cards");
    assert_eq!(cards.len(), summary.total, "one card per person");
    // Numbering: ISTAT code + progressive; the prefecture uses province code + 000.
    assert!(cards.iter().any(|c| c.card_number == "058000000001"));
    assert!(cards.iter().any(|c| c.card_number == "058047000001"));
    // The person in both municipalities has one card linked to both.
    let shared_card = card_of(&bureau_batch, &shared);
    assert_eq!(shared_card.entities, ["058047", "058050"]);
    assert!(cards.iter().all(|c| c.state == CardState::Personalized));

    // Nothing is released before registration.
    assert!(emails(&b.batch, &card_of(&bureau_batch, &operator).card_number).is_empty());

    // Prefecture → mayor: the mayor's card is active on delivery and its halves go out.
    let (delivered, activated) = bureau_batch
        .deliver("058047", &mayor, &mailer)
        .expect("deliver");
    assert_eq!(delivered.len(), 9 + 1);
    let mayor_card = card_of(&bureau_batch, &mayor);
    assert_eq!(activated, std::slice::from_ref(&mayor_card.card_number));
    assert_eq!(emails(&b.batch, &mayor_card.card_number).len(), 1);

    // An operator cannot register cards; the ALS cannot until the mayor registered the ALS's card.
    let operator_card = card_of(&bureau_batch, &operator);
    assert!(bureau_batch
        .register(&operator_card.card_number, &operator, &mailer)
        .is_err());
    assert!(bureau_batch
        .register(&operator_card.card_number, &als, &mailer)
        .is_err());
    // Re-sending is only for registered cards.
    assert!(bureau_batch
        .resend(&operator_card.card_number, &mayor, &mailer)
        .is_err());
    let als_card = card_of(&bureau_batch, &als);
    bureau_batch
        .register(&als_card.card_number, &mayor, &mailer)
        .expect("mayor registers ALS");
    bureau_batch
        .register(&operator_card.card_number, &als, &mailer)
        .expect("ALS registers operator");
    assert!(
        bureau_batch
            .register(&operator_card.card_number, &als, &mailer)
            .is_err(),
        "twice"
    );
    let _ = prefecture_als;

    // Envelope half + e-mail half = the PIN the card accepts.
    let envelope = envelope(&b.batch, &operator_card.card_number);
    assert_eq!(envelope["codice_fiscale"], operator.as_str());
    assert_eq!(envelope["card_number"], operator_card.card_number.as_str());
    let mails = emails(&b.batch, &operator_card.card_number);
    assert_eq!(mails.len(), 1);
    let pin = format!(
        "{}{}",
        envelope["pin_first_half"].as_str().expect("pin half"),
        email_field(&mails[0], "PIN-Second-Half")
    );
    let puk = format!(
        "{}{}",
        envelope["puk_first_half"].as_str().expect("puk half"),
        email_field(&mails[0], "PUK-Second-Half")
    );
    assert_eq!(pin.len(), 8);
    let mut reader = in_process(open_card(
        &b.batch,
        envelope["card_file"].as_str().expect("card file"),
    ));
    let mut card = PivSession::open(&mut reader).expect("PIV selects");
    assert_eq!(
        card.pin_status().expect("status"),
        PinOutcome::Wrong { tries_left: 3 }
    );
    // The envelope half alone is refused (and costs a try, as any wrong PIN).
    let half = envelope["pin_first_half"]
        .as_str()
        .expect("half")
        .to_string();
    assert_ne!(verify(&mut card, &half), PinOutcome::Verified);
    assert_eq!(verify(&mut card, &pin), PinOutcome::Verified);
    // Block the PIN, then the PUK unblocks it with a new PIN.
    for _ in 0..3 {
        verify(&mut card, "00000000");
    }
    assert_eq!(verify(&mut card, &pin), PinOutcome::Blocked);
    assert_eq!(
        card.unblock_pin(&pin_value(&puk), &pin_value("24681357"))
            .expect("unblock"),
        PinOutcome::Verified
    );
    assert_eq!(verify(&mut card, "24681357"), PinOutcome::Verified);

    // The 9A certificate: CN = codice fiscale, 6 years, issued by the staging CA, the card's own key.
    let der_bytes = card
        .read_certificate(KeySlot::Authentication)
        .expect("GET DATA")
        .expect("70 certificate");
    let der_bytes = &der_bytes[..];
    let certificate = x509_cert::Certificate::from_der(der_bytes).expect("X.509");
    let subject = certificate.tbs_certificate().subject().to_string();
    assert!(subject.contains(&format!("CN={operator}")), "{subject}");
    let validity = certificate.tbs_certificate().validity();
    let years = validity.not_after.to_unix_duration().as_secs()
        - validity.not_before.to_unix_duration().as_secs();
    let days = years / 86_400;
    assert!(
        (6 * 365 + 1..=6 * 365 + 2).contains(&days),
        "{days} days is not 6 years"
    );
    let ca = StagingCa::open(&b.ca).expect("ca");
    // Card certificates come from the cards issuing CA, under the root.
    let ca_cert = x509_cert::Certificate::from_der(
        &ca.issuing_certificate_der(personalization::ca::Issuing::Cards),
    )
    .expect("cards CA cert");
    assert_eq!(
        certificate.tbs_certificate().issuer(),
        ca_cert.tbs_certificate().subject()
    );
    // Signature by the CA key.
    use p256::ecdsa::signature::Verifier;
    let ca_key = p256::ecdsa::VerifyingKey::from_sec1_bytes(
        ca_cert
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes(),
    )
    .expect("CA key");
    let signature =
        p256::ecdsa::DerSignature::from_bytes(certificate.signature().raw_bytes()).expect("sig");
    let tbs = certificate.tbs_certificate().to_der().expect("tbs");
    ca_key
        .verify(&tbs, &signature)
        .expect("chains to the staging CA");
    // The certified key is the card's 9A key (metadata F7 9A carries it), and the card signs with it.
    let meta = card
        .metadata(KeySlot::Authentication.reference())
        .expect("F7 9A");
    let public_key = meta.public_key.expect("04 public key");
    let point = apdu::tlv::find(&public_key, 0x86u32)
        .expect("tlv")
        .expect("86 point");
    assert_eq!(
        certificate
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes(),
        point
    );
    // Origin: generated on the card (F7 03 = 01).
    assert_eq!(meta.origin, Some(0x01));

    // Re-send works now that the card is registered, and carries the same halves.
    let (mut bureau_batch, mailer) = open(&b);
    bureau_batch
        .resend(&operator_card.card_number, &als, &mailer)
        .expect("resend");
    let mails = emails(&b.batch, &operator_card.card_number);
    assert_eq!(mails.len(), 2);
    assert_eq!(
        email_field(&mails[1], "PIN-Second-Half"),
        email_field(&mails[0], "PIN-Second-Half")
    );
    let _ = Duration::ZERO;
}

#[test]
fn replacement_blocks_at_once_and_guards_the_last_mayor_or_als() {
    let b = bureau(1);
    let [_, mayor, als, operator, _] = b.keys.clone();
    personalize(&b);
    let (mut batch, mailer) = open(&b);
    batch.deliver("058047", &mayor, &mailer).expect("deliver");
    let mayor_card = card_of(&batch, &mayor).card_number;
    let options = piv_options();
    // The mayor's card is the entity's only active mayor/ALS card: refused unless forced.
    let refused = batch
        .replace(&mayor_card, &mayor, false, &b.ca, &options)
        .expect_err("guard");
    assert!(
        refused.to_string().contains("no active mayor or ALS"),
        "{refused}"
    );
    assert_eq!(card_of(&batch, &mayor).state, CardState::Active);
    // With the ALS active too, replacing the operator's card is fine and immediate.
    let als_card = card_of(&batch, &als).card_number;
    batch
        .register(&als_card, &mayor, &mailer)
        .expect("register ALS");
    let operator_card = card_of(&batch, &operator).card_number;
    let new = batch
        .replace(&operator_card, &als, false, &b.ca, &options)
        .expect("replace");
    assert_ne!(new, operator_card);
    assert_eq!(
        batch
            .registry
            .card(&operator_card)
            .expect("registry")
            .expect("old")
            .state,
        CardState::Blocked
    );
    let fresh = card_of(&batch, &operator);
    assert_eq!(fresh.card_number, new);
    assert_eq!(fresh.state, CardState::Personalized);
    assert_eq!(fresh.replaces.as_deref(), Some(operator_card.as_str()));
    // Now the mayor's card can go (the ALS remains), and forced works too.
    let replaced_mayor = batch
        .replace(&mayor_card, &als, false, &b.ca, &options)
        .expect("replace mayor");
    assert_ne!(replaced_mayor, mayor_card);
    let events = batch.registry.events().expect("events");
    assert!(events
        .iter()
        .any(|e| e.kind == EventKind::BlockedForReplacement));
}

#[test]
fn a_rerun_is_idempotent_and_a_changed_census_is_refused() {
    let b = bureau(1);
    let first = personalize(&b);
    let again = personalize(&b);
    assert_eq!(again.personalized, 0);
    assert_eq!(again.already_done, first.total);
    let (csv, _) = big_census(2);
    std::fs::write(&b.census, csv).expect("write");
    let error = batch::personalize(
        &b.census,
        &b.ca,
        &b.batch,
        &piv_options(),
        &mut |_, _, _| {},
    )
    .expect_err("different census");
    assert!(error.to_string().contains("different census"), "{error}");
}

#[test]
fn the_event_log_is_append_only() {
    let b = bureau(1);
    personalize(&b);
    let (batch, _) = open(&b);
    let conn = rusqlite::Connection::open(b.batch.join("registry.sqlite")).expect("sqlite");
    assert!(conn.execute("UPDATE events SET kind = 'x'", []).is_err());
    assert!(conn.execute("DELETE FROM events", []).is_err());
    assert!(!batch.registry.events().expect("events").is_empty());
}

/// The default profile: a CNS card per holder. The mayor's card, active on delivery: the envelope
/// half and the e-mail half joined are the PIN its VERIFY accepts, the PUK unblocks it, EF_IDCarta is the card
/// number, EF_DatiPersonali names the holder, the certificate in EF 1101 names the holder, chains
/// to the staging CA and certifies the RSA key in EF 3F01, and the card signs with that key.
#[test]
fn a_cns_batch_makes_cards_the_holder_unlocks_with_the_two_halves() {
    use cns_host::{path, CnsSession, PinOutcome as CnsOutcome, Secret};
    let b = bureau(0);
    let summary = batch::personalize(
        &b.census,
        &b.ca,
        &b.batch,
        &BatchOptions::default(),
        &mut |_, _, _| {},
    )
    .expect("personalize");
    assert!(summary.personalized > 0);
    assert_eq!(
        batch::recorded_profile(&b.batch).expect("profile"),
        Some(batch::CardProfile::Cns)
    );
    // Another profile for the same batch is refused, naming both.
    let refused = batch::personalize(
        &b.census,
        &b.ca,
        &b.batch,
        &piv_options(),
        &mut |_, _, _| {},
    )
    .expect_err("a PIV rerun of a CNS batch");
    assert!(refused.to_string().contains("makes cns cards"), "{refused}");

    let (mut bureau_batch, mailer) = open(&b);
    let [_, mayor, ..] = b.keys.clone();
    let (_, activated) = bureau_batch
        .deliver("058047", &mayor, &mailer)
        .expect("deliver");
    let card_number = activated.first().expect("the mayor's card").clone();
    let envelope = envelope(&b.batch, &card_number);
    let mail = emails(&b.batch, &card_number)
        .pop()
        .expect("released e-mail");
    let pin = format!(
        "{}{}",
        envelope["pin_first_half"].as_str().expect("half"),
        email_field(&mail, "PIN-Second-Half")
    );
    let puk = format!(
        "{}{}",
        envelope["puk_first_half"].as_str().expect("half"),
        email_field(&mail, "PUK-Second-Half")
    );

    let mut reader = in_process(open_card(
        &b.batch,
        envelope["card_file"].as_str().expect("card file"),
    ));
    let mut card = CnsSession::new(&mut reader);
    let id = card.read_file(path::ID_CARTA).expect("EF_IDCarta");
    assert_eq!(id, format!("{card_number:0>16}").as_bytes());
    let dati =
        String::from_utf8(card.read_file(path::DATI_PERSONALI).expect("dati")).expect("ascii");
    assert!(dati.contains(&mayor), "{dati}");

    let der_bytes = card.read_file(path::CERTIFICATE).expect("EF 1101");
    let certificate = x509_cert::Certificate::from_der(&der_bytes).expect("X.509");
    let subject = certificate.tbs_certificate().subject().to_string();
    assert!(subject.contains(&format!("CN={mayor}")), "{subject}");
    let ca = StagingCa::open(&b.ca).expect("ca");
    // Card certificates come from the cards issuing CA, under the root.
    let ca_cert = x509_cert::Certificate::from_der(
        &ca.issuing_certificate_der(personalization::ca::Issuing::Cards),
    )
    .expect("cards CA cert");
    assert_eq!(
        certificate.tbs_certificate().issuer(),
        ca_cert.tbs_certificate().subject()
    );
    use rsa::pkcs1::DecodeRsaPublicKey as _;
    use rsa::pkcs8::DecodePublicKey as _;
    let on_card = rsa::PublicKey::from_pkcs1_der(&card.read_file(path::PUBLIC_KEY).expect("3F01"))
        .expect("RSA");
    let certified = rsa::PublicKey::from_public_key_der(
        &certificate
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .expect("spki"),
    )
    .expect("RSA SPKI");
    assert_eq!(
        on_card, certified,
        "the certificate certifies the card's key"
    );

    // The envelope half alone is refused; both halves are the PIN; the card signs with it.
    let half = envelope["pin_first_half"]
        .as_str()
        .expect("half")
        .to_string();
    assert!(matches!(
        card.verify(Secret::Pin, &half).expect("VERIFY"),
        CnsOutcome::Wrong { .. }
    ));
    assert_eq!(
        card.verify(Secret::Pin, &pin).expect("VERIFY"),
        CnsOutcome::Verified
    );
    let hash = <sha2::Sha256 as sha2::Digest>::digest(b"console login");
    let mut digest_info = hex::decode("3031300d060960864801650304020105000420").expect("hex");
    digest_info.extend_from_slice(&hash);
    let signature = card.sign_digest_info(&digest_info).expect("sign");
    certified
        .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash, &signature)
        .expect("the card's signature verifies");
    // Blocked by three wrong PINs, unblocked by the PUK halves.
    for _ in 0..3 {
        card.verify(Secret::Pin, "00000000").expect("VERIFY");
    }
    assert_eq!(
        card.verify(Secret::Pin, &pin).expect("VERIFY"),
        CnsOutcome::Blocked
    );
    assert_eq!(
        card.unblock_pin(&puk, "24681357").expect("unblock"),
        CnsOutcome::Verified
    );
    // The bureau replaced the factory personalization key: the well-known one is refused.
    assert_eq!(
        card.authenticate(&cns_applet::DEFAULT_PERSONALIZATION_KEY)
            .expect_err("the factory key")
            .status_word()
            .map(|sw| sw.to_u16()),
        Some(0x6982)
    );
}
