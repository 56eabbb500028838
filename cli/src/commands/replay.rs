//! `tessera replay --card CARD TRACE`: plays a trace recorded by `tessera serve` (`ctl trace`) against a
//! copy of the card image it started from and checks every response byte for byte. Exit 0: all match;
//! 1: the first difference is reported with its line number; 2: the trace or the card cannot be used.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use card_os::{Card, CardSnapshot, Durability, FaultPlan};
use clap::Args;
use zeroize::Zeroizing;

use crate::cards;
use crate::trace::{self, CommandPart, Event, Trace};

#[derive(Args)]
pub struct ReplayArgs {
    /// The card image the trace started from (a golden image made with `card new --seed N`). It is not
    /// changed: replay works on a copy.
    #[arg(long)]
    card: PathBuf,
    /// The value of a redacted placeholder `<secret:N>`: `N=HEX` (the command's data bytes), or
    /// `N=pin:DIGITS` for a PIV PIN or PUK (ASCII padded with FF to 8 bytes). Repeat for each.
    #[arg(long = "secret", value_name = "N=VALUE")]
    secrets: Vec<String>,
    /// A file of `N=VALUE` lines (as for --secret), so secrets stay off the command line.
    #[arg(long, value_name = "FILE")]
    secrets_file: Option<PathBuf>,
    /// The trace to replay.
    trace: PathBuf,
}

/// The 8-byte PIV PIN block: ASCII digits padded with FF.
const PIV_PIN_BLOCK: usize = 8;

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.trace)
        .with_context(|| format!("cannot read trace {}", args.trace.display()))?;
    let trace =
        Trace::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.trace.display()))?;
    let secrets = secrets(&args)?;

    let temp = tempfile::tempdir().context("cannot make a temporary directory")?;
    let copy = temp.path().join("replay.img");
    std::fs::copy(&args.card, &copy)
        .with_context(|| format!("cannot copy card image {}", args.card.display()))?;
    let mut card = cards::open(&copy, Durability::Relaxed)
        .with_context(|| format!("card image {}", args.card.display()))?;
    check_header(&trace, &card, &args)?;
    card.set_clock(trace.header.clock)
        .map_err(|e| anyhow::anyhow!("cannot set the card's clock: {e}"))?;
    if !trace.header.powered {
        card.power_off();
    }

    let mut snapshots: BTreeMap<String, CardSnapshot> = BTreeMap::new();
    let mut commands = 0usize;
    let mut pending: Option<(usize, Option<Vec<u8>>)> = None;
    for (line, event) in &trace.events {
        let line = *line;
        if pending.is_some() && !matches!(event, Event::Response(_)) {
            anyhow::bail!(
                "{}: line {line}: a command without its response line",
                args.trace.display()
            );
        }
        match event {
            Event::PowerOn => card.power_on(),
            Event::PowerOff => card.power_off(),
            Event::Reset => card.reset(),
            Event::Tear { at_write, torn } => card.arm_power_cut(FaultPlan {
                at_write: *at_write,
                torn: *torn,
            }),
            Event::Clock(clock) => card
                .set_clock(*clock)
                .map_err(|e| anyhow::anyhow!("line {line}: cannot set the clock: {e}"))?,
            Event::Snapshot(name) => {
                snapshots.insert(name.clone(), card.snapshot());
            }
            Event::Restore(name) => {
                let copy = snapshots.get(name).with_context(|| {
                    format!("line {line}: restore of snapshot {name:?}, which the trace never took")
                })?;
                card.restore(copy)
                    .map_err(|e| anyhow::anyhow!("line {line}: restore failed: {e}"))?;
            }
            Event::Command(parts) => {
                let bytes = command_bytes(parts, &secrets)
                    .map_err(|e| anyhow::anyhow!("{}: line {line}: {e}", args.trace.display()))?;
                pending = Some((line, card.transmit(&bytes).ok()));
                commands += 1;
            }
            Event::Response(expected) => {
                let Some((command_line, got)) = pending.take() else {
                    anyhow::bail!(
                        "{}: line {line}: a response without a command",
                        args.trace.display()
                    );
                };
                if got != *expected {
                    println!(
                        "{}: line {line} (command on line {command_line}): the response differs{}",
                        args.trace.display(),
                        difference(expected.as_deref(), got.as_deref())
                    );
                    println!("  expected {}", shown(expected.as_deref()));
                    println!("  got      {}", shown(got.as_deref()));
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    }
    if pending.is_some() {
        anyhow::bail!(
            "{}: the trace ends after a command, before its response",
            args.trace.display()
        );
    }
    println!(
        "replayed {commands} command(s) from {}: every response matches",
        args.trace.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The card must be the one the trace started from, and deterministic.
fn check_header(trace: &Trace, card: &Card, args: &ReplayArgs) -> anyhow::Result<()> {
    if card.atr() != trace.header.atr {
        anyhow::bail!(
            "{} has ATR {}, the trace's card had {}: give the card image the trace was recorded from",
            args.card.display(),
            apdu::hex_spaced(card.atr()),
            apdu::hex_spaced(&trace.header.atr)
        );
    }
    let Some((seed, position)) = trace.header.random else {
        anyhow::bail!(
            "the trace was recorded from a card that draws random numbers from the OS, so its answers \
             cannot be reproduced: record golden traces from a card made with `card new --seed N`"
        );
    };
    match card.random_state() {
        Some(state) if state == (seed, position) => Ok(()),
        Some((card_seed, card_position)) => anyhow::bail!(
            "{} is at seed {card_seed} position {card_position}, the trace started at seed {seed} \
             position {position}: give the card image as it was when the trace started",
            args.card.display()
        ),
        None => anyhow::bail!(
            "{} draws random numbers from the OS; the trace's card was seeded ({seed})",
            args.card.display()
        ),
    }
}

/// Placeholder number → value, from --secret and --secrets-file.
fn secrets(args: &ReplayArgs) -> anyhow::Result<BTreeMap<usize, Zeroizing<Vec<u8>>>> {
    let mut entries: Vec<(String, Zeroizing<String>)> = args
        .secrets
        .iter()
        .map(|s| ("--secret".to_owned(), Zeroizing::new(s.clone())))
        .collect();
    if let Some(path) = &args.secrets_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read secrets file {}", path.display()))?,
        );
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                entries.push((
                    format!("{} line {}", path.display(), n + 1),
                    Zeroizing::new(line.to_owned()),
                ));
            }
        }
    }
    let mut secrets = BTreeMap::new();
    for (origin, entry) in entries {
        let (number, value) = entry
            .split_once('=')
            .with_context(|| format!("{origin}: a secret is N=HEX or N=pin:DIGITS"))?;
        let number: usize = number
            .trim()
            .parse()
            .with_context(|| format!("{origin}: {number:?} is not a placeholder number"))?;
        let bytes = match value.trim().strip_prefix("pin:") {
            Some(pin) => {
                if pin.is_empty() || pin.len() > PIV_PIN_BLOCK {
                    anyhow::bail!("{origin}: a pin: value has 1 to {PIV_PIN_BLOCK} characters");
                }
                let mut block = pin.as_bytes().to_vec();
                block.resize(PIV_PIN_BLOCK, 0xFF);
                block
            }
            None => trace::hex_bytes(value).map_err(|_| {
                anyhow::anyhow!("{origin}: secret {number} is not hex (or pin:DIGITS)")
            })?,
        };
        secrets.insert(number, Zeroizing::new(bytes));
    }
    Ok(secrets)
}

fn command_bytes(
    parts: &[CommandPart],
    secrets: &BTreeMap<usize, Zeroizing<Vec<u8>>>,
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    for part in parts {
        match part {
            CommandPart::Bytes(b) => bytes.extend_from_slice(b),
            CommandPart::Secret(n) => {
                let value = secrets.get(n).ok_or_else(|| {
                    format!(
                        "the command needs the value of <secret:{n}>: give it as --secret {n}=HEX"
                    )
                })?;
                bytes.extend_from_slice(value);
            }
        }
    }
    Ok(bytes)
}

fn shown(bytes: Option<&[u8]>) -> String {
    bytes.map_or_else(|| "no answer (mute)".to_owned(), apdu::hex_spaced)
}

/// Where two responses first differ, as text.
fn difference(expected: Option<&[u8]>, got: Option<&[u8]>) -> String {
    match (expected, got) {
        (Some(e), Some(g)) => {
            let at = e
                .iter()
                .zip(g)
                .position(|(a, b)| a != b)
                .unwrap_or(e.len().min(g.len()));
            format!(
                " at byte {at} (of {} expected, {} received)",
                e.len(),
                g.len()
            )
        }
        _ => String::new(),
    }
}
