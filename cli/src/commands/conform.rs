//! `tessera conform`: the main job — a card that real software sees, checked the way QA checks it.
//! Through pcscd + vpcd when they run; with the in-process reader otherwise.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use card_os::{Card, CardConfig, Durability, Storage};
use card_transport::{InProcessReader, PcscReader};
use clap::Args;
use virtual_reader::{SlotOptions, VpcdSlot};

use crate::cards;

#[derive(Args)]
pub struct ConformArgs {
    /// The card image to check (default: a fresh card in a temporary directory).
    #[arg(long)]
    card: Option<PathBuf>,
    /// Check the card in this PC/SC reader instead (a physical card, or one `tessera serve` plugged in).
    #[arg(long, conflicts_with = "card")]
    reader: Option<String>,
    /// Do not try pcscd: talk to the card in-process.
    #[arg(long)]
    in_process: bool,
    /// vpcd's address, used to plug the card in when pcscd runs.
    #[arg(long, default_value = "127.0.0.1:35963", value_name = "HOST:PORT")]
    vpcd: String,
    /// Also write the report as JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Also write the report as a self-contained HTML page here (per-suite tables, each failure with its
    /// APDU exchange, the card's ATR and identity, run time).
    #[arg(long)]
    html: Option<PathBuf>,
}

/// Every suite's report, and the card and time they ran on.
type Run = (Vec<conformance::Report>, conformance::RunInfo);

/// Identifies the card, then runs every suite through one transport.
fn run_all(transport: &mut dyn card_transport::Transport) -> Run {
    let started_at = crate::trace::rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    let started = std::time::Instant::now();
    let card = conformance::identify(transport);
    let reports = conformance::all_suites()
        .iter()
        .map(|suite| conformance::run(suite, transport))
        .collect();
    let info = conformance::RunInfo {
        card,
        started: started_at,
        duration: started.elapsed(),
    };
    (reports, info)
}

pub fn run(args: ConformArgs) -> anyhow::Result<ExitCode> {
    let (reports, info) = if let Some(reader) = &args.reader {
        let mut transport = PcscReader::connect(reader)?;
        run_all(&mut transport)
    } else {
        let temp = tempfile::tempdir().context("cannot make a temporary directory")?;
        let card = match &args.card {
            Some(path) => cards::open(path, Durability::Full)?,
            None => fresh_card(&temp.path().join("card.img"))?,
        };
        let shared = virtual_reader::share(card);
        match pcsc_path(&args) {
            Some(reason_not) if !args.in_process => {
                println!("pcscd not usable ({reason_not}): using the in-process reader");
                let mut transport = InProcessReader::new(shared);
                run_all(&mut transport)
            }
            _ if args.in_process => {
                let mut transport = InProcessReader::new(shared);
                run_all(&mut transport)
            }
            _ => {
                let before = readers_with_card();
                let slot = VpcdSlot::plug(args.vpcd.clone(), shared, SlotOptions::default())?;
                let reader = wait_for_new_card(&before).with_context(|| {
                    format!(
                        "the card plugged into vpcd at {} never appeared in pcscd",
                        args.vpcd
                    )
                })?;
                println!("card inserted into {reader} (through pcscd + vpcd)");
                // The connection ends (end of block) before the card is taken out.
                let reports = {
                    let mut transport = PcscReader::connect(&reader)?;
                    run_all(&mut transport)
                };
                slot.remove();
                reports
            }
        }
    };
    for report in &reports {
        print!("{}", report.text());
    }
    println!("{}", conformance::totals(&reports));
    if let Some(path) = &args.junit {
        let xml = conformance::junit(&reports).context("cannot render the JUnit report")?;
        std::fs::write(path, xml).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, conformance::html(&reports, &info))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if reports.iter().all(|r| r.failed() == 0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn fresh_card(path: &std::path::Path) -> anyhow::Result<Card> {
    let installations = cards::installations(&piv_applet::InstallParams::default());
    Ok(Card::create(
        CardConfig::default(),
        &cards::registry(),
        &installations,
        Storage::File {
            path,
            durability: Durability::Full,
        },
    )?)
}

/// `None` if pcscd and vpcd are both reachable; otherwise why not.
fn pcsc_path(args: &ConformArgs) -> Option<String> {
    if args.in_process {
        return Some("--in-process".into());
    }
    if let Err(error) = PcscReader::list() {
        return Some(error.to_string());
    }
    let addr = args.vpcd.parse().ok()?;
    match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
        // vpcd accepted: close at once; pcscd sees a card come and go, which is harmless.
        Ok(_) => None,
        Err(error) => Some(format!("vpcd at {} does not answer: {error}", args.vpcd)),
    }
}

fn readers_with_card() -> Vec<String> {
    PcscReader::list()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| PcscReader::card_present(r).unwrap_or(false))
        .collect()
}

fn wait_for_new_card(before: &[String]) -> anyhow::Result<String> {
    for _ in 0..100 {
        if let Some(reader) = readers_with_card()
            .into_iter()
            .find(|r| !before.contains(r))
        {
            return Ok(reader);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!("no new card within 10 s")
}
