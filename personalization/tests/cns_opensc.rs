//! A CNS card personalized by the bureau's APDU sequence, in a PC/SC reader, read by Debian's
//! OpenSC through its Italian CNS driver: the card is named, the token carries the holder's name
//! and card number, pkcs11-tool's self-test passes, a signature verifies with openssl against the
//! card's certificate, three wrong PINs lock the token and the PUK unblocks it.

mod support;

use std::time::SystemTime;

use card_os::Card;
use card_transport::DirectReader;
use personalization::ca::{Holder, StagingCa};
use personalization::cns::{self, CnsOrder};
use testkit::tool::Tool;
use virtual_reader::testing::{plug_and_wait, Pcscd};

const MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
const PIN: &str = "24681357";
const PUK: &str = "97531864";
/// A bureau card number (ISTAT code + sequence); EF_IDCarta holds it zero-padded to 16.
const CARD_NUMBER: &str = "058091000123";
const CARD_ID: &str = "0000058091000123";

/// A factory chip (default PIN, PUK and personalization key) through the bureau's sequence.
fn personalized_card(dir: &std::path::Path) -> (Card, Vec<u8>) {
    let mut card =
        cns_applet::in_memory_card(None, &cns_applet::InstallParams::default()).expect("card");
    let ca = StagingCa::init(&dir.join("ca"), SystemTime::now()).expect("ca");
    let holder = Holder {
        codice_fiscale: "RSSMRA80A01H501U".into(),
        surname: "Rossi".into(),
        given_name: "Mario".into(),
    };
    let personalized = cns::personalize(
        &mut DirectReader::new(&mut card),
        &ca,
        &CnsOrder {
            holder: &holder,
            issuer_code: "058091",
            card_number: CARD_NUMBER,
            certificate_serial: personalization::ca::random_serial(),
            not_before: SystemTime::now(),
            pin: PIN,
            puk: PUK,
            factory_key: &cns_applet::DEFAULT_PERSONALIZATION_KEY,
            card_key: &[0x42; 16],
        },
    )
    .expect("personalize");
    (card, personalized.certificate_der)
}

fn pkcs11(args: &[&str]) -> Tool {
    Tool::new("pkcs11-tool")
        .arg("--module")
        .arg(MODULE)
        .args(args)
        .redact(&[PIN, PUK])
}

#[test]
fn opensc_reads_a_cns_card_signs_with_it_and_the_puk_unblocks_it() {
    testkit::tool::require(&["opensc-tool", "pkcs11-tool", "openssl"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (card, certificate) = personalized_card(dir.path());
    let pcscd = Pcscd::start().expect("private pcscd");
    let _slot = plug_and_wait(&pcscd, card);

    // The driver: OpenSC's Italian CNS, which names the card "CNS card".
    Tool::new("opensc-tool")
        .args(["-v", "-n"])
        .run()
        .ok()
        .has("Italian CNS")
        .has("CNS card");
    // The token: the holder's name from EF_DatiPersonali, the card number from EF_IDCarta.
    pkcs11(&["-L"]).run().ok().has("MARIO ROSSI").has(CARD_ID);
    // The certificate on the card is the one the bureau wrote.
    let read_back = dir.path().join("card-cert.der");
    pkcs11(&["--read-object", "--type", "cert", "--id", "01", "-o"])
        .arg(&read_back)
        .run()
        .ok();
    assert_eq!(std::fs::read(&read_back).expect("cert"), certificate);

    // pkcs11-tool's self-test with login: signatures, verification, key objects.
    let test = pkcs11(&["--test", "--login", "--pin", PIN]).run().ok();
    assert!(
        test.out.contains("No errors"),
        "pkcs11-tool --test: {}",
        test.describe()
    );

    // A SHA-256 RSA PKCS#1 signature made on the card verifies against the certificate's key.
    let message = dir.path().join("message");
    std::fs::write(&message, b"login to the ANPR staging console").expect("message");
    let signature = dir.path().join("signature");
    pkcs11(&[
        "--login",
        "--pin",
        PIN,
        "--sign",
        "-m",
        "SHA256-RSA-PKCS",
        "--id",
        "01",
        "-i",
    ])
    .arg(&message)
    .arg("-o")
    .arg(&signature)
    .run()
    .ok();
    let cert_pem = dir.path().join("cert.pem");
    Tool::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(&read_back)
        .arg("-out")
        .arg(&cert_pem)
        .run()
        .ok();
    let public = dir.path().join("public.pem");
    Tool::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(&cert_pem)
        .arg("-out")
        .arg(&public)
        .run()
        .ok();
    Tool::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(&signature)
        .arg(&message)
        .run()
        .ok()
        .has("Verified OK");

    // Three wrong PINs lock the token; the PUK unblocks it with a new PIN.
    for _ in 0..3 {
        pkcs11(&["--login", "--pin", "11111111", "--list-objects"])
            .run()
            .fails()
            .has("CKR_PIN_INCORRECT");
    }
    pkcs11(&["--login", "--pin", PIN, "--list-objects"])
        .run()
        .fails()
        .has("CKR_PIN_LOCKED");
    // OpenSC's PKCS#11 module unblocks only when opensc.conf says so (`pin_unblock_style`, off in
    // Debian's default): pkcs15-tool is OpenSC's own way, RESET RETRY COUNTER with PUK ‖ new PIN.
    Tool::new("pkcs15-tool")
        .args([
            "--unblock-pin",
            "--auth-id",
            "01",
            "--puk",
            PUK,
            "--new-pin",
            "13572468",
        ])
        .redact(&["13572468"])
        .run()
        .ok();
    pkcs11(&["--login", "--pin", "13572468", "--list-objects"])
        .redact(&["13572468"])
        .run()
        .ok()
        .has("Private Key Object");
}
