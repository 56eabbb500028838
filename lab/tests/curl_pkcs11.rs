//! The relying party is not tuned to one client: curl logs in with the workstation's PKCS#12 (as
//! PEM) at the workstation door and with a CNS card at the card door, the card's key used through
//! OpenSSL's pkcs11 engine and Debian's OpenSC, the card in a vpcd reader of a private pcscd.

mod support;

use std::time::Duration;

use card_os::{Card, Durability};
use login_lab::holder;
use personalization::batch::CardProfile;
use support::*;
use testkit::tool::Tool;
use virtual_reader::testing::{plug_and_wait, Pcscd};

const MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

fn curl(world: &World, secrets: &[&str]) -> Tool {
    Tool::new("curl")
        .args(["-sS", "--max-time", "60", "--cacert"])
        .arg(world.batch.join("lab").join("ca.crt"))
        .env("OPENSSL_CONF", world.dir.path().join("engine.cnf"))
        .redact(secrets)
        .separate_stderr()
        .timeout(Duration::from_secs(90))
}

#[test]
fn curl_logs_in_with_the_workstation_pem_and_a_cns_card_through_opensc() {
    let world = world(CardProfile::Cns);
    let lab = world.lab(None);
    let card = world.card_of(MAYOR);
    let joined = holder::join(&world.batch, &card.card_number).expect("halves");

    // The workstation's PKCS#12, as an administrator installs it for curl.
    let master = personalization::batch::master_key(&world.batch, None).expect("master key");
    let (pkcs12, password) =
        personalization::workstation::bundle(&world.registry(), &master, &world.workstation)
            .expect("bundle");
    let p12 = world.dir.path().join("ws.p12");
    std::fs::write(&p12, &pkcs12).expect("p12");
    let pem = world.dir.path().join("ws.pem");
    Tool::new("openssl")
        .args(["pkcs12", "-nodes", "-in"])
        .arg(&p12)
        .arg("-out")
        .arg(&pem)
        .args(["-passin", &format!("pass:{}", password.as_str())])
        .redact(&[password.as_str()])
        .run()
        .ok();
    std::fs::write(
        world.dir.path().join("engine.cnf"),
        format!(
            "openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n\
             [engine_section]\npkcs11 = pkcs11_section\n[pkcs11_section]\nengine_id = pkcs11\n\
             MODULE_PATH = {MODULE}\ninit = 0\n"
        ),
    )
    .expect("engine config");

    let pcscd = Pcscd::start().expect("private pcscd");
    let image = Card::open(
        &world.batch.join(&card.card_file),
        &card_registry(),
        Durability::Relaxed,
    )
    .expect("card");
    let _slot = plug_and_wait(&pcscd, image);

    let door = |port: u16, path: &str| format!("https://localhost:{port}{path}");
    let ticket = curl(&world, &[])
        .arg("--cert")
        .arg(&pem)
        .arg(door(lab.workstation_addr().port(), "/api/login"))
        .envs(pcscd.client_env(0))
        .run()
        .ok();
    let ticket: serde_json::Value = serde_json::from_str(&ticket.out).expect("ticket json");
    let url = ticket["card_login"]
        .as_str()
        .expect("card login url")
        .to_string();

    let key = format!(
        "pkcs11:id=%01;type=private;pin-value={}",
        joined.pin.as_str()
    );
    let whoami = curl(&world, &[joined.pin.as_str()])
        .args([
            "--engine",
            "pkcs11",
            "--key-type",
            "ENG",
            "--cert-type",
            "ENG",
        ])
        .args(["--key", &key, "--cert", "pkcs11:id=%01;type=cert"])
        .arg(&url)
        .envs(pcscd.client_env(0))
        .run()
        .ok();
    let whoami: serde_json::Value = serde_json::from_str(&whoami.out).expect("whoami json");
    assert_eq!(whoami["codice_fiscale"], MAYOR);
    assert_eq!(whoami["card_number"], card.card_number.as_str());
    assert_eq!(whoami["workstation"], world.workstation.as_str());
    assert_eq!(whoami["method"], "card");

    // The session curl got works at the workstation door.
    let session = whoami["session"].as_str().expect("session");
    let again = curl(&world, &[])
        .arg("--cert")
        .arg(&pem)
        .args(["--cookie", &format!("tessera_lab_session={session}")])
        .arg(door(lab.workstation_addr().port(), "/api/whoami"))
        .run()
        .ok()
        .has(MAYOR);
    assert!(again.out.contains("\"method\": \"card\""), "{}", again.out);
}
