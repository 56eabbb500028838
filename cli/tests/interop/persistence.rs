//! Restarting `tessera serve` on the same card image keeps keys, certificates, PIN, management key and
//! try counters, as a physical card keeps them across unplugging.

use crate::support::*;

#[test]
fn restarting_serve_keeps_keys_certificates_pin_and_counters() {
    require(&["yubico-piv-tool", "pkcs11-tool", "openssl"]);
    let mut rig = Rig::start(&[]);

    step("personalize: 9A key + certificate, new PIN, new management key");
    let pub9a = rig.file("9a.pub");
    rig.ykpiv(&["-a", "generate", "-s", "9a", "-A", "ECCP256", "-o", &pub9a])
        .ok();
    let cert = rig.issue_cert(&pub9a, "tessera-persist");
    rig.ykpiv(&["-a", "import-certificate", "-s", "9a", "-i", &cert])
        .ok();
    rig.ykpiv(&["-a", "change-pin", "-P", PIN, "-N", NEW_PIN])
        .ok()
        .has("Successfully changed the pin code.");
    rig.ykpiv(&["-a", "set-mgm-key", "-n", MGM_NEW_3DES])
        .ok()
        .has("Successfully set new management key.");
    let new_key = format!("--key={MGM_NEW_3DES}");

    let (msg, hash) = (rig.file("msg"), rig.file("hash"));
    std::fs::write(&msg, "signed before and after a restart\n").expect("write msg");
    rig.openssl(&["dgst", "-sha256", "-binary", "-out", &hash, &msg])
        .ok();
    let certpub = rig.file("certpub.pem");
    rig.openssl(&["x509", "-in", &cert, "-pubkey", "-noout", "-out", &certpub])
        .ok();
    let sign_and_verify = |rig: &Rig, name: &str| {
        let sig = rig.file(name);
        rig.pkcs11(&[
            "--login",
            "--pin",
            NEW_PIN,
            "--sign",
            "-m",
            "ECDSA",
            "--id",
            "01",
            "--signature-format",
            "openssl",
            "-i",
            &hash,
            "-o",
            &sig,
        ])
        .ok();
        rig.openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            &certpub,
            "-signature",
            &sig,
            &msg,
        ])
        .ok()
        .has("Verified OK");
    };
    sign_and_verify(&rig, "sig.before");

    step("one wrong PIN, then restart tessera serve");
    rig.ykpiv(&["-a", "verify-pin", "-P", WRONG_PIN])
        .fails()
        .has("2 tries left before pin is blocked");
    let fingerprint = rig.cert_fingerprint(&cert);
    rig.stop_serving();
    rig.serve();

    step("after the restart: 2 tries left, the same certificate, the same key");
    let status = rig.ykpiv(&["-a", "status"]).ok().has("Slot 9a:");
    assert_eq!(
        status.field("PIN tries left:"),
        "2",
        "{}",
        status.describe()
    );
    assert_eq!(
        status.field("Fingerprint:"),
        fingerprint,
        "{}",
        status.describe()
    );
    assert_eq!(
        status.field("Subject DN:"),
        "CN=tessera-persist",
        "{}",
        status.describe()
    );
    // A successful VERIFY resets the counter: sign first with the changed PIN.
    sign_and_verify(&rig, "sig.after");
    rig.ykpiv(&[
        "-a",
        "verify-pin",
        "-P",
        NEW_PIN,
        "-a",
        "test-signature",
        "-s",
        "9a",
        "-i",
        &cert,
    ])
    .ok()
    .has("Successful ECDSA verification.");
    let status = rig.ykpiv(&["-a", "status"]).ok();
    assert_eq!(
        status.field("PIN tries left:"),
        "3",
        "{}",
        status.describe()
    );

    step("the changed management key survived; the default one is refused");
    rig.ykpiv(&["-a", "generate", "-s", "9c", "-A", "ECCP256"])
        .fails()
        .has("Failed authentication with the application.");
    rig.ykpiv(&[&new_key, "-a", "generate", "-s", "9c", "-A", "ECCP256"])
        .ok()
        .has("Successfully generated a new private key.");

    step("block the PIN, restart: still blocked");
    for _ in 0..3 {
        rig.ykpiv(&["-a", "verify-pin", "-P", WRONG_PIN]).fails();
    }
    rig.stop_serving();
    rig.serve();
    let status = rig.ykpiv(&["-a", "status"]).ok();
    assert_eq!(
        status.field("PIN tries left:"),
        "0",
        "{}",
        status.describe()
    );
    rig.ykpiv(&["-a", "verify-pin", "-P", NEW_PIN])
        .fails()
        .has("Pin code blocked");
}
