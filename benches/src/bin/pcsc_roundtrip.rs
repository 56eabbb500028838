//! Per-APDU round trip through PC/SC → pcscd → vpcd → card and back, for a tessera demo card and, in
//! the same run, for a do-nothing card that answers `90 00` to everything (the floor of the path).
//! Prints both and their ratio.
//!
//! ```text
//! cargo run --release -p benches --bin pcsc-roundtrip -- [--n 2000]
//! ```
//! It starts a private pcscd (the `virtual_reader::testing::Pcscd` guard); stop any other pcscd first.

use std::time::{Duration, Instant};

use benches::{demo_card, Stats, INCREMENT, READ_COUNTER, SELECT_DEMO};
use card_os::Durability;
use virtual_reader::testing::{wait_for, EchoCard, Pcscd};
use virtual_reader::{share, PcscReader, SharedCard, SlotOptions, Transport, VpcdSlot};

const WARM_UP: usize = 50;

fn measure(reader: &str, apdu: &[u8], n: usize) -> Result<Stats, String> {
    let mut transport = PcscReader::connect(reader).map_err(|e| e.to_string())?;
    transport.transmit(SELECT_DEMO).map_err(|e| e.to_string())?;
    let mut once = || -> Result<Duration, String> {
        let started = Instant::now();
        let response = transport.transmit(apdu).map_err(|e| e.to_string())?;
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
    let floor = plug(&pcscd, 0, share(EchoCard::default()))?;
    let card = plug(&pcscd, 1, share(demo_card(Some((&path, Durability::Full)))))?;
    let (floor_reader, card_reader) = (pcscd.reader_name(0), pcscd.reader_name(1));

    // Interleave the runs so both see the same machine load.
    let mut rows = Vec::new();
    for (label, reader, apdu) in [
        ("do-nothing card (floor)", floor_reader, READ_COUNTER),
        ("tessera: read counter", card_reader, READ_COUNTER),
        ("do-nothing card (floor)", floor_reader, INCREMENT),
        ("tessera: increment (fsync)", card_reader, INCREMENT),
    ] {
        rows.push((label, measure(reader, apdu, n)?));
    }
    println!("per-APDU round trip through PC/SC + pcscd + vpcd, {n} APDUs each");
    for (label, stats) in &rows {
        println!("  {label:<28} {stats}");
    }
    let ratio = |a: &Stats, b: &Stats| a.median.as_secs_f64() / b.median.as_secs_f64();
    println!(
        "ratio tessera/floor (median): read {:.2}x, increment {:.2}x",
        ratio(&rows[1].1, &rows[0].1),
        ratio(&rows[3].1, &rows[2].1)
    );
    floor.remove();
    card.remove();
    Ok(())
}
