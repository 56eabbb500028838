//! `tessera lab serve`: the login lab in front of a batch (see `lab/src/server.rs` for the design).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use login_lab::{Lab, LabConfig};

use super::bureau::{smtp_config, BatchArg};

#[derive(Subcommand)]
pub enum LabCommand {
    /// Serve the login lab over HTTPS until interrupted: the workstation door (--listen) and the
    /// card door (--card-listen).
    Serve(ServeArgs),
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    batch: BatchArg,
    /// The staging CA directory (`tessera ca init`).
    #[arg(long)]
    ca: PathBuf,
    /// The workstation door: every page, after the workstation certificate.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// The card door, where the card signs the login (default: --listen's port + 1).
    #[arg(long)]
    card_listen: Option<SocketAddr>,
    /// A fixed clock (RFC 3339) for expiry tests.
    #[arg(long)]
    clock: Option<String>,
}

/// The card door's default: the next port, or any free one when the workstation door takes any.
pub fn card_door_of(listen: SocketAddr) -> SocketAddr {
    let port = match listen.port() {
        0 => 0,
        port => port.saturating_add(1),
    };
    SocketAddr::new(listen.ip(), port)
}

pub fn parse_clock(text: &str) -> anyhow::Result<std::time::SystemTime> {
    let at = chrono::DateTime::parse_from_rfc3339(text).with_context(|| {
        format!("--clock {text:?} is not an RFC 3339 time like 2031-01-01T00:00:00Z")
    })?;
    let seconds = u64::try_from(at.timestamp())
        .with_context(|| format!("--clock {text:?} is before 1970"))?;
    Ok(std::time::UNIX_EPOCH + Duration::from_secs(seconds))
}

pub fn run(command: LabCommand) -> anyhow::Result<ExitCode> {
    match command {
        LabCommand::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    let mut config = LabConfig::new(args.batch.batch.clone(), args.ca.clone());
    config.master_key = args.batch.master_key.clone();
    config.smtp = smtp_config(&args.batch)?;
    config.listen = args.listen;
    config.card_listen = args
        .card_listen
        .unwrap_or_else(|| card_door_of(args.listen));
    config.clock = args.clock.as_deref().map(parse_clock).transpose()?;
    let lab = Lab::start(config)?;
    println!(
        "login lab: {} (workstation door {}, card door {}); trust {}",
        lab.url(),
        lab.workstation_addr(),
        lab.card_addr(),
        lab.ca_file().display()
    );
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    lab.shutdown();
    Ok(ExitCode::SUCCESS)
}
