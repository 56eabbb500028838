//! `tessera card new` and `tessera card info`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use card_os::{Card, CardConfig, Clock, Durability, Storage};
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
    /// Which card: `piv` (a PIV token with YubiKey extensions, the management and demo applets) or
    /// `cns` (the Italian CNS operator card OpenSC's itacns driver reads: ISO 7816-4 files, RSA).
    #[arg(long, value_enum, default_value = "piv")]
    profile: Profile,
    /// Make the card deterministic: its random numbers come from this seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Freeze the card's clock at this Unix time (with --seed: byte-identical transcripts).
    #[arg(long, value_name = "UNIX_SECONDS")]
    fixed_clock: Option<u64>,
    /// Persistent memory in bytes.
    #[arg(long, default_value_t = 128 * 1024)]
    capacity: usize,
    /// Answer-to-reset: a preset or hex bytes. Presets: `piv` (the PIV profile's default: T=1,
    /// historical bytes OpenSC reads as PIV), `ykman` (the same without the zero TB1 byte, so ykman's
    /// ATR heuristic takes the card for an NFC-connected token instead of demanding a Yubico USB
    /// reader name), `cns` (the CNS profile's default: a CNS 1.1 card's ATR).
    #[arg(long, value_name = "PRESET|HEX")]
    atr: Option<String>,
    /// PIN: PIV 6 to 8 digits (default: the well-known test PIN 123456); CNS 5 to 8 digits
    /// (default: 12345).
    #[arg(long)]
    pin: Option<String>,
    /// PUK, 8 characters (default: the well-known test PUK 12345678); digits on a CNS.
    #[arg(long)]
    puk: Option<String>,
    /// Wrong PIN tries before the PIN blocks (1..15).
    #[arg(long, default_value_t = 3)]
    pin_retries: u8,
    /// Wrong PUK tries before the PUK blocks (1..15).
    #[arg(long, default_value_t = 3)]
    puk_retries: u8,
    /// PIV management key in hex (default: the well-known 010203…08 ×3).
    #[arg(long, value_name = "HEX")]
    management_key: Option<String>,
    /// Algorithm of the management key.
    #[arg(long, value_enum, default_value = "3des")]
    management_algorithm: MgmtAlgorithm,
    /// Serial number the card reports (default: random, or derived from --seed). PIV only.
    #[arg(long)]
    serial: Option<u32>,
    /// CNS card number (EF_IDCarta, OpenSC's token serial): 16 letters or digits (default: random,
    /// or derived from --seed). CNS only.
    #[arg(long)]
    card_number: Option<String>,
    /// CNS personalization key, 16 bytes in hex (default: the well-known 0102…10). CNS only.
    #[arg(long, value_name = "HEX")]
    personalization_key: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Profile {
    Piv,
    Cns,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MgmtAlgorithm {
    #[value(name = "3des")]
    TripleDes,
    Aes128,
    Aes192,
    Aes256,
}

impl From<MgmtAlgorithm> for piv_applet::ManagementAlgorithm {
    fn from(value: MgmtAlgorithm) -> Self {
        match value {
            MgmtAlgorithm::TripleDes => Self::TripleDes,
            MgmtAlgorithm::Aes128 => Self::Aes128,
            MgmtAlgorithm::Aes192 => Self::Aes192,
            MgmtAlgorithm::Aes256 => Self::Aes256,
        }
    }
}

/// PIV installation parameters from the options; also whether any well-known test secret is in use.
fn piv_params(args: &NewArgs) -> anyhow::Result<(piv_applet::InstallParams, Vec<&'static str>)> {
    let mut params = piv_applet::InstallParams::default();
    let mut well_known = Vec::new();
    match &args.pin {
        Some(pin) => params.pin = card_os::Secret::new(pin.as_bytes()),
        None => well_known.push("PIN 123456"),
    }
    match &args.puk {
        Some(puk) => params.puk = card_os::Secret::new(puk.as_bytes()),
        None => well_known.push("PUK 12345678"),
    }
    params.pin_retries = args.pin_retries;
    params.puk_retries = args.puk_retries;
    params.management_algorithm = args.management_algorithm.into();
    match &args.management_key {
        Some(key) => {
            params.management_key = card_os::Secret::new(
                hex::decode(key.replace(' ', ""))
                    .with_context(|| "--management-key is not hex".to_string())?,
            );
        }
        None if matches!(args.management_algorithm, MgmtAlgorithm::TripleDes) => {
            well_known.push("management key 010203040506070801020304050607080102030405060708");
        }
        None => anyhow::bail!("--management-algorithm other than 3des needs --management-key"),
    }
    if let Some(serial) = args.serial {
        params.serial = serial;
    }
    params.validate().map_err(|why| anyhow::anyhow!(why))?;
    Ok((params, well_known))
}

/// CNS installation parameters from the options; also the well-known test secrets in use.
fn cns_params(args: &NewArgs) -> anyhow::Result<(cns_applet::InstallParams, Vec<&'static str>)> {
    for (given, option) in [
        (args.serial.is_some(), "--serial"),
        (args.management_key.is_some(), "--management-key"),
        (
            !matches!(args.management_algorithm, MgmtAlgorithm::TripleDes),
            "--management-algorithm",
        ),
    ] {
        if given {
            anyhow::bail!("{option} is a PIV option; a CNS card takes --card-number and --personalization-key");
        }
    }
    let mut params = cns_applet::InstallParams::default();
    let mut well_known = Vec::new();
    match &args.pin {
        Some(pin) => params.pin = card_os::Secret::new(pin.as_bytes()),
        None => well_known.push("PIN 12345"),
    }
    match &args.puk {
        Some(puk) => params.puk = card_os::Secret::new(puk.as_bytes()),
        None => well_known.push("PUK 12345678"),
    }
    params.pin_tries = args.pin_retries;
    params.puk_tries = args.puk_retries;
    match &args.personalization_key {
        Some(key) => {
            params.personalization_key = card_os::Secret::new(
                hex::decode(key.replace(' ', ""))
                    .with_context(|| "--personalization-key is not hex".to_string())?,
            );
        }
        None => well_known.push("personalization key 0102030405060708090A0B0C0D0E0F10"),
    }
    params.card_number = args.card_number.clone();
    params.validate().map_err(|why| anyhow::anyhow!(why))?;
    Ok((params, well_known))
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
    match &args.atr {
        Some(atr) => config.atr = atr_bytes(atr)?,
        None if args.profile == Profile::Cns => config.atr = cns_applet::CNS_ATR.to_vec(),
        None => {}
    }
    if args.capacity < 1024 {
        anyhow::bail!(
            "--capacity {} is too small: a card needs at least 1024 bytes",
            args.capacity
        );
    }
    if args.profile == Profile::Piv
        && (args.card_number.is_some() || args.personalization_key.is_some())
    {
        anyhow::bail!(
            "--card-number and --personalization-key are CNS options (add --profile cns)"
        );
    }
    let (installations, well_known, described) = match args.profile {
        Profile::Piv => {
            let (piv, well_known) = piv_params(&args)?;
            let described = vec![
                format!(
                    "  PIV applet A0 00 00 03 08 00 00 10 00 01 00 (selected at power-up), retries {}/{}",
                    args.pin_retries, args.puk_retries
                ),
                "  demo applet F0 74 65 73 73 65 72 61 01 (demo PIN 1234)".to_string(),
            ];
            (cards::installations(&piv), well_known, described)
        }
        Profile::Cns => {
            let (cns, well_known) = cns_params(&args)?;
            let described = vec![format!(
                "  CNS file system (selected at power-up), no key yet (the bureau generates it), retries {}/{}",
                args.pin_retries, args.puk_retries
            )];
            (cards::cns_installations(&cns), well_known, described)
        }
    };
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
    for line in described {
        println!("{line}");
    }
    if !well_known.is_empty() {
        eprintln!(
            "WARNING: this card uses the well-known test {}: for testing only, never for real holders",
            well_known.join(", ")
        );
    }
    if let Some(seed) = args.seed {
        println!("  deterministic: seed {seed}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The ATR a `--atr` value names: a preset, or hex bytes checked to be a well-formed ATR.
fn atr_bytes(text: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = match text {
        "piv" => card_os::DEFAULT_ATR.to_vec(),
        "ykman" => hex::decode("3BDB13008131FE1580F9A0000003080000100051")?,
        "cns" => cns_applet::CNS_ATR.to_vec(),
        hex_text => hex::decode(hex_text.replace(' ', "")).with_context(|| {
            format!("--atr {hex_text:?} is neither a preset (piv, ykman, cns) nor hex")
        })?,
    };
    conformance::parse_atr(&bytes)
        .map_err(|why| anyhow::anyhow!("--atr {text:?} is not a well-formed ATR: {why}"))?;
    Ok(bytes)
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
