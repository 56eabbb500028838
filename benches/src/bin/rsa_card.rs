//! RSA on the card against the bare `rsa` crate, in one run: RSA-2048 key generation and PKCS#1
//! v1.5 SHA-256 signatures made in process (APDUs through card-os's dispatcher) by the CNS card
//! (GENERATE KEY PAIR; VERIFY once, then MSE and PSO COMPUTE DIGITAL SIGNATURE per signature, the
//! sequence OpenSC sends), by the PIV card (GENERATE ASYMMETRIC KEY PAIR in 9E; GENERAL AUTHENTICATE
//! of the padded block, chained as yubico-piv-tool sends it) and by `rsa::PrivateKey` directly.
//! Prints medians and the ratios card ÷ crate (1.0 = no overhead).
//!
//! `cargo run --release -p benches --bin rsa-card -- [--keys N] [--signatures N]`

use std::time::{Duration, Instant};

use card_os::{AppletRegistry, Card, CardConfig, Installation, Storage};
use card_transport::{DirectReader, Transport};
use rsa::rand_core::SeedableRng;

fn card(seed: u64) -> Card {
    cns_applet::in_memory_card(Some(seed), &cns_applet::InstallParams::default())
        .expect("a CNS card")
}

fn piv_card(seed: u64) -> Card {
    let registry = AppletRegistry::new().register(piv_applet::aid(), piv_applet::factory);
    let installation = Installation {
        aid: piv_applet::aid(),
        params: piv_applet::InstallParams::default().to_bytes(),
        default_selected: true,
    };
    let config = CardConfig {
        seed: Some(seed),
        ..CardConfig::default()
    };
    Card::create(config, &registry, &[installation], Storage::Memory).expect("a PIV card")
}

/// `00 01 FF…FF 00 DigestInfo`: the block a PIV host sends for CKM_SHA256_RSA_PKCS (the PIV card
/// does the raw private operation; the host pads).
fn pkcs1_block(info: &[u8]) -> Vec<u8> {
    let mut block = vec![0x00, 0x01];
    block.resize(256 - info.len() - 1, 0xFF);
    block.push(0x00);
    block.extend_from_slice(info);
    block
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn digest_info() -> Vec<u8> {
    let mut info = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    info.extend_from_slice(&[0x5A; 32]);
    info
}

fn main() -> Result<(), String> {
    let mut keys = 12usize;
    let mut signatures = 200usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = |v: Option<String>| {
            v.and_then(|v| v.parse::<usize>().ok())
                .filter(|&n| n > 0)
                .ok_or(format!("{arg} needs a positive number"))
        };
        match arg.as_str() {
            "--keys" => keys = value(args.next())?,
            "--signatures" => signatures = value(args.next())?,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (--keys N, --signatures N)"
                ))
            }
        }
    }

    // Key generation: the same seeds on both sides, so both search the same kind of candidates
    // (the prime search dominates and varies with the seed, hence medians of many keys).
    let mut card_keygen = Vec::with_capacity(keys);
    let mut crate_keygen = Vec::with_capacity(keys);
    let mut last_card = None;
    let mut piv_keygen = Vec::with_capacity(keys);
    let mut last_piv = None;
    for seed in 0..keys as u64 {
        let mut made = card(seed);
        let mut reader = DirectReader::new(&mut made);
        let mut cns = cns_host::CnsSession::new(&mut reader);
        cns.authenticate(&cns_applet::DEFAULT_PERSONALIZATION_KEY)
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        cns.generate_key(2048).map_err(|e| e.to_string())?;
        card_keygen.push(start.elapsed());

        let mut piv_made = piv_card(seed);
        let mut piv_reader = DirectReader::new(&mut piv_made);
        let mut piv = piv_host::PivSession::open(&mut piv_reader).map_err(|e| e.to_string())?;
        piv.authenticate(&piv_host::ManagementKey::factory())
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        piv.generate(
            piv_types::KeySlot::CardAuthentication,
            piv_types::KeyAlgorithm::Rsa2048,
            piv_host::GenerateOptions::default(),
        )
        .map_err(|e| e.to_string())?;
        piv_keygen.push(start.elapsed());
        last_piv = Some(piv_made);

        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let start = Instant::now();
        let key = rsa::PrivateKey::new(&mut rng, 2048).map_err(|e| e.to_string())?;
        crate_keygen.push(start.elapsed());
        last_card = Some((made, key));
    }
    let (mut card, crate_key) = last_card.ok_or("no key made")?;

    // Signatures.
    let info = digest_info();
    let mut reader = DirectReader::new(&mut card);
    let verify = apdu::Command::new(0x00, 0x20, 0x00, 0x10)
        .with_data(cns_applet::commands::pin_block(cns_applet::DEFAULT_PIN).to_vec());
    let answer = reader.exchange(&verify).map_err(|e| e.to_string())?;
    if !answer.sw.is_success() {
        return Err(format!("VERIFY answered {}", answer.sw));
    }
    let mut cns = cns_host::CnsSession::new(&mut reader);
    let mut card_sign = Vec::with_capacity(signatures);
    for _ in 0..signatures {
        let start = Instant::now();
        cns.sign_digest_info(&info).map_err(|e| e.to_string())?;
        card_sign.push(start.elapsed());
    }
    let mut piv_signer = last_piv.ok_or("no PIV key made")?;
    let mut piv_reader = DirectReader::new(&mut piv_signer);
    let mut piv = piv_host::PivSession::open(&mut piv_reader).map_err(|e| e.to_string())?;
    let block = pkcs1_block(&info);
    let mut piv_sign = Vec::with_capacity(signatures);
    for _ in 0..signatures {
        let start = Instant::now();
        piv.sign(
            piv_types::KeySlot::CardAuthentication,
            piv_types::KeyAlgorithm::Rsa2048,
            &block,
        )
        .map_err(|e| e.to_string())?;
        piv_sign.push(start.elapsed());
    }

    let hash = [0x5A; 32];
    let mut crate_sign = Vec::with_capacity(signatures);
    for _ in 0..signatures {
        let start = Instant::now();
        crate_key
            .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash)
            .map_err(|e| e.to_string())?;
        crate_sign.push(start.elapsed());
    }

    // The card blinds every private operation with its random source; the crate's `sign` does
    // not, its `sign_with_rng` does: the like-for-like peer.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(99);
    let mut crate_blinded = Vec::with_capacity(signatures);
    for _ in 0..signatures {
        let start = Instant::now();
        crate_key
            .sign_with_rng(&mut rng, rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash)
            .map_err(|e| e.to_string())?;
        crate_blinded.push(start.elapsed());
    }

    let (rk, rs, rb) = (
        median(crate_keygen),
        median(crate_sign),
        median(crate_blinded),
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("RSA-2048, {keys} keys, {signatures} signatures, medians:");
    println!(
        "  rsa crate: key generation {:.1} ms, signature blinded {:.3} ms, unblinded {:.3} ms",
        ms(rk),
        ms(rb),
        ms(rs)
    );
    for (name, keygen, sign) in [
        ("CNS", card_keygen, card_sign),
        ("PIV", piv_keygen, piv_sign),
    ] {
        let (ck, cs) = (median(keygen), median(sign));
        println!(
            "  {name}: key generation {:.1} ms (ratio {:.2}), signature {:.3} ms (ratio {:.2} to blinded, {:.2} to unblinded)",
            ms(ck),
            ratio(ck, rk),
            ms(cs),
            ratio(cs, rb),
            ratio(cs, rs)
        );
    }
    Ok(())
}
