//! Per-APDU round trip through PC/SC → pcscd → vpcd → card and back, for tessera cards and, in the
//! same run, for a do-nothing card that answers `90 00` to everything (the floor of the path); then a
//! whole `pkcs11-tool --login --sign` (OpenSC, ECDSA with the PIV 9E key) against
//! `pkcs11-tool --login --list-objects` on the same card (the floor of a pkcs11-tool run: process start,
//! module load, card detection, login).
//!
//! ```text
//! cargo run --release -p benches --bin pcsc-roundtrip -- [--n 2000]
//! ```
//! It starts a private pcscd (the `testkit::Pcscd` guard); stop any other pcscd first.

use std::time::{Duration, Instant};

use benches::{
    demo_card, piv_card_with_9e_key, piv_sign_9e_apdu, Stats, INCREMENT, READ_COUNTER, SELECT_DEMO,
    SELECT_PIV,
};
use card_os::Durability;
use card_transport::{PcscReader, Transport};
use testkit::tool::Tool;
use testkit::{wait_for, EchoCard, Pcscd};
use virtual_reader::{share, SharedCard, SlotOptions, VpcdSlot};

const WARM_UP: usize = 50;

fn measure(reader: &str, select: &[u8], apdu: &[u8], n: usize) -> Result<Stats, String> {
    let mut transport = PcscReader::connect(reader).map_err(|e| e.to_string())?;
    transport.transmit_raw(select).map_err(|e| e.to_string())?;
    let mut once = || -> Result<Duration, String> {
        let started = Instant::now();
        let response = transport.transmit_raw(apdu).map_err(|e| e.to_string())?;
        let elapsed = started.elapsed();
        if !response.ends_with(&[0x90, 0x00]) {
            return Err(format!(
                "{reader}: answer {response:02X?} does not end in 90 00"
            ));
        }
        Ok(elapsed)
    };
    for _ in 0..WARM_UP {
        once()?;
    }
    let samples = (0..n).map(|_| once()).collect::<Result<Vec<_>, _>>()?;
    Stats::from_samples(samples).ok_or_else(|| "--n must be at least 1".into())
}

fn plug(
    pcscd: &Pcscd,
    slot: usize,
    card: SharedCard,
) -> Result<virtual_reader::SlotHandle, String> {
    let handle = VpcdSlot::plug(pcscd.vpcd_addr(slot), card, SlotOptions::default())
        .map_err(|e| e.to_string())?;
    let reader = pcscd.reader_name(slot);
    if !wait_for(
        || PcscReader::card_present(reader).unwrap_or(false),
        Duration::from_secs(10),
    ) {
        return Err(format!("no card in {reader} after 10 s"));
    }
    Ok(handle)
}

fn main() -> Result<(), String> {
    let mut n = 2000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--n" => {
                n = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--n needs a number")?
            }
            other => return Err(format!("unknown argument {other:?} (use --n N)")),
        }
    }
    let pcscd = Pcscd::start().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("bench.img");
    let piv_path = dir.path().join("piv.img");
    let (piv, _public) = piv_card_with_9e_key(Some((&piv_path, Durability::Full)), true)?;
    let floor = plug(&pcscd, 0, share(EchoCard::default()))?;
    let card = plug(&pcscd, 1, share(demo_card(Some((&path, Durability::Full)))))?;
    let piv_slot = plug(&pcscd, 2, share(piv))?;
    let (floor_reader, card_reader, piv_reader) = (
        pcscd.reader_name(0),
        pcscd.reader_name(1),
        pcscd.reader_name(2),
    );
    let sign = piv_sign_9e_apdu(&[0x5A; 32]);

    // Interleave floor and card runs so both see the same machine load.
    let mut rows = Vec::new();
    for (label, reader, select, apdu) in [
        (
            "do-nothing card (floor)",
            floor_reader,
            SELECT_DEMO,
            READ_COUNTER,
        ),
        (
            "tessera: read counter",
            card_reader,
            SELECT_DEMO,
            READ_COUNTER,
        ),
        (
            "do-nothing card (floor)",
            floor_reader,
            SELECT_DEMO,
            INCREMENT,
        ),
        (
            "tessera: increment (fsync)",
            card_reader,
            SELECT_DEMO,
            INCREMENT,
        ),
        (
            "do-nothing card (floor)",
            floor_reader,
            SELECT_PIV,
            &sign[..],
        ),
        ("tessera: PIV ECDSA sign", piv_reader, SELECT_PIV, &sign[..]),
    ] {
        rows.push((label, measure(reader, select, apdu, n)?));
    }
    println!("per-APDU round trip through PC/SC + pcscd + vpcd, {n} APDUs each");
    for (label, stats) in &rows {
        println!("  {label:<28} {stats}");
    }
    let ratio = |a: &Stats, b: &Stats| a.median.as_secs_f64() / b.median.as_secs_f64();
    println!(
        "ratio tessera/floor (median): read {:.2}x, increment {:.2}x, PIV sign {:.2}x",
        ratio(&rows[1].1, &rows[0].1),
        ratio(&rows[3].1, &rows[2].1),
        ratio(&rows[5].1, &rows[4].1)
    );
    floor.remove();
    card.remove();
    pkcs11_rows(piv_reader)?;
    piv_slot.remove();
    Ok(())
}

const OPENSC_PKCS11: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

/// Times whole pkcs11-tool runs: an ECDSA signature with the 9E key against listing objects.
fn pkcs11_rows(reader: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let hash = dir.path().join("hash");
    std::fs::write(&hash, [0x5A; 32]).map_err(|e| e.to_string())?;
    let sig = dir.path().join("sig");
    // pkcs11-tool logs in before C_Sign even for 9E; both runs log in, so the floor stays comparable.
    let module = ["--module", OPENSC_PKCS11, "--login", "--pin", "123456"];
    let hash_arg = hash.to_string_lossy().into_owned();
    let sig_arg = sig.to_string_lossy().into_owned();
    let list: Vec<&str> = module.iter().copied().chain(["--list-objects"]).collect();
    let sign: Vec<&str> = module
        .iter()
        .copied()
        .chain([
            "--sign", "-m", "ECDSA", "--id", "04", "-i", &hash_arg, "-o", &sig_arg,
        ])
        .collect();
    let time = |args: &[&str]| -> Result<Stats, String> {
        let mut samples = Vec::new();
        for _ in 0..25 {
            let run = Tool::new("pkcs11-tool")
                .args(args)
                .redact(&["123456"])
                .quiet()
                .run();
            if run.code != Some(0) {
                return Err(format!("pkcs11-tool failed on {reader}:{}", run.describe()));
            }
            samples.push(run.elapsed());
        }
        Stats::from_samples(samples).ok_or_else(|| "no samples".into())
    };
    let floor = time(&list)?;
    let signing = time(&sign)?;
    println!("whole pkcs11-tool runs (OpenSC PKCS#11 over PC/SC), 25 each");
    println!("  {:<28} {floor}", "--list-objects (floor)");
    println!("  {:<28} {signing}", "--sign -m ECDSA (9E)");
    println!(
        "ratio sign/list (median): {:.2}x",
        signing.median.as_secs_f64() / floor.median.as_secs_f64()
    );
    Ok(())
}
