//! OpenSC 0.23 (opensc-tool, piv-tool, pkcs11-tool with opensc-pkcs11.so) and NSS (certutil/modutil with
//! the OpenSC module) against a fresh card with the default (PIV) ATR.

use crate::support::*;

/// A management key as piv-tool reads it from the file named by PIV_EXT_AUTH_KEY: `01:02:…`.
fn colon_hex(key: &str) -> String {
    hex::decode(key)
        .expect("hex key")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn opensc_and_nss_matrix() {
    require(&[
        "opensc-tool",
        "piv-tool",
        "pkcs11-tool",
        "yubico-piv-tool",
        "certutil",
        "modutil",
        "openssl",
    ]);
    let rig = Rig::start(&[]);

    step("opensc-tool -n names the card");
    run("opensc-tool", &["-r", rig.reader, "-n"], &[])
        .ok()
        .has("Personal Identity Verification Card");

    step("piv-tool with a wrong management key: mutual authentication refused by the card");
    let wrong_key = rig.secret_file("wrong.key", &colon_hex(MGM_NEW_3DES));
    let refused = run(
        "piv-tool",
        &[
            "-r",
            rig.reader,
            "-A",
            "M:9B:03",
            "-G",
            "9D:11",
            "-o",
            &rig.file("never.pub"),
        ],
        &[("PIV_EXT_AUTH_KEY", &wrong_key), ("OPENSC_DEBUG", "3")],
    )
    .fails();
    let answers = opensc_responses_to(&refused.out, "00 87 03 9B");
    assert_eq!(
        answers.last().map(|a| a.as_slice()),
        Some(&[0x69, 0x82][..]),
        "the witness with a wrong key must be answered 69 82:{}",
        refused.describe()
    );
    assert!(
        opensc_responses_to(&refused.out, "00 47").is_empty(),
        "piv-tool generated a key without authentication:{}",
        refused.describe()
    );

    step("piv-tool -A M:9B:03 -G 9D:11: card side succeeds, client side hits the OpenSSL 3 bug");
    let key = rig.secret_file("mgm.key", &colon_hex(MGM_DEFAULT));
    let generated = run(
        "piv-tool",
        &[
            "-r",
            rig.reader,
            "-A",
            "M:9B:03",
            "-G",
            "9D:11",
            "-o",
            &rig.file("9d.pub"),
        ],
        &[("PIV_EXT_AUTH_KEY", &key), ("OPENSC_DEBUG", "3")],
    )
    .has("piv_general_mutual_authenticate: returning with: 0 (Success)");
    let answer = opensc_responses_to(&generated.out, "00 47 00 9D")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no GENERATE 9D answer in the log:{}", generated.describe()));
    assert_eq!(answer.len(), 72, "{}", hex::encode(&answer));
    assert_eq!(&answer[..6], &[0x7F, 0x49, 0x43, 0x86, 0x41, 0x04]);
    assert_eq!(&answer[70..], &[0x90, 0x00]);
    let point9d = answer[5..70].to_vec();
    // Known issue (see main.rs): OpenSC 0.23 + OpenSSL 3 cannot build the EC key from that answer. When
    // this starts passing, piv-tool got fixed: assert success and the written public key instead.
    generated
        .fails()
        .has("gen_key unable to gen EC key")
        .has("invalid curve");

    step("the 9D key exists: its attestation carries the point piv-tool received");
    let (att9d, f9) = (rig.file("att9d.pem"), rig.file("f9.pem"));
    rig.ykpiv(&["-a", "attest", "-s", "9d", "-o", &att9d]).ok();
    rig.ykpiv(&["-a", "read-certificate", "-s", "f9", "-o", &f9])
        .ok();
    rig.openssl(&["verify", "-partial_chain", "-CAfile", &f9, &att9d])
        .ok()
        .has(": OK");
    assert_eq!(rig.cert_point(&att9d), point9d);

    step("9A key and certificate (yubico-piv-tool + openssl CA), as PKCS#11 needs both");
    let pub9a = rig.file("9a.pub");
    rig.ykpiv(&["-a", "generate", "-s", "9a", "-A", "ECCP256", "-o", &pub9a])
        .ok();
    let cert = rig.issue_cert(&pub9a, "tessera-p11");
    rig.ykpiv(&["-a", "import-certificate", "-s", "9a", "-i", &cert])
        .ok();
    let point = rig.pubkey_point(&pub9a);

    step("pkcs11-tool -L: the token");
    let slots = rig.pkcs11(&["-L"]).ok();
    let label = slots.field("token label        :");
    assert_eq!(label, "tessera-p11", "{}", slots.describe());
    slots.has("Virtual PCD 00 00");

    step("pkcs11-tool --test --login");
    rig.pkcs11(&["--test", "--login", "--pin", PIN])
        .ok()
        .has("PIV AUTH key")
        .has("No errors");

    step("pkcs11-tool -O: certificate and public key; private key after login");
    let objects = rig
        .pkcs11(&["-O"])
        .ok()
        .has("Certificate Object; type = X.509 cert")
        .has("Certificate for PIV Authentication")
        .has("subject:    DN: CN=tessera-p11")
        .has("Public Key Object; EC")
        .has("PIV AUTH pubkey")
        .lacks("Private Key Object");
    // EC_POINT is the DER OCTET STRING 04 41 ‖ point.
    objects.has(&format!("0441{}", hex::encode(&point)));
    rig.pkcs11(&["-O", "--login", "--pin", PIN])
        .ok()
        .has("Private Key Object; EC")
        .has("PIV AUTH key");

    step("pkcs11-tool --sign -m ECDSA, verified by openssl with the certificate's key");
    let (msg, hash, sig) = (rig.file("msg"), rig.file("hash"), rig.file("sig"));
    std::fs::write(&msg, "tessera interop: sign me\n").expect("write msg");
    rig.openssl(&["dgst", "-sha256", "-binary", "-out", &hash, &msg])
        .ok();
    rig.pkcs11(&[
        "--login",
        "--pin",
        PIN,
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
    rig.assert_sha256_signature(&rig.cert_public_key(&cert), &sig, &msg);

    step("9C: always-authenticate signing through PKCS#11");
    let pub9c = rig.file("9c.pub");
    rig.ykpiv(&["-a", "generate", "-s", "9c", "-A", "ECCP256", "-o", &pub9c])
        .ok();
    let cert9c = rig.issue_cert_with(
        &pub9c,
        "tessera-9c",
        "keyUsage=critical,digitalSignature,nonRepudiation",
    );
    rig.ykpiv(&["-a", "import-certificate", "-s", "9c", "-i", &cert9c])
        .ok();
    rig.pkcs11(&["-O", "--login", "--pin", PIN])
        .ok()
        .has("SIGN key")
        .has("always authenticate");
    let sig9c = rig.file("sig9c");
    rig.pkcs11(&[
        "--login",
        "--pin",
        PIN,
        "--sign",
        "-m",
        "ECDSA",
        "--id",
        "02",
        "--signature-format",
        "openssl",
        "-i",
        &hash,
        "-o",
        &sig9c,
    ])
    .ok();
    rig.openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &pub9c,
        "-signature",
        &sig9c,
        &msg,
    ])
    .ok()
    .has("Verified OK");

    step("9D (piv-tool's key): ECDH through PKCS#11 agrees with openssl");
    let pub9d = rig.file("9d.pub.pem");
    rig.openssl(&["x509", "-in", &att9d, "-pubkey", "-noout", "-out", &pub9d])
        .ok();
    let cert9d = rig.issue_cert_with(&pub9d, "tessera-9d", "keyUsage=critical,keyAgreement");
    rig.ykpiv(&["-a", "import-certificate", "-s", "9d", "-i", &cert9d])
        .ok();
    let (peer, peer_der) = (rig.file("peer.key"), rig.file("peer.pub.der"));
    rig.openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &peer,
    ])
    .ok();
    rig.openssl(&[
        "pkey", "-in", &peer, "-pubout", "-outform", "DER", "-out", &peer_der,
    ])
    .ok();
    let (card_secret, soft_secret) = (rig.file("shared.card"), rig.file("shared.soft"));
    rig.pkcs11(&[
        "--login",
        "--pin",
        PIN,
        "--derive",
        "-m",
        "ECDH1-DERIVE",
        "--id",
        "03",
        "-i",
        &peer_der,
        "-o",
        &card_secret,
    ])
    .ok();
    rig.openssl(&[
        "pkeyutl",
        "-derive",
        "-inkey",
        &peer,
        "-peerkey",
        &pub9d,
        "-out",
        &soft_secret,
    ])
    .ok();
    let shared = std::fs::read(&card_secret).expect("card's shared secret");
    assert_eq!(shared.len(), 32);
    assert_eq!(
        shared,
        std::fs::read(&soft_secret).expect("openssl's shared secret"),
        "ECDH on the card disagrees with openssl"
    );

    step("a ~2.4 KB certificate in 9E: command chaining in, 61xx/GET RESPONSE out");
    let pub9e = rig.file("9e.pub");
    rig.ykpiv(&["-a", "generate", "-s", "9e", "-A", "ECCP256", "-o", &pub9e])
        .ok();
    let names: Vec<String> = (0..70)
        .map(|i| format!("DNS:host{i:04}.tessera.example.org"))
        .collect();
    let big = rig.issue_cert_with(
        &pub9e,
        "tessera-9e",
        &format!("subjectAltName={}", names.join(",")),
    );
    let big_der = rig.file("big.der");
    rig.openssl(&["x509", "-in", &big, "-outform", "DER", "-out", &big_der])
        .ok();
    let expected = std::fs::read(&big_der).expect("big certificate");
    assert!(expected.len() > 2000, "only {} bytes", expected.len());
    rig.ykpiv(&[
        "--verbose=2",
        "-a",
        "import-certificate",
        "-s",
        "9e",
        "-i",
        &big,
    ])
    .ok()
    .has("> 10 db 3f ff ff")
    .has("Successfully imported a new certificate.");
    let (via_ykpiv, via_p11) = (rig.file("big.ykpiv.der"), rig.file("big.p11.der"));
    rig.ykpiv(&[
        "--verbose=2",
        "-a",
        "read-certificate",
        "-s",
        "9e",
        "-K",
        "DER",
        "-o",
        &via_ykpiv,
    ])
    .ok()
    .has("> 00 c0 00 00");
    assert_eq!(std::fs::read(&via_ykpiv).expect("ykpiv read"), expected);
    rig.pkcs11(&["-r", "--type", "cert", "--id", "04", "-o", &via_p11])
        .ok();
    assert_eq!(std::fs::read(&via_p11).expect("pkcs11-tool read"), expected);

    step("NSS: a fresh database with the OpenSC module");
    let db = format!("sql:{}", rig.file("nssdb"));
    std::fs::create_dir(rig.path("nssdb")).expect("nss dir");
    run("certutil", &["-N", "-d", &db, "--empty-password"], &[]).ok();
    run(
        "modutil",
        &[
            "-dbdir",
            &db,
            "-add",
            "opensc",
            "-libfile",
            OPENSC_PKCS11,
            "-force",
        ],
        &[],
    )
    .ok()
    .has("Module \"opensc\" added to database.");
    let label = rig.pkcs11(&["-L"]).ok().field("token label        :");
    run("certutil", &["-L", "-h", "all", "-d", &db], &[])
        .ok()
        .has(&format!("{label}:Certificate for PIV Authentication"))
        .has(&format!("{label}:Certificate for Digital Signature"))
        .has(&format!("{label}:Certificate for Key Management"))
        .has(&format!("{label}:Certificate for Card Authentication"));
    let pinfile = rig.secret_file("pinfile", &format!("{PIN}\n"));
    run(
        "certutil",
        &["-K", "-h", "all", "-d", &db, "-f", &pinfile],
        &[],
    )
    .ok()
    .has(&format!("Checking token \"{label}\""))
    .has("PIV AUTH key")
    .has("SIGN key")
    .has("KEY MAN key");
}

/// OpenSC's own PIV CI (`.github/test-piv.sh`), against tessera instead of a JavaCard simulator: keys
/// generated by yubico-piv-tool — RSA 2048 in 9A and 9E, P-256 in 9C and 9D — certificates imported
/// (issued by openssl for the card's keys, as `selfsign` fails under OpenSSL 3, see the known issues),
/// then `pkcs11-tool -l -O` and `pkcs11-tool -l -t`, which must report "No errors". With RSA keys the
/// `--test` run covers what it skips for EC keys: signatures (RSA-X-509, RSA-PKCS, the hashed
/// mechanisms), verification, and decryption (raw, PKCS#1 v1.5, OAEP) on both RSA slots.
#[test]
fn opensc_piv_ci_flow_with_rsa_and_p256() {
    require(&["pkcs11-tool", "yubico-piv-tool", "openssl"]);
    let rig = Rig::start(&[]);

    let slots = [
        (
            "9a",
            "RSA2048",
            "keyUsage=critical,digitalSignature,keyEncipherment",
        ),
        (
            "9c",
            "ECCP256",
            "keyUsage=critical,digitalSignature,nonRepudiation",
        ),
        ("9d", "ECCP256", "keyUsage=critical,keyAgreement"),
        (
            "9e",
            "RSA2048",
            "keyUsage=critical,digitalSignature,keyEncipherment",
        ),
    ];
    for (slot, algorithm, usage) in slots {
        step(&format!(
            "generate {slot} {algorithm}, certificate imported"
        ));
        let public = rig.file(&format!("{slot}.pub"));
        rig.ykpiv(&["-a", "generate", "-s", slot, "-A", algorithm, "-o", &public])
            .ok()
            .has("Successfully generated a new private key.");
        if algorithm == "RSA2048" {
            assert_eq!(rig.rsa_bits(&public), 2048);
        }
        let cert = rig.issue_cert_with(&public, &format!("ci-{slot}"), usage);
        rig.ykpiv(&["-a", "import-certificate", "-s", slot, "-i", &cert])
            .ok()
            .has("Successfully imported a new certificate.");
    }

    step("pkcs11-tool -l -O: the four keys, with their algorithms");
    let objects = rig.pkcs11(&["-l", "-O", "-p", PIN]).ok();
    for (label, kind) in [
        ("PIV AUTH key", "RSA"),
        ("SIGN key", "EC"),
        ("KEY MAN key", "EC"),
        ("CARD AUTH key", "RSA"),
    ] {
        let line = objects
            .out
            .lines()
            .position(|l| l.trim() == format!("label:      {label}"))
            .unwrap_or_else(|| panic!("no {label}:{}", objects.describe()));
        let header = objects.out.lines().nth(line - 1).unwrap_or_default();
        assert_eq!(
            header.trim(),
            format!("Private Key Object; {kind}"),
            "{}",
            objects.describe()
        );
    }
    objects
        .has("Public Key Object; RSA 2048 bits")
        .has("subject:    DN: CN=ci-9a")
        .has("subject:    DN: CN=ci-9e");

    step("pkcs11-tool -l -t: No errors, RSA signatures and decryption tested on 9A and 9E");
    let test = rig.pkcs11(&["-l", "-t", "-p", PIN]).ok().has("No errors");
    test.has("RSA-X-509: OK")
        .has("RSA-PKCS: OK")
        .has("SHA256-RSA-PKCS: OK")
        .has("testing key 0 (PIV AUTH key)")
        .has("testing key 3 (CARD AUTH key)")
        .lacks("ERR")
        .lacks("failed");

    step("pkcs11-tool --sign -m SHA256-RSA-PKCS with 9A, verified by openssl with the certificate");
    let (msg, sig) = (rig.file("msg"), rig.file("sig"));
    std::fs::write(&msg, "tessera interop: an RSA signature\n").expect("write msg");
    rig.pkcs11(&[
        "-l",
        "-p",
        PIN,
        "--sign",
        "-m",
        "SHA256-RSA-PKCS",
        "--id",
        "01",
        "-i",
        &msg,
        "-o",
        &sig,
    ])
    .ok();
    assert_eq!(std::fs::metadata(&sig).expect("signature").len(), 256);
    rig.assert_sha256_signature(&rig.cert_public_key(&rig.file("ci-9a.crt")), &sig, &msg);

    step("openssl encrypts to 9E's certificate, pkcs11-tool decrypts on the card");
    let (plain, enc, dec) = (rig.file("plain"), rig.file("enc"), rig.file("dec"));
    let pub9e = rig.cert_public_key(&rig.file("ci-9e.crt"));
    std::fs::write(&plain, "a session key, say").expect("write plain");
    rig.openssl(&[
        "pkeyutl", "-encrypt", "-pubin", "-inkey", &pub9e, "-in", &plain, "-out", &enc,
    ])
    .ok();
    rig.pkcs11(&[
        "-l",
        "-p",
        PIN,
        "--decrypt",
        "-m",
        "RSA-PKCS",
        "--id",
        "04",
        "-i",
        &enc,
        "-o",
        &dec,
    ])
    .ok();
    assert_eq!(
        std::fs::read(&dec).expect("decrypted"),
        std::fs::read(&plain).expect("plain")
    );
}
