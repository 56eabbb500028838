//! `tessera card new` and `tessera card info`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use card_os::{Card, CardConfig, Clock, Durability, Installation, Storage};
use clap::{Args, Subcommand};

use crate::cards;

#[derive(Subcommand)]
pub enum CardCommand {
    /// Create a new card image.
    New(NewArgs),
    /// Show what a card image holds.
    Info {
        /// The card image.
        file: PathBuf,
    },
}

#[derive(Args)]
pub struct NewArgs {
    /// Where to write the card image (must not exist).
    #[arg(long)]
    out: PathBuf,
    /// Make the card deterministic: its random numbers come from this seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Freeze the card's clock at this Unix time (with --seed: byte-identical transcripts).
    #[arg(long, value_name = "UNIX_SECONDS")]
    fixed_clock: Option<u64>,
    /// Persistent memory in bytes.
    #[arg(long, default_value_t = 128 * 1024)]
    capacity: usize,
    /// Answer-to-reset, in hex (default: a T=1 ATR OpenSC reads as a PIV card).
    #[arg(long, value_name = "HEX")]
    atr: Option<String>,
}

pub fn run(command: CardCommand) -> anyhow::Result<ExitCode> {
    match command {
        CardCommand::New(args) => new(args),
        CardCommand::Info { file } => info(&file),
    }
}

fn new(args: NewArgs) -> anyhow::Result<ExitCode> {
    let mut config = CardConfig {
        capacity: args.capacity,
        seed: args.seed,
        clock: args.fixed_clock.map_or(Clock::System, Clock::Fixed),
        ..CardConfig::default()
    };
    if let Some(atr) = &args.atr {
        config.atr = hex::decode(atr.replace(' ', ""))
            .with_context(|| format!("--atr {atr:?} is not hex"))?;
    }
    if args.capacity < 1024 {
        anyhow::bail!(
            "--capacity {} is too small: a card needs at least 1024 bytes",
            args.capacity
        );
    }
    let installations = [Installation {
        aid: demo_applet::aid(),
        params: Vec::new(),
        default_selected: true,
    }];
    let card = Card::create(
        config,
        &cards::registry(),
        &installations,
        Storage::File {
            path: &args.out,
            durability: Durability::Full,
        },
    )
    .with_context(|| format!("cannot create card {}", args.out.display()))?;
    drop(card);
    println!("created {}", args.out.display());
    println!("  demo applet F0 74 65 73 73 65 72 61 01, PIN 1234 (a well-known test value: for testing only)");
    if let Some(seed) = args.seed {
        println!("  deterministic: seed {seed}");
    }
    Ok(ExitCode::SUCCESS)
}

fn info(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let card = cards::open(file, Durability::Full)?;
    println!("card {}", file.display());
    println!("  ATR          {}", apdu::hex_spaced(card.atr()));
    println!("  free memory  {} bytes", card.free_memory());
    for aid in card.applet_aids() {
        println!("  applet       {}", apdu::hex_spaced(&aid));
    }
    Ok(ExitCode::SUCCESS)
}
