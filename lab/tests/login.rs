//! The login lab end to end, in-process: a staging batch of real (CNS and PIV) cards, the lab's two
//! doors on loopback, and clients whose TLS signatures are made by the cards through APDUs. The
//! seeds' flow — the mayor logs in, registers an ALS's card; the ALS joins the halves and logs in —
//! and every refusal the lab promises, each checked by its code and its sentence.

mod support;

use std::time::{Duration, SystemTime};

use login_lab::client::{self, ClientError, Identity};
use personalization::batch::CardProfile;
use personalization::ca::{StagingCa, WorkstationKind};
use personalization::lifecycle::{Batch, Mailer};
use support::*;

#[test]
fn the_mayor_registers_an_als_card_and_the_als_logs_in_with_a_cns_card() {
    let world = world(CardProfile::Cns);
    let lab = world.lab(None);

    // The mayor: card active on delivery, halves joined, card signs the handshake (TLS 1.2, RSA).
    let (mayor, reply) = card_login(&world, &lab, MAYOR);
    let whoami = assert_logged_in(&reply, MAYOR, &world.workstation);
    assert_eq!(whoami["entity"], ENTITY);
    assert_eq!(whoami["profiles"], serde_json::json!(["SINDACO"]));
    assert_eq!(
        whoami["card_number"],
        world.card_of(MAYOR).card_number.as_str()
    );
    assert_eq!(whoami["method"], "card");
    let whoami = mayor.get("/api/whoami").expect("whoami");
    assert_logged_in(&whoami, MAYOR, &world.workstation);
    for field in [
        "codice_fiscale",
        "name",
        "entity",
        "profiles",
        "card_number",
        "workstation",
    ] {
        assert!(!whoami.json().expect("json")[field].is_null(), "{field}");
    }

    // The ALS's card cannot log in before the mayor registers its delivery, even with its PIN.
    let als_card = world.card_of(ALS).card_number;
    let unregistered = Identity::from_card(world.reader(ALS), &world.escrowed_pin(&als_card))
        .expect("the card takes its PIN");
    let reply = world
        .client(&lab)
        .login_with_card(&unregistered)
        .expect("answered");
    assert_eq!(refusal_code(&reply), "card-not-registered");
    assert!(reply.text().contains("delivered"), "{}", reply.text());
    drop(unregistered); // the card image is locked while a reader holds it
    let console = mayor
        .get("/api/console")
        .expect("console")
        .json()
        .expect("json");
    let state_of = |console: &serde_json::Value, card: &str| {
        console["cards"]
            .as_array()
            .expect("cards")
            .iter()
            .find(|c| c["card_number"] == card)
            .map(|c| c["state"].as_str().expect("state").to_string())
    };
    assert_eq!(state_of(&console, &als_card).as_deref(), Some("delivered"));
    let registered = mayor
        .post("/api/console/register", &[("card", &als_card)])
        .expect("register");
    assert_eq!(registered.status, 200, "{}", registered.text());
    let console = mayor
        .get("/api/console")
        .expect("console")
        .json()
        .expect("json");
    assert_eq!(state_of(&console, &als_card).as_deref(), Some("active"));
    // Registering twice is the library's refusal, said as a 409 with its sentence.
    let again = mayor
        .post("/api/console/register", &[("card", &als_card)])
        .expect("register again");
    assert_eq!(again.status, 409);
    assert!(
        again.text().contains("already registered"),
        "{}",
        again.text()
    );

    // The ALS: envelope half + the e-mail half the registration released.
    let (als, reply) = card_login(&world, &lab, ALS);
    let whoami = assert_logged_in(&reply, ALS, &world.workstation);
    assert_eq!(whoami["profiles"], serde_json::json!(["ALS"]));
    assert_eq!(als.get("/api/console").expect("console").status, 200);

    // HTML for people: the login page links the card door, the home page says who is logged in.
    let page = als.get("/").expect("home").text();
    assert!(
        page.contains(&format!("id=\"whoami-codice-fiscale\">{ALS}<")),
        "{page}"
    );
    assert!(page.contains("id=\"console-link\""));
    let login = als.get("/login").expect("login page").text();
    assert!(login.contains(&format!(
        "https://localhost:{}/login/card?ticket=",
        lab.card_addr().port()
    )));
}

#[test]
fn each_refusal_is_a_403_with_its_reason() {
    let world = world(CardProfile::Piv);
    let lab = world.lab(None);
    let ca_der = StagingCa::open(&world.ca).expect("ca").certificate_der();

    // No workstation certificate at all.
    let bare = client::request(
        lab.workstation_addr(),
        &ca_der,
        None,
        "GET",
        "/api/login",
        &[],
        b"",
    )
    .expect("answered");
    assert_eq!(refusal_code(&bare), "no-workstation-certificate");
    let page = client::request(
        lab.workstation_addr(),
        &ca_der,
        None,
        "GET",
        "/login",
        &[],
        b"",
    )
    .expect("answered");
    assert_eq!(page.status, 403);
    assert!(page
        .text()
        .contains("id=\"refusal-reason\">this computer offered no workstation certificate"));

    // A workstation certificate from another CA.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = StagingCa::init(&other_dir.path().join("ca"), SystemTime::now()).expect("ca");
    let foreign = other
        .issue_workstation(
            "058040-PC-0001",
            WorkstationKind::Workstation,
            [0x11; 16],
            SystemTime::now(),
        )
        .expect("issued");
    let foreign = Identity::from_pkcs12(&foreign.pkcs12, foreign.password.expose()).expect("p12");
    let reply = client::request(
        lab.workstation_addr(),
        &ca_der,
        Some(&foreign),
        "GET",
        "/api/login",
        &[],
        b"",
    )
    .expect("answered");
    assert_eq!(refusal_code(&reply), "not-from-staging-ca");

    // The mayor's card at the workstation door: our CA, but a card (what a browser that chose the
    // wrong certificate sends).
    let mayor_card = world.card_identity(MAYOR);
    let reply = client::request(
        lab.workstation_addr(),
        &ca_der,
        Some(&mayor_card),
        "GET",
        "/api/login",
        &[],
        b"",
    )
    .expect("answered");
    assert_eq!(refusal_code(&reply), "wrong-kind-of-certificate");
    assert!(
        reply
            .text()
            .contains("a card certificate where a workstation certificate is wanted"),
        "{}",
        reply.text()
    );

    // A workstation certificate of our CA that this batch never issued.
    let stray = StagingCa::open(&world.ca)
        .expect("ca")
        .issue_workstation(
            "058040-PC-0042",
            WorkstationKind::Workstation,
            [0x12; 16],
            SystemTime::now(),
        )
        .expect("issued");
    let stray = Identity::from_pkcs12(&stray.pkcs12, stray.password.expose()).expect("p12");
    let reply = client::request(
        lab.workstation_addr(),
        &ca_der,
        Some(&stray),
        "GET",
        "/api/login",
        &[],
        b"",
    )
    .expect("answered");
    assert_eq!(refusal_code(&reply), "unknown-workstation");

    // Not logged in; a made-up session; a ticket that is not one.
    let client = world.client(&lab);
    assert_eq!(
        refusal_code(&client.get("/api/whoami").expect("whoami")),
        "not-logged-in"
    );
    let reply = client::request(
        lab.card_addr(),
        &ca_der,
        Some(&mayor_card),
        "GET",
        "/api/login/card?ticket=0000",
        &[],
        b"",
    )
    .expect("answered");
    assert_eq!(refusal_code(&reply), "bad-ticket");

    // A workstation certificate offered at the card door instead of a card.
    let mut client = world.client(&lab);
    let reply = client
        .login_with_card(&world.workstation_identity(&world.workstation))
        .expect("answered");
    assert_eq!(refusal_code(&reply), "wrong-kind-of-certificate");
    // A ticket is good once: the same URL again is refused. A refused attempt does not spend it
    // (a browser that offered the wrong certificate first must see that refusal, then may retry).
    let ticket = client
        .get("/api/login")
        .expect("ticket")
        .json()
        .expect("json");
    let url = ticket["card_login"].as_str().expect("url");
    let path = &url[url.find("/api/").expect("path")..];
    let wrong = client::request(
        lab.card_addr(),
        &ca_der,
        Some(&world.workstation_identity(&world.workstation)),
        "GET",
        path,
        &[],
        b"",
    )
    .expect("answered");
    assert_eq!(refusal_code(&wrong), "wrong-kind-of-certificate");
    let first = client::request(
        lab.card_addr(),
        &ca_der,
        Some(&mayor_card),
        "GET",
        path,
        &[],
        b"",
    )
    .expect("answered");
    assert_eq!(first.status, 200, "{}", first.text());
    let second = client::request(
        lab.card_addr(),
        &ca_der,
        Some(&mayor_card),
        "GET",
        path,
        &[],
        b"",
    )
    .expect("answered");
    assert_eq!(refusal_code(&second), "bad-ticket");

    // The mayor registers an operator's card.
    let operator_card = world.card_of(OPERATOR);
    let mayor_client = {
        let mut c = world.client(&lab);
        assert_logged_in(
            &c.login_with_card(&mayor_card).expect("login"),
            MAYOR,
            &world.workstation,
        );
        c
    };
    let registered = mayor_client
        .post(
            "/api/console/register",
            &[("card", &operator_card.card_number)],
        )
        .expect("register");
    assert_eq!(registered.status, 200, "{}", registered.text());
    // A card of another entity is not the Frascati console's to touch.
    let genzano = world.card_of("MRNPLA68A23D972N").card_number;
    let reply = mayor_client
        .post("/api/console/register", &[("card", &genzano)])
        .expect("answered");
    assert_eq!(reply.status, 409);

    // An operator logs in and is not a security officer.
    let (operator, reply) = card_login(&world, &lab, OPERATOR);
    assert_logged_in(&reply, OPERATOR, &world.workstation);
    assert_eq!(
        refusal_code(&operator.get("/api/console").expect("console")),
        "not-security-officer"
    );

    // Request a new card for the operator: the old card is blocked at once — its session ends and
    // a new login with it is refused.
    let old_identity = world.card_identity(OPERATOR);
    let replaced = mayor_client
        .post(
            "/api/console/replace",
            &[("card", &operator_card.card_number)],
        )
        .expect("replace");
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    let new_card = replaced.json().expect("json")["new_card"]
        .as_str()
        .expect("new")
        .to_string();
    assert_ne!(new_card, operator_card.card_number);
    assert_eq!(
        refusal_code(&operator.get("/api/whoami").expect("whoami")),
        "card-blocked"
    );
    let mut again = world.client(&lab);
    let reply = again.login_with_card(&old_identity).expect("answered");
    assert_eq!(refusal_code(&reply), "card-blocked");
    assert!(reply.json().expect("json")["reason"]
        .as_str()
        .expect("reason")
        .contains(&operator_card.card_number));

    // The new card is personalized, not yet delivered: refused as not registered.
    assert_eq!(world.card_of(OPERATOR).card_number, new_card);
    let new_identity = Identity::from_card(world.reader(OPERATOR), &world.escrowed_pin(&new_card))
        .expect("the new card takes its PIN");
    let reply = world
        .client(&lab)
        .login_with_card(&new_identity)
        .expect("answered");
    assert_eq!(refusal_code(&reply), "card-not-registered");

    // Blocking the workstation from the console: its next request is refused.
    let blocked = mayor_client
        .post(
            "/api/console/workstations/block",
            &[("name", &world.workstation)],
        )
        .expect("block");
    assert_eq!(blocked.status, 200, "{}", blocked.text());
    assert_eq!(
        refusal_code(&mayor_client.get("/api/whoami").expect("whoami")),
        "workstation-blocked"
    );
}

#[test]
fn the_fallback_password_needs_a_valid_workstation_and_the_joined_password() {
    let world = world(CardProfile::Piv);
    let lab = world.lab(None);
    let mut client = world.client(&lab);
    let wrong = client
        .login_with_password(MAYOR, "not-the-password")
        .expect("answered");
    assert_eq!(refusal_code(&wrong), "wrong-password");
    // Only the envelope half is not the password.
    let card = world.card_of(MAYOR).card_number;
    let half = world.envelope(&card)["password_first_half"]
        .as_str()
        .expect("half")
        .to_string();
    assert_eq!(
        refusal_code(&client.login_with_password(MAYOR, &half).expect("answered")),
        "wrong-password"
    );
    let reply = client
        .login_with_password(&MAYOR.to_lowercase(), &world.password(MAYOR))
        .expect("answered");
    let whoami = assert_logged_in(&reply, MAYOR, &world.workstation);
    assert_eq!(whoami["method"], "password");
    // Someone censused elsewhere (Genzano's mayor) is refused at a Frascati workstation.
    let genzano_mayor = "MRNPLA68A23D972N";
    let mut lifecycle = Batch::open(&world.batch, None, SystemTime::now()).expect("batch");
    lifecycle
        .deliver(
            "058044",
            genzano_mayor,
            &Mailer::for_batch(&world.batch, None),
        )
        .expect("deliver");
    let mut other = world.client(&lab);
    let reply = other
        .login_with_password(genzano_mayor, &world.password(genzano_mayor))
        .expect("answered");
    assert_eq!(refusal_code(&reply), "not-in-workstation-entity");
}

#[test]
fn expired_certificates_are_refused_by_name() {
    let world = world(CardProfile::Piv);
    let seven_years = SystemTime::now() + Duration::from_secs(7 * 366 * 24 * 3600);
    let lab = world.lab(Some(seven_years));
    let client = world.client(&lab);
    let reply = client.get("/api/login").expect("answered");
    assert_eq!(refusal_code(&reply), "workstation-expired");
}

#[test]
fn three_wrong_pins_block_the_card_before_any_handshake() {
    let world = world(CardProfile::Piv);
    let reader = world.reader(MAYOR);
    let mut reader = Some(reader);
    for _ in 0..3 {
        match Identity::from_card(reader.take().expect("reader"), "00000000") {
            Err(ClientError::PinRefused(_)) => {}
            other => panic!("a wrong PIN must be refused, got {other:?}"),
        }
        reader = Some(world.reader(MAYOR));
    }
    match Identity::from_card(reader.take().expect("reader"), &world.pin(MAYOR)) {
        Err(ClientError::PinRefused(outcome)) => assert!(outcome.contains("Blocked"), "{outcome}"),
        other => panic!("a blocked card must refuse even its PIN, got {other:?}"),
    }
}

/// What a door asks a TLS client for, as a browser sees it: the CA names of its CertificateRequest
/// (a browser choosing automatically offers a certificate issued under one of them), and the
/// server's own chain.
fn handshake_view(addr: std::net::SocketAddr, ca_der: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    use std::sync::{Arc, Mutex};
    #[derive(Debug, Default)]
    struct Recording(Mutex<Vec<Vec<u8>>>);
    impl rustls::client::ResolvesClientCert for Recording {
        fn resolve(
            &self,
            root_hint_subjects: &[&[u8]],
            _sigschemes: &[rustls::SignatureScheme],
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            *self.0.lock().expect("lock") = root_hint_subjects.iter().map(|s| s.to_vec()).collect();
            None
        }
        fn has_certs(&self) -> bool {
            true
        }
    }
    let recording = Arc::new(Recording::default());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca_der.to_vec()))
        .expect("the CA certificate");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_client_cert_resolver(recording.clone());
    let mut connection = rustls::ClientConnection::new(
        Arc::new(config),
        rustls::pki_types::ServerName::try_from("localhost").expect("name"),
    )
    .expect("client");
    let mut socket = std::net::TcpStream::connect(addr).expect("connect");
    while connection.is_handshaking() {
        connection.complete_io(&mut socket).expect("handshake");
    }
    let chain = connection
        .peer_certificates()
        .expect("the server's chain")
        .iter()
        .map(|c| c.to_vec())
        .collect();
    let hints = recording.0.lock().expect("lock").clone();
    (hints, chain)
}

#[test]
fn each_door_names_the_issuing_ca_of_the_certificate_it_wants() {
    use personalization::ca::Issuing;
    let world = world(CardProfile::Cns);
    let lab = world.lab(None);
    let ca = StagingCa::open(&world.ca).expect("ca");
    let (hints, chain) = handshake_view(lab.workstation_addr(), &ca.certificate_der());
    assert_eq!(hints, vec![ca.issuing_subject_der(Issuing::Hosts)]);
    assert_eq!(chain.len(), 2, "leaf and issuing CA");
    assert_eq!(chain[1], ca.issuing_certificate_der(Issuing::Hosts));
    let (hints, _) = handshake_view(lab.card_addr(), &ca.certificate_der());
    assert_eq!(hints, vec![ca.issuing_subject_der(Issuing::Cards)]);
    assert_ne!(
        ca.issuing_subject_der(Issuing::Cards),
        ca.issuing_subject_der(Issuing::Hosts)
    );
}
