//! A personalized card in a PC/SC reader: after registration, OpenSC's pkcs11-tool logs in with
//! envelope half + e-mail half and signs; openssl verifies the signature with the certificate's key.

mod support;

use std::process::Command;
use std::time::SystemTime;

use personalization::batch;
use personalization::ca::StagingCa;
use personalization::lifecycle::{Batch, Mailer};
use support::*;
use virtual_reader::testing::{plug_and_wait, Pcscd};

const MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/pcsc-install.sh installs it)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

#[test]
fn pkcs11_tool_logs_in_with_the_combined_pin_and_signs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (csv, [_, mayor, _, _, _]) = big_census(1);
    let census = dir.path().join("census.csv");
    std::fs::write(&census, csv).expect("census");
    let ca = dir.path().join("ca");
    StagingCa::init(&ca, SystemTime::now()).expect("ca");
    let batch_dir = dir.path().join("batch");
    batch::personalize(&census, &ca, &batch_dir, &piv_options(), &mut |_, _, _| {})
        .expect("personalize");
    let mut batch = Batch::open(&batch_dir, None, SystemTime::now()).expect("batch");
    let mailer = Mailer::for_batch(&batch_dir, None);
    // The mayor's card is active on delivery: its second halves are in the outbox.
    let (_, activated) = batch.deliver("058047", &mayor, &mailer).expect("deliver");
    let card_number = activated.first().expect("the mayor's card").clone();
    drop(batch);
    let envelope = envelope(&batch_dir, &card_number);
    let mail = emails(&batch_dir, &card_number)
        .pop()
        .expect("released e-mail");
    let pin = format!(
        "{}{}",
        envelope["pin_first_half"].as_str().expect("half"),
        email_field(&mail, "PIN-Second-Half")
    );

    let pcscd = Pcscd::start().expect("private pcscd");
    let card = open_card(&batch_dir, envelope["card_file"].as_str().expect("file"));
    let slot = plug_and_wait(&pcscd, card);

    let work = dir.path();
    let message = work.join("message");
    std::fs::write(&message, b"login to the ANPR staging console").expect("message");
    let digest = work.join("digest");
    run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-binary",
            "-out",
            digest.to_str().expect("utf8"),
            message.to_str().expect("utf8"),
        ],
    );
    let signature = work.join("signature");
    let signed = run(
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--login",
            "--pin",
            &pin,
            "--sign",
            "-m",
            "ECDSA",
            "--id",
            "01",
            "--signature-format",
            "openssl",
            "-i",
            digest.to_str().expect("utf8"),
            "-o",
            signature.to_str().expect("utf8"),
        ],
    );
    assert!(signed.contains("ECDSA"), "{signed}");
    let cert = work.join("cert.der");
    run(
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "-r",
            "--type",
            "cert",
            "--id",
            "01",
            "-o",
            cert.to_str().expect("utf8"),
        ],
    );
    let subject = run(
        "openssl",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            cert.to_str().expect("utf8"),
            "-noout",
            "-subject",
        ],
    );
    assert!(
        subject.contains(&mayor),
        "the certificate names the holder: {subject}"
    );
    let public = work.join("public.pem");
    run(
        "openssl",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            cert.to_str().expect("utf8"),
            "-pubkey",
            "-noout",
            "-out",
            public.to_str().expect("utf8"),
        ],
    );
    let verified = run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            public.to_str().expect("utf8"),
            "-signature",
            signature.to_str().expect("utf8"),
            message.to_str().expect("utf8"),
        ],
    );
    assert!(verified.contains("Verified OK"), "{verified}");
    // The envelope half alone does not log in.
    let half = envelope["pin_first_half"].as_str().expect("half");
    let refused = Command::new("pkcs11-tool")
        .args([
            "--module",
            MODULE,
            "--login",
            "--pin",
            half,
            "--list-objects",
        ])
        .output()
        .expect("pkcs11-tool");
    assert!(
        !refused.status.success(),
        "the envelope half alone logged in"
    );
    slot.remove();
}
