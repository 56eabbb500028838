use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::asn1::{PrintableStringRef, Utf8StringRef};
use der::{Decode, Encode, EncodePem, Tagged};
use p256::ecdsa::signature::Verifier;
use p256::elliptic_curve::Generate;
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName,
    SubjectKeyIdentifier,
};

use super::x509::*;
use super::*;

/// 2025-03-10T09:30:00Z
fn march_2025() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_741_599_000)
}

/// 2024-02-29T10:00:00Z
fn leap_day_2024() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_709_200_800)
}

fn holder() -> Holder {
    Holder {
        codice_fiscale: "RSSMRA80A01H501U".into(),
        surname: "Rossi Bianchi, D'Àvila".into(),
        given_name: "Mario Nicolò".into(),
    }
}

fn card_key() -> (p256::ecdsa::SigningKey, Vec<u8>) {
    let secret = p256::SecretKey::try_generate().unwrap();
    let point = secret.public_key().to_sec1_bytes().to_vec();
    (p256::ecdsa::SigningKey::from(&secret), point)
}

fn text(cert: &Certificate, oid: spki::ObjectIdentifier) -> String {
    let name = cert.tbs_certificate().subject();
    let atv = name.iter().find(|atv| atv.oid == oid).unwrap();
    match atv.value.tag() {
        der::Tag::PrintableString => PrintableStringRef::try_from(&atv.value)
            .unwrap()
            .as_str()
            .to_owned(),
        _ => Utf8StringRef::try_from(&atv.value)
            .unwrap()
            .as_str()
            .to_owned(),
    }
}

/// Checks `cert`'s signature under the certificate `issuer_der`.
fn verify_under(issuer_der: &[u8], cert: &Certificate) {
    let ca_cert = Certificate::from_der(issuer_der).unwrap();
    let ca_key = p256::ecdsa::VerifyingKey::from_sec1_bytes(
        ca_cert
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes(),
    )
    .unwrap();
    let signature = p256::ecdsa::DerSignature::from_bytes(cert.signature().raw_bytes()).unwrap();
    ca_key
        .verify(&cert.tbs_certificate().to_der().unwrap(), &signature)
        .unwrap();
}

#[test]
fn init_then_open_round_trips_with_key_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let ca = StagingCa::init(&ca_dir, march_2025()).unwrap();
    let mode = std::fs::metadata(ca_dir.join(KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let key_pem = std::fs::read_to_string(ca_dir.join(KEY_FILE)).unwrap();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let cert_pem = std::fs::read_to_string(ca_dir.join(CERT_FILE)).unwrap();
    assert_eq!(cert_pem, ca.certificate_pem());

    let reopened = StagingCa::open(&ca_dir).unwrap();
    assert_eq!(reopened.certificate_der(), ca.certificate_der());
    assert_eq!(reopened.key_identifier(), ca.key_identifier());
    // The reopened CA signs with the same key.
    let (_, point) = card_key();
    let der = reopened
        .issue_user(&holder(), &point, random_serial(), march_2025())
        .unwrap();
    verify_under(
        &ca.issuing_certificate_der(Issuing::Cards),
        &Certificate::from_der(&der).unwrap(),
    );

    // init refuses a non-empty directory.
    let err = StagingCa::init(&ca_dir, march_2025()).unwrap_err();
    assert!(matches!(err, CaError::DirectoryNotEmpty(_)), "{err}");
    // An existing empty directory is fine.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    StagingCa::init(&empty, march_2025()).unwrap();
}

#[test]
fn ca_certificate_profile() {
    let dir = tempfile::tempdir().unwrap();
    let ca = StagingCa::init(&dir.path().join("ca"), march_2025()).unwrap();
    let cert = Certificate::from_der(&ca.certificate_der()).unwrap();
    let tbs = cert.tbs_certificate();
    assert_eq!(tbs.subject(), tbs.issuer());
    assert_eq!(text(&cert, OID_COMMON_NAME), CA_COMMON_NAME);
    assert_eq!(text(&cert, OID_ORGANIZATION), CA_ORGANIZATION);
    assert_eq!(text(&cert, OID_COUNTRY), "IT");
    let (critical, bc) = tbs.get_extension::<BasicConstraints>().unwrap().unwrap();
    assert!(critical && bc.ca);
    assert_eq!(
        bc.path_len_constraint,
        Some(1),
        "the root signs issuing CAs"
    );
    let (_, ku) = tbs.get_extension::<KeyUsage>().unwrap().unwrap();
    assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
    let (_, ski) = tbs
        .get_extension::<SubjectKeyIdentifier>()
        .unwrap()
        .unwrap();
    assert_eq!(ski.0.as_bytes(), ca.key_identifier());
    let validity = tbs.validity();
    assert_eq!(validity.not_before.to_system_time(), march_2025());
    assert_eq!(
        calendar::civil_date(validity.not_after.to_system_time()),
        (2035, 3, 10)
    );
    verify_under(&ca.certificate_der(), &cert);
}

#[test]
fn open_refuses_a_loose_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    StagingCa::init(&ca_dir, march_2025()).unwrap();
    let key = ca_dir.join(KEY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = StagingCa::open(&ca_dir).unwrap_err();
    assert!(matches!(err, CaError::KeyPermissions { mode: 0o640, .. }));
    let message = err.to_string();
    assert!(
        message.contains("ca.key") && message.contains("0640"),
        "{message}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(
        StagingCa::open(&ca_dir),
        Err(CaError::KeyPermissions { mode: 0o700, .. })
    ));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
    StagingCa::open(&ca_dir).unwrap();
}

#[test]
fn open_names_missing_and_mismatched_files() {
    let dir = tempfile::tempdir().unwrap();
    let err = StagingCa::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("ca.key"), "{err}");

    let a = dir.path().join("a");
    let b = dir.path().join("b");
    StagingCa::init(&a, march_2025()).unwrap();
    StagingCa::init(&b, march_2025()).unwrap();
    std::fs::copy(b.join(CERT_FILE), a.join(CERT_FILE)).unwrap();
    let err = StagingCa::open(&a).unwrap_err();
    assert!(matches!(err, CaError::KeyMismatch { .. }), "{err}");

    std::fs::write(a.join(CERT_FILE), "garbage").unwrap();
    let err = StagingCa::open(&a).unwrap_err();
    assert!(matches!(err, CaError::Certificate { .. }) && err.to_string().contains("ca.crt"));
}

#[test]
fn user_certificate_profile() {
    let dir = tempfile::tempdir().unwrap();
    let ca = StagingCa::init(&dir.path().join("ca"), march_2025()).unwrap();
    let (card, point) = card_key();
    let serial = [0x5A, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xFF];
    let der = ca
        .issue_user(
            &holder(),
            &point,
            serial,
            march_2025() + Duration::from_millis(400),
        )
        .unwrap();
    let cert = Certificate::from_der(&der).unwrap();
    let cards_ca = ca.issuing_certificate_der(Issuing::Cards);
    verify_under(&cards_ca, &cert);
    let tbs = cert.tbs_certificate();

    assert_eq!(tbs.serial_number().as_bytes(), &serial);
    assert_eq!(text(&cert, OID_COMMON_NAME), "RSSMRA80A01H501U");
    assert_eq!(text(&cert, OID_SURNAME), "Rossi Bianchi, D'Àvila");
    assert_eq!(text(&cert, OID_GIVEN_NAME), "Mario Nicolò");
    assert_eq!(text(&cert, OID_SERIAL_NUMBER), "TINIT-RSSMRA80A01H501U");
    assert_eq!(text(&cert, OID_COUNTRY), "IT");
    assert_eq!(
        tbs.issuer(),
        Certificate::from_der(&cards_ca)
            .unwrap()
            .tbs_certificate()
            .subject()
    );
    assert_eq!(
        tbs.subject_public_key_info().subject_public_key.raw_bytes(),
        point.as_slice()
    );
    assert_eq!(
        p256::PublicKey::from(card.verifying_key())
            .to_sec1_bytes()
            .as_ref(),
        point.as_slice()
    );

    let (critical, ku) = tbs.get_extension::<KeyUsage>().unwrap().unwrap();
    assert!(critical && ku.digital_signature() && !ku.key_cert_sign());
    let (_, eku) = tbs.get_extension::<ExtendedKeyUsage>().unwrap().unwrap();
    assert_eq!(eku.0, vec![OID_KP_CLIENT_AUTH]);
    let (_, bc) = tbs.get_extension::<BasicConstraints>().unwrap().unwrap();
    assert!(!bc.ca);
    let (_, aki) = tbs
        .get_extension::<AuthorityKeyIdentifier>()
        .unwrap()
        .unwrap();
    assert_eq!(
        aki.key_identifier.unwrap().as_bytes(),
        subject_key_id(&cards_ca)
    );
    let (_, ski) = tbs
        .get_extension::<SubjectKeyIdentifier>()
        .unwrap()
        .unwrap();
    assert_eq!(ski.0.as_bytes().len(), 20);

    let validity = tbs.validity();
    assert_eq!(validity.not_before.to_system_time(), march_2025());
    assert_eq!(
        validity.not_after.to_system_time(),
        not_after(march_2025(), VALIDITY_YEARS)
    );
    assert_eq!(
        calendar::civil_date(validity.not_after.to_system_time()),
        (2031, 3, 10)
    );
    assert_eq!(
        validity
            .not_after
            .to_system_time()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 86_400,
        9 * 3600 + 30 * 60
    );
}

#[test]
fn user_certificate_from_29_february() {
    let dir = tempfile::tempdir().unwrap();
    let ca = StagingCa::init(&dir.path().join("ca"), leap_day_2024()).unwrap();
    let (_, point) = card_key();
    let der = ca
        .issue_user(&holder(), &point, random_serial(), leap_day_2024())
        .unwrap();
    let cert = Certificate::from_der(&der).unwrap();
    let validity = cert.tbs_certificate().validity();
    assert_eq!(
        calendar::civil_date(validity.not_before.to_system_time()),
        (2024, 2, 29)
    );
    assert_eq!(
        calendar::civil_date(validity.not_after.to_system_time()),
        (2030, 2, 28)
    );
    assert_eq!(
        validity.not_after.to_system_time(),
        leap_day_2024() + Duration::from_secs((365 * 6 + 1) * 86_400)
    );
}

#[test]
fn rejects_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let ca = StagingCa::init(&dir.path().join("ca"), march_2025()).unwrap();
    let (_, point) = card_key();
    let mut negative = random_serial();
    negative[0] = 0x80;
    assert!(matches!(
        ca.issue_user(&holder(), &point, negative, march_2025()),
        Err(CaError::InvalidSerial(_))
    ));
    let mut leading_zero = random_serial();
    leading_zero[0] = 0;
    assert!(matches!(
        ca.issue_user(&holder(), &point, leading_zero, march_2025()),
        Err(CaError::InvalidSerial(_))
    ));
    assert!(matches!(
        ca.issue_user(&holder(), &point[..33], random_serial(), march_2025()),
        Err(CaError::InvalidPublicKey(_))
    ));
    let mut off_curve = point.clone();
    off_curve[64] ^= 1;
    assert!(matches!(
        ca.issue_user(&holder(), &off_curve, random_serial(), march_2025()),
        Err(CaError::InvalidPublicKey(_))
    ));
    let mut bad = holder();
    bad.codice_fiscale = "RSSMRA80".into();
    assert!(matches!(
        ca.issue_user(&bad, &point, random_serial(), march_2025()),
        Err(CaError::InvalidName(_))
    ));
    for name in ["", "-PC-1", "A B", "058091-PC-0001\n"] {
        assert!(matches!(
            ca.issue_workstation(
                name,
                WorkstationKind::Workstation,
                random_serial(),
                march_2025()
            ),
            Err(CaError::InvalidName(_))
        ));
    }
}

#[test]
fn random_serials_are_positive_and_full_length() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2000 {
        let s = random_serial();
        assert!(s[0] != 0 && s[0] < 0x80);
        assert!(seen.insert(s));
        assert_eq!(serial_number(s).unwrap().as_bytes(), &s);
    }
}

#[test]
fn workstation_and_server_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let ca = StagingCa::init(&dir.path().join("ca"), march_2025()).unwrap();

    let pc = ca
        .issue_workstation(
            "058091-PC-0001",
            WorkstationKind::Workstation,
            random_serial(),
            march_2025(),
        )
        .unwrap();
    let hosts_ca = ca.issuing_certificate_der(Issuing::Hosts);
    let cert = Certificate::from_der(&pc.certificate_der).unwrap();
    verify_under(&hosts_ca, &cert);
    assert_eq!(text(&cert, OID_COMMON_NAME), "058091-PC-0001");
    let tbs = cert.tbs_certificate();
    let (_, eku) = tbs.get_extension::<ExtendedKeyUsage>().unwrap().unwrap();
    assert_eq!(eku.0, vec![OID_KP_CLIENT_AUTH]);
    assert!(tbs.get_extension::<SubjectAltName>().unwrap().is_none());
    assert_eq!(pc.not_after, not_after(march_2025(), 6));
    assert_eq!(tbs.validity().not_after.to_system_time(), pc.not_after);
    assert_eq!(pc.password.expose().len(), 16);
    assert!(!format!("{pc:?}").contains(pc.password.expose()));

    let server = ca
        .issue_workstation(
            "058091-CO-9999",
            WorkstationKind::Server,
            random_serial(),
            march_2025(),
        )
        .unwrap();
    let cert = Certificate::from_der(&server.certificate_der).unwrap();
    verify_under(&hosts_ca, &cert);
    let tbs = cert.tbs_certificate();
    let (_, eku) = tbs.get_extension::<ExtendedKeyUsage>().unwrap().unwrap();
    assert_eq!(eku.0, vec![OID_KP_SERVER_AUTH, OID_KP_CLIENT_AUTH]);
    let (_, san) = tbs.get_extension::<SubjectAltName>().unwrap().unwrap();
    match &san.0[..] {
        [GeneralName::DnsName(dns)] => assert_eq!(dns.as_str(), "058091-co-9999.staging.invalid"),
        other => panic!("unexpected SAN {other:?}"),
    }
    assert_ne!(pc.password, server.password);

    // The bundle opens with its password and holds key, leaf, issuing CA and root.
    let store = p12_keystore::KeyStore::from_pkcs12(
        &server.pkcs12,
        server.password.expose(),
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .unwrap();
    let (alias, chain) = store.private_key_chain().unwrap();
    assert_eq!(alias, "058091-CO-9999");
    assert_eq!(chain.certs().len(), 3);
    assert_eq!(chain.certs()[0].as_der(), server.certificate_der.as_slice());
    assert_eq!(chain.certs()[1].as_der(), hosts_ca.as_slice());
    assert_eq!(chain.certs()[2].as_der(), ca.certificate_der().as_slice());
    let secret = p256::SecretKey::from_pkcs8_der(chain.key().as_der()).unwrap();
    assert_eq!(
        secret.public_key().to_sec1_bytes().as_ref(),
        tbs.subject_public_key_info().subject_public_key.raw_bytes()
    );
    assert!(p12_keystore::KeyStore::from_pkcs12(
        &server.pkcs12,
        "wrong password",
        p12_keystore::Pkcs12ImportPolicy::Strict
    )
    .is_err());
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is on PATH")
}

fn have_openssl() -> bool {
    let found = Command::new("openssl").arg("version").output().is_ok();
    if !found {
        eprintln!("openssl not on PATH: skipping the cross-check");
    }
    found
}

#[test]
fn openssl_cross_check() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    // Issue "now" so openssl's validity check passes.
    let now = SystemTime::now();
    let ca = StagingCa::init(&ca_dir, now - Duration::from_secs(60)).unwrap();
    let (_, point) = card_key();
    let der = ca
        .issue_user(&holder(), &point, random_serial(), now)
        .unwrap();
    let user_pem = Certificate::from_der(&der)
        .unwrap()
        .to_pem(der::pem::LineEnding::LF)
        .unwrap();
    let user = dir.path().join("user.pem");
    std::fs::write(&user, user_pem).unwrap();
    let ca_crt = ca_dir.join(CERT_FILE);
    let out = openssl(&[
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        ca_crt.to_str().unwrap(),
        "-untrusted",
        ca_dir.join(CARDS_CERT_FILE).to_str().unwrap(),
        user.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(": OK"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text_out = openssl(&["x509", "-in", user.to_str().unwrap(), "-noout", "-text"]);
    let text = String::from_utf8_lossy(&text_out.stdout);
    assert!(text.contains("CN = RSSMRA80A01H501U"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(text.contains("ecdsa-with-SHA256"), "{text}");

    let bundle = ca
        .issue_workstation(
            "058091-CO-9999",
            WorkstationKind::Server,
            random_serial(),
            now,
        )
        .unwrap();
    let p12 = dir.path().join("bundle.p12");
    std::fs::write(&p12, &bundle.pkcs12).unwrap();
    let pass = format!("pass:{}", bundle.password.expose());
    let p12s = p12.to_str().unwrap();
    let out = openssl(&["pkcs12", "-in", p12s, "-passin", &pass, "-nokeys"]);
    let certs = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        certs.matches("-----BEGIN CERTIFICATE-----").count(),
        3,
        "{certs}"
    );
    assert!(certs.contains("058091-CO-9999"), "{certs}");
    let out = openssl(&["pkcs12", "-in", p12s, "-passin", &pass, "-info", "-noout"]);
    let info = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{info}");
    assert!(info.contains("MAC:") && info.contains("PBES2"), "{info}");
    let out = openssl(&[
        "pkcs12", "-in", p12s, "-passin", &pass, "-nocerts", "-nodes",
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("BEGIN PRIVATE KEY"));
    let out = openssl(&[
        "pkcs12",
        "-in",
        p12s,
        "-passin",
        "pass:not-the-password",
        "-nokeys",
    ]);
    assert!(!out.status.success(), "a wrong password must fail");

    // The server certificate verifies as a TLS server under the CA too.
    let server = dir.path().join("server.pem");
    std::fs::write(
        &server,
        Certificate::from_der(&bundle.certificate_der)
            .unwrap()
            .to_pem(der::pem::LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    let out = openssl(&[
        "verify",
        "-purpose",
        "sslserver",
        "-CAfile",
        ca_crt.to_str().unwrap(),
        "-untrusted",
        ca_dir.join(HOSTS_CERT_FILE).to_str().unwrap(),
        server.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn lab_server_certificate_names_localhost_and_its_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let ca = StagingCa::init(dir.path(), march_2025()).unwrap();
    let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let identity = ca
        .issue_tls_server(
            &["localhost".into()],
            &[loopback],
            random_serial(),
            march_2025(),
        )
        .unwrap();
    let cert = Certificate::from_der(&identity.certificate_der).unwrap();
    verify_under(&ca.issuing_certificate_der(Issuing::Hosts), &cert);
    assert_eq!(
        identity.chain_der,
        vec![ca.issuing_certificate_der(Issuing::Hosts)]
    );
    assert_eq!(text(&cert, x509::OID_COMMON_NAME), "localhost");
    let (_, san) = cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::SubjectAltName>()
        .unwrap()
        .expect("subjectAltName");
    assert!(san
        .0
        .iter()
        .any(|n| matches!(n, GeneralName::DnsName(d) if d.as_str() == "localhost")));
    assert!(san
        .0
        .iter()
        .any(|n| matches!(n, GeneralName::IpAddress(ip) if ip.as_bytes() == [127, 0, 0, 1])));
    // The key is the certificate's.
    let key = p256::SecretKey::from_pkcs8_der(&identity.key_pkcs8_der).unwrap();
    let spki = cert.tbs_certificate().subject_public_key_info();
    assert_eq!(
        spki.subject_public_key.raw_bytes(),
        &key.public_key().to_sec1_bytes()[..]
    );
    assert!(identity.certificate_der.len() > 200);
    assert!(!format!("{identity:?}").contains(&hex::encode(&identity.key_pkcs8_der[..])));
    assert!(ca
        .issue_tls_server(&[], &[loopback], random_serial(), march_2025())
        .is_err());
}

#[test]
fn issued_tells_our_certificates_from_anyone_elses() {
    let dir = tempfile::tempdir().unwrap();
    let ca = StagingCa::init(&dir.path().join("a"), march_2025()).unwrap();
    let other = StagingCa::init(&dir.path().join("b"), march_2025()).unwrap();
    let ours = ca
        .issue_workstation(
            "058091-PC-0001",
            WorkstationKind::Workstation,
            random_serial(),
            march_2025(),
        )
        .unwrap();
    let theirs = other
        .issue_workstation(
            "058091-PC-0001",
            WorkstationKind::Workstation,
            random_serial(),
            march_2025(),
        )
        .unwrap();
    assert!(ca.issued(Issuing::Hosts, &ours.certificate_der));
    assert!(
        !ca.issued(Issuing::Cards, &ours.certificate_der),
        "a workstation certificate is not a card certificate"
    );
    assert!(
        !ca.issued(Issuing::Hosts, &theirs.certificate_der),
        "same names, other key"
    );
    let (_, point) = card_key();
    let user = ca
        .issue_user(&holder(), &point, random_serial(), march_2025())
        .unwrap();
    assert!(ca.issued(Issuing::Cards, &user));
    assert!(!ca.issued(Issuing::Hosts, &user));
    let mut tampered = ours.certificate_der.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    assert!(!ca.issued(Issuing::Hosts, &tampered));
    assert!(!ca.issued(Issuing::Hosts, b""));
    assert!(!ca.issued(Issuing::Cards, &[0x30, 0x03, 0x02, 0x01, 0x00]));
}

fn subject_key_id(certificate_der: &[u8]) -> Vec<u8> {
    let cert = Certificate::from_der(certificate_der).unwrap();
    let (_, ski) = cert
        .tbs_certificate()
        .get_extension::<SubjectKeyIdentifier>()
        .unwrap()
        .unwrap();
    ski.0.as_bytes().to_vec()
}

#[test]
fn issuing_cas_are_signed_by_the_root_one_per_kind() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let ca = StagingCa::init(&ca_dir, march_2025()).unwrap();
    let root = Certificate::from_der(&ca.certificate_der()).unwrap();
    let mut subjects = vec![];
    for (kind, common_name, key_file) in [
        (Issuing::Cards, CARDS_CA_COMMON_NAME, CARDS_KEY_FILE),
        (Issuing::Hosts, HOSTS_CA_COMMON_NAME, HOSTS_KEY_FILE),
    ] {
        let der = ca.issuing_certificate_der(kind);
        let cert = Certificate::from_der(&der).unwrap();
        verify_under(&ca.certificate_der(), &cert);
        let tbs = cert.tbs_certificate();
        assert_eq!(tbs.issuer(), root.tbs_certificate().subject());
        assert_eq!(text(&cert, OID_COMMON_NAME), common_name);
        assert_eq!(
            ca.issuing_subject_der(kind),
            tbs.subject().to_der().unwrap()
        );
        let (critical, bc) = tbs.get_extension::<BasicConstraints>().unwrap().unwrap();
        assert!(critical && bc.ca);
        assert_eq!(bc.path_len_constraint, Some(0));
        let (_, ku) = tbs.get_extension::<KeyUsage>().unwrap().unwrap();
        assert!(ku.key_cert_sign() && !ku.digital_signature());
        let (_, aki) = tbs
            .get_extension::<AuthorityKeyIdentifier>()
            .unwrap()
            .unwrap();
        assert_eq!(aki.key_identifier.unwrap().as_bytes(), ca.key_identifier());
        assert_eq!(ca.chain_of(kind), vec![der.clone()]);
        let mode = std::fs::metadata(ca_dir.join(key_file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key_file}");
        subjects.push(tbs.subject().clone());
    }
    assert_ne!(
        subjects[0], subjects[1],
        "a browser must be able to tell them apart"
    );

    // Reopened, the same issuing CAs sign.
    let reopened = StagingCa::open(&ca_dir).unwrap();
    for kind in [Issuing::Cards, Issuing::Hosts] {
        assert_eq!(
            reopened.issuing_certificate_der(kind),
            ca.issuing_certificate_der(kind)
        );
    }
    // An issuing CA from another root is refused, by file name.
    let other = dir.path().join("other");
    StagingCa::init(&other, march_2025()).unwrap();
    std::fs::copy(other.join(CARDS_CERT_FILE), ca_dir.join(CARDS_CERT_FILE)).unwrap();
    std::fs::copy(other.join(CARDS_KEY_FILE), ca_dir.join(CARDS_KEY_FILE)).unwrap();
    let err = StagingCa::open(&ca_dir).unwrap_err();
    assert!(
        err.to_string().contains("cards-ca.crt")
            && err.to_string().contains("not issued by the root"),
        "{err}"
    );
}

#[test]
fn a_ca_made_before_issuing_cas_issues_from_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    StagingCa::init(&ca_dir, march_2025()).unwrap();
    for file in [
        CARDS_CERT_FILE,
        CARDS_KEY_FILE,
        HOSTS_CERT_FILE,
        HOSTS_KEY_FILE,
    ] {
        std::fs::remove_file(ca_dir.join(file)).unwrap();
    }
    let ca = StagingCa::open(&ca_dir).unwrap();
    for kind in [Issuing::Cards, Issuing::Hosts] {
        assert_eq!(ca.issuing_certificate_der(kind), ca.certificate_der());
        assert!(ca.chain_of(kind).is_empty());
    }
    let (_, point) = card_key();
    let user = ca
        .issue_user(&holder(), &point, random_serial(), march_2025())
        .unwrap();
    verify_under(
        &ca.certificate_der(),
        &Certificate::from_der(&user).unwrap(),
    );
    assert!(ca.issued(Issuing::Cards, &user));
}
