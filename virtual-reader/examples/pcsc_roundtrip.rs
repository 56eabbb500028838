//! Round-trip time of one APDU through PC/SC → pcscd → vpcd → card and back, with the
//! do-nothing `EchoCard`: the floor under every real card on this path.
//!
//! ```text
//! cargo run --release -p virtual-reader --example pcsc_roundtrip -- [--n 2000] [--system]
//! ```
//! By default it starts a private pcscd (the `testing::Pcscd` guard). `--system` uses a
//! pcscd that is already running with Debian's vpcd config (scripts/pcscd.sh start).
//! `RUST_LOG=virtual_reader=debug` shows the slot's log.

use std::time::{Duration, Instant};

use virtual_reader::testing::{wait_for, EchoCard, Pcscd};
use virtual_reader::{share, PcscReader, SlotOptions, Transport, TransportError, VpcdSlot};

/// SELECT by AID (PIV's), a typical short case-4 command.
const SELECT_PIV: [u8; 11] = [
    0x00, 0xA4, 0x04, 0x00, 0x06, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00,
];
const WARM_UP: usize = 50;

/// Per-APDU round-trip figures.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub n: usize,
    pub min: Duration,
    pub median: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Stats {
    fn from_samples(mut samples: Vec<Duration>) -> Option<Self> {
        samples.sort_unstable();
        let n = samples.len();
        let at = |q: f64| samples[((n - 1) as f64 * q).round() as usize];
        Some(Self {
            n,
            min: *samples.first()?,
            median: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: *samples.last()?,
            mean: samples.iter().sum::<Duration>() / u32::try_from(n).ok()?,
        })
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} median={:?} p90={:?} p99={:?} min={:?} max={:?} mean={:?}",
            self.n, self.median, self.p90, self.p99, self.min, self.max, self.mean
        )
    }
}

/// Sends `apdu` `n` times (after a warm-up) to the card in `reader_name` and times each
/// round trip. Every response must end in 90 00.
pub fn measure_roundtrip(reader_name: &str, apdu: &[u8], n: usize) -> Result<Stats, String> {
    let mut reader = PcscReader::connect(reader_name).map_err(|e| e.to_string())?;
    let once = |reader: &mut PcscReader| -> Result<Duration, TransportError> {
        let started = Instant::now();
        let response = reader.transmit(apdu)?;
        let elapsed = started.elapsed();
        if !response.ends_with(&[0x90, 0x00]) {
            return Err(TransportError::NoStatusWord {
                len: response.len(),
            });
        }
        Ok(elapsed)
    };
    for _ in 0..WARM_UP {
        once(&mut reader).map_err(|e| e.to_string())?;
    }
    let samples = (0..n)
        .map(|_| once(&mut reader))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Stats::from_samples(samples).ok_or_else(|| "n must be at least 1".to_owned())
}

struct Args {
    n: usize,
    system: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        n: 2000,
        system: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--n" => {
                args.n = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--n needs a number")?;
            }
            "--system" => args.system = true,
            other => return Err(format!("unknown argument {other:?} (use --n N, --system)")),
        }
    }
    Ok(args)
}

fn main() -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = parse_args()?;
    let (_pcscd, addr, reader) = if args.system {
        (
            None,
            "127.0.0.1:35963".parse().map_err(|e| format!("{e}"))?,
            "Virtual PCD 00 00",
        )
    } else {
        let pcscd = Pcscd::start().map_err(|e| e.to_string())?;
        let (addr, reader) = (pcscd.vpcd_addr(0), pcscd.reader_name(0));
        (Some(pcscd), addr, reader)
    };
    let plugged = Instant::now();
    let slot = VpcdSlot::plug(addr, share(EchoCard::default()), SlotOptions::default())
        .map_err(|e| e.to_string())?;
    let shown = wait_for(
        || PcscReader::card_present(reader).unwrap_or(false),
        Duration::from_secs(10),
    );
    if !shown {
        return Err(format!(
            "card not visible in {reader:?} after 10 s; slot {:?}",
            slot.state()
        ));
    }
    println!("card visible in {reader:?} after {:?}", plugged.elapsed());
    let stats = measure_roundtrip(reader, &SELECT_PIV, args.n)?;
    println!(
        "EchoCard via PC/SC, SELECT ({} bytes): {stats}",
        SELECT_PIV.len()
    );
    slot.remove();
    Ok(())
}
