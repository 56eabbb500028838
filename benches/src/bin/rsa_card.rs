//! RSA on the card against the bare `rsa` crate, in one run: RSA-2048 key generation and PKCS#1
//! v1.5 SHA-256 signatures made by the CNS card in process (APDUs through card-os's dispatcher:
//! GENERATE KEY PAIR; VERIFY once, then MSE and PSO COMPUTE DIGITAL SIGNATURE per signature, the
//! sequence OpenSC sends) and by `rsa::PrivateKey` directly. Prints medians and the ratios
//! card ÷ crate (1.0 = no overhead).
//!
//! `cargo run --release -p benches --bin rsa-card -- [--keys N] [--signatures N]`

use std::time::{Duration, Instant};

use card_os::Card;
use card_transport::{DirectReader, Transport};
use rsa::rand_core::SeedableRng;

fn card(seed: u64) -> Card {
    cns_applet::in_memory_card(Some(seed), &cns_applet::InstallParams::default())
        .expect("a CNS card")
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
    for seed in 0..keys as u64 {
        let mut made = card(seed);
        let mut reader = DirectReader::new(&mut made);
        let mut cns = cns_host::CnsSession::new(&mut reader);
        cns.authenticate(&cns_applet::DEFAULT_PERSONALIZATION_KEY)
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        cns.generate_key(2048).map_err(|e| e.to_string())?;
        card_keygen.push(start.elapsed());

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

    let (ck, rk) = (median(card_keygen), median(crate_keygen));
    let (cs, rs, rb) = (median(card_sign), median(crate_sign), median(crate_blinded));
    println!("RSA-2048, {keys} keys, {signatures} signatures, medians:");
    println!(
        "  key generation  card {:>9.1} ms   rsa crate {:>9.1} ms   ratio {:.2}",
        ck.as_secs_f64() * 1e3,
        rk.as_secs_f64() * 1e3,
        ck.as_secs_f64() / rk.as_secs_f64()
    );
    println!(
        "  signature       card {:>9.3} ms   rsa crate, blinded {:>7.3} ms   ratio {:.2}",
        cs.as_secs_f64() * 1e3,
        rb.as_secs_f64() * 1e3,
        cs.as_secs_f64() / rb.as_secs_f64()
    );
    println!(
        "                  card {:>9.3} ms   rsa crate, unblinded {:>5.3} ms   ratio {:.2}",
        cs.as_secs_f64() * 1e3,
        rs.as_secs_f64() * 1e3,
        cs.as_secs_f64() / rs.as_secs_f64()
    );
    Ok(())
}
