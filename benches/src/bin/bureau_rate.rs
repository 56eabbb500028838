//! Cards personalized per second by the staging bureau, against the floor of the same work done bare in
//! the same run: P-256 key generation plus certificate signing by the staging CA (what a card's
//! personalization cannot avoid). Everything else — card images made durable after every state-changing
//! APDU, PIN/PUK/management-key changes, envelopes (PDF + JSON), the registry commit — is the overhead
//! the ratio shows.
//!
//! The bureau makes cards in groups (`--group-size`, default 128) on every core (`--workers`, default one
//! per core); the floor runs on one core. Peak RSS is the process's high-water mark (`VmHWM`), so it
//! covers the bureau's run (the floor holds one key and one certificate at a time).
//!
//! `--keep` leaves the run's directory (its path is printed) instead of deleting it: on a no-journal
//! ext4 (this machine's), inode allocation skips inodes deleted in the last 1–6 minutes
//! (`recently_deleted` in `fs/ext4/ialloc.c`), so a run right after another run's cleanup measures that
//! scan rather than the bureau. Delete the kept directories after the last run.
//!
//! ```text
//! cargo run --release -p benches --bin bureau-rate -- [--cards 40] [--group-size N] [--workers N] [--keep]
//! ```

use std::num::NonZeroUsize;
use std::time::{Instant, SystemTime};

use card_os::crypto::{CardRng, Crypto};
use personalization::batch::{self, BatchOptions};
use personalization::ca::{self, Holder, StagingCa};
use personalization::census::codice_fiscale;

fn cf(n: usize) -> String {
    const SURNAMES: [&str; 6] = ["RSS", "BNC", "VRD", "NRE", "GLL", "CNT"];
    const NAMES: [&str; 4] = ["MRA", "LGU", "GPP", "NNA"];
    let month = "ABCDEHLMPRST".as_bytes()[n % 12] as char;
    let first15 = format!(
        "{}{}{:02}{month}{:02}H501",
        SURNAMES[n % 6],
        NAMES[(n / 6) % 4],
        (n / 24) % 100,
        1 + n % 28
    );
    let check = codice_fiscale::check_character(&first15).unwrap_or('X');
    format!("{first15}{check}")
}

fn census(cards: usize) -> String {
    let mut rows = vec![
        "record,entity,entity_type,entity_name,monitored_workstations,workstations,employees,email_domains,codice_fiscale,surname,name,email,profiles".to_string(),
        format!("entity,058047,comune,Frascati,1,1,{},comune.frascati.rm.it,,,,,", cards + 1),
    ];
    for n in 0..cards {
        let profile = if n == 0 {
            "SINDACO"
        } else if n == 1 {
            "ALS"
        } else {
            "OPERATORE"
        };
        rows.push(format!(
            "user,058047,,,,,,,{},Rossi{n},Mario,mario.rossi{n}@comune.frascati.rm.it,{profile}",
            cf(n)
        ));
    }
    rows.join("\n") + "\n"
}

/// The process's peak resident set, from `/proc/self/status` (`VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Flushes the filesystem holding `dir` (`sync -f`, coreutils' syncfs).
fn quiesce_disk(dir: &std::path::Path) {
    let synced = std::process::Command::new("sync")
        .arg("-f")
        .arg(dir)
        .status()
        .is_ok_and(|status| status.success());
    if !synced {
        eprintln!("note: `sync -f` failed; data other processes left dirty may be counted");
    }
}

fn main() -> Result<(), String> {
    let mut cards = 40usize;
    let mut keep = false;
    // PIV cards: the floor below is P-256 key generation + certificate signing, what a PIV card
    // costs (a CNS card's RSA-2048 generation is a different floor, measured by `rsa-card`).
    let mut options = BatchOptions {
        profile: batch::CardProfile::Piv,
        ..BatchOptions::default()
    };
    let mut args = std::env::args().skip(1);
    let positive = |value: Option<String>, flag: &str| {
        value
            .and_then(|v| v.parse::<NonZeroUsize>().ok())
            .ok_or(format!("{flag} needs a positive number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cards" => cards = positive(args.next(), "--cards")?.get(),
            "--group-size" => options.group_size = positive(args.next(), "--group-size")?,
            "--workers" => options.workers = Some(positive(args.next(), "--workers")?),
            "--keep" => keep = true,
            other => {
                return Err(format!(
                "unknown argument {other:?} (use --cards N, --group-size N, --workers N, --keep)"
            ))
            }
        }
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ca_dir = dir.path().join("ca");
    let authority = StagingCa::init(&ca_dir, SystemTime::now()).map_err(|e| e.to_string())?;

    // Floor: key generation + certificate signing, nothing else.
    let mut crypto = Crypto::new(CardRng::Os);
    let started = Instant::now();
    for n in 0..cards {
        let key = crypto.generate_p256().map_err(|e| e.to_string())?;
        let holder = Holder {
            codice_fiscale: cf(n),
            surname: "Rossi".into(),
            given_name: "Mario".into(),
        };
        authority
            .issue_user(
                &holder,
                &key.public_point(),
                ca::random_serial(),
                SystemTime::now(),
            )
            .map_err(|e| e.to_string())?;
    }
    let floor = cards as f64 / started.elapsed().as_secs_f64();

    // The bureau: census → personalized cards.
    let census_path = dir.path().join("census.csv");
    std::fs::write(&census_path, census(cards)).map_err(|e| e.to_string())?;
    let batch_dir = dir.path().join("batch");
    // Start from a quiet disk: the bureau's barrier (`syncfs`) flushes everything dirty on the
    // filesystem, so data left by whatever ran before (the previous size's kept batch) would be
    // counted as this batch's cost.
    quiesce_disk(dir.path());
    let started = Instant::now();
    let summary = batch::personalize(
        &census_path,
        &ca_dir,
        &batch_dir,
        &options,
        &mut |_, _, _| {},
    )
    .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    if summary.personalized != cards {
        return Err(format!(
            "personalized {} of {cards} cards",
            summary.personalized
        ));
    }
    let rate = cards as f64 / elapsed.as_secs_f64();
    let workers = options
        .workers
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    println!(
        "{cards} cards, groups of {}, {workers} worker(s), {} durable steps",
        options.group_size, summary.durable_steps
    );
    println!("  key generation + certificate signing alone: {floor:>8.1} cards/s (floor)");
    println!("  bureau personalization (full, durable):     {rate:>8.1} cards/s");
    println!(
        "ratio bureau/floor: {:.3} ({:.1} ms per card vs {:.2} ms)",
        rate / floor,
        1000.0 / rate,
        1000.0 / floor
    );
    if let Some(peak) = peak_rss_mib() {
        println!("peak RSS: {peak:.0} MiB");
    }
    if keep {
        println!("kept: {}", dir.keep().display());
    }
    Ok(())
}
