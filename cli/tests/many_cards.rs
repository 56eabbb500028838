//! 32 cards served by one `tessera serve`: pcsc-lite holds 16 readers per daemon, so the test runs two
//! private pcscd (the second on a socket of its own, reached with PCSCLITE_CSOCK_NAME). Every card is
//! listed by `opensc-tool -l` on its daemon, and every card signs through OpenSC's PKCS#11 module with
//! `pkcs11-tool`; each signature verifies under the key that card generated.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use card_os::{AppletRegistry, Card, Durability};
use card_transport::{InProcessReader, SharedCard};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use piv_host::{GenerateOptions, ManagementKey, PivSession};
use piv_types::{KeyAlgorithm, KeySlot};
use testkit::tool::Tool;
use testkit::{wait_for, Pcscd, Terminating, READERS_PER_PCSCD};

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");
const OPENSC_PKCS11: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
const CARDS: usize = 32;
/// OpenSC's PKCS#11 module offers `max_virtual_slots` (16) slots, `slots_per_card` (4) per reader, so by
/// default it shows only 4 readers' tokens; one slot per card and room for 16 readers lift that.
const OPENSC_CONF: &str = "app default {\n  framework pkcs15 {\n  }\n}\napp opensc-pkcs11 {\n  pkcs11 {\n    max_virtual_slots = 64;\n    slots_per_card = 1;\n  }\n}\n";

/// A card image with a P-256 key in 9E and its attestation certificate in the 9E certificate object
/// (OpenSC shows a key only beside a certificate); returns the public point.
fn piv_card(path: &Path, seed: usize) -> Vec<u8> {
    Tool::new(TESSERA)
        .args(["card", "new", "--seed", &seed.to_string(), "--out"])
        .arg(path)
        .quiet()
        .run()
        .ok();
    // The applets `tessera card new` installs (cli/src/cards.rs).
    let registry = AppletRegistry::new()
        .register(piv_applet::aid(), piv_applet::factory)
        .register(yubikey_mgmt_applet::aid(), yubikey_mgmt_applet::factory)
        .register(demo_applet::aid(), demo_applet::factory);
    let card = Card::open(path, &registry, Durability::Relaxed).expect("open card");
    let shared: SharedCard = Arc::new(Mutex::new(card));
    let mut reader = InProcessReader::new(shared);
    let mut piv = PivSession::open(&mut reader).expect("PIV");
    piv.authenticate(&ManagementKey::factory())
        .expect("management key");
    let public = piv
        .generate(
            KeySlot::CardAuthentication,
            KeyAlgorithm::EccP256,
            GenerateOptions::default(),
        )
        .expect("generate 9E");
    let certificate = piv.attest(KeySlot::CardAuthentication).expect("attest");
    piv.put_certificate(KeySlot::CardAuthentication, &certificate)
        .expect("certificate");
    public.ec_point().expect("EC point").to_vec()
}

/// PKCS#11 slot ids with a token, by reader name, from `pkcs11-tool -L`.
fn token_slots(env: &[(String, String)]) -> Vec<(String, String)> {
    let many = env.iter().any(|(k, _)| k == "OPENSC_CONF");
    assert!(many, "pkcs11-tool needs the many-slot OpenSC config");
    let run = Tool::new("pkcs11-tool")
        .args(["--module", OPENSC_PKCS11, "-L"])
        .envs(env.iter().cloned())
        .run()
        .ok();
    let mut found = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in run.out.lines() {
        // "Slot 3 (0x3): Virtual PCD B 00 01"
        if let Some(rest) = line.strip_prefix("Slot ") {
            current = rest.split_once(": ").and_then(|(ids, reader)| {
                let id = ids.split_once('(')?.1.strip_suffix(')')?;
                Some((reader.trim().to_owned(), id.to_owned()))
            });
        } else if line.trim_start().starts_with("token label") {
            if let Some(slot) = current.take() {
                found.push(slot);
            }
        }
    }
    found
}

#[test]
fn thirty_two_served_cards_are_each_listed_and_each_signs_through_pkcs11() {
    let pcscd = Pcscd::with_slots(CARDS).expect("private pcscd daemons");
    assert_eq!(pcscd.instances(), 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let cards: Vec<(PathBuf, Vec<u8>)> = (0..CARDS)
        .map(|i| {
            let path = dir.path().join(format!("card{i:02}.img"));
            let public = piv_card(&path, 100 + i);
            (path, public)
        })
        .collect();
    let log = fs::File::create(dir.path().join("serve.log")).expect("log");
    let _served = Terminating::new(
        Command::new(TESSERA)
            .arg("serve")
            .arg("--vpcd")
            .arg(pcscd.vpcd_addr(0).to_string())
            .args(cards.iter().map(|(path, _)| path))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tessera serve"),
    );

    let opensc_conf = dir.path().join("opensc.conf");
    fs::write(&opensc_conf, OPENSC_CONF).expect("opensc.conf");
    let hash = dir.path().join("hash");
    fs::write(&hash, [0x5A; 32]).expect("hash");
    for instance in 0..pcscd.instances() {
        let env = pcscd.client_env(instance);
        let readers = pcscd.readers_of(instance);
        assert_eq!(readers.len(), READERS_PER_PCSCD);
        // opensc-tool -l lists every reader of this daemon with a card in it.
        let mut listing = String::new();
        let all_present = wait_for(
            || {
                listing = Tool::new("opensc-tool")
                    .arg("-l")
                    .envs(env.iter().cloned())
                    .quiet()
                    .run()
                    .ok()
                    .out;
                readers.iter().all(|reader| {
                    listing
                        .lines()
                        .any(|l| l.ends_with(reader) && l.split_whitespace().nth(1) == Some("Yes"))
                })
            },
            Duration::from_secs(30),
        );
        assert!(
            all_present,
            "pcscd {instance} ({env:?}): not every card listed:\n{listing}\nserve log:\n{}\n{}",
            fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default(),
            pcscd.log()
        );
        eprintln!(
            "pcscd {instance} {env:?}: opensc-tool -l lists {} cards",
            readers.len()
        );

        // pkcs11-tool sees a token in each, and each signs with its own 9E key.
        let mut env = env;
        env.push(("OPENSC_CONF".into(), opensc_conf.display().to_string()));
        let tokens = token_slots(&env);
        assert_eq!(tokens.len(), READERS_PER_PCSCD, "{tokens:?}");
        for (offset, reader) in readers.iter().enumerate() {
            let slot = instance * READERS_PER_PCSCD + offset;
            let (_, id) = tokens
                .iter()
                .find(|(r, _)| r == reader)
                .unwrap_or_else(|| panic!("no PKCS#11 token in {reader}: {tokens:?}"));
            let signature = dir.path().join(format!("sig{slot:02}"));
            Tool::new("pkcs11-tool")
                .args(["--module", OPENSC_PKCS11, "--slot", id])
                .args([
                    "--login", "--pin", "123456", "--sign", "-m", "ECDSA", "--id", "04",
                ])
                .args(["--signature-format", "openssl", "-i"])
                .arg(&hash)
                .arg("-o")
                .arg(&signature)
                .envs(env.iter().cloned())
                .redact(&["123456"])
                .run()
                .ok();
            let der = fs::read(&signature).expect("signature written");
            let verifying =
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&cards[slot].1).expect("public point");
            let signature = p256::ecdsa::DerSignature::from_bytes(&der).expect("DER signature");
            verifying
                .verify_prehash(&[0x5A; 32], &signature)
                .unwrap_or_else(|e| {
                    panic!("card {slot} in {reader}: signature does not verify: {e}")
                });
        }
    }
}
