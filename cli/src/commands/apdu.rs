//! `tessera apdu`: send APDUs to a card file in-process, or to a PC/SC reader.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use apdu::Response;
use card_os::Durability;
use card_transport::{InProcessReader, PcscReader, Transport};
use clap::Args;

use crate::cards;

#[derive(Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["card", "reader"]))]
pub struct ApduArgs {
    /// A card image to talk to in-process (no pcscd needed). Its state changes are saved.
    #[arg(long)]
    card: Option<PathBuf>,
    /// A PC/SC reader to talk to instead (see `tessera readers`).
    #[arg(long)]
    reader: Option<String>,
    /// Print only the response bytes in hex, one line per APDU (for scripts).
    #[arg(long)]
    raw: bool,
    /// Skip fsync (faster; a machine crash may lose acknowledged state). For benchmarks only.
    #[arg(long)]
    relaxed_durability: bool,
    /// APDUs in hex (spaces allowed inside one argument). Without any, one APDU per line is read from
    /// standard input; blank lines and lines starting with `#` are skipped.
    apdus: Vec<String>,
}

pub fn run(args: ApduArgs) -> anyhow::Result<ExitCode> {
    let mut transport: Box<dyn Transport> = match (&args.card, &args.reader) {
        (Some(path), _) => {
            let durability = if args.relaxed_durability {
                Durability::Relaxed
            } else {
                Durability::Full
            };
            let card = cards::open(path, durability)?;
            Box::new(InProcessReader::new(virtual_reader::share(card)))
        }
        (None, Some(reader)) => Box::new(PcscReader::connect(reader)?),
        (None, None) => anyhow::bail!("give --card FILE or --reader NAME"),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.apdus.is_empty() {
        for (index, line) in std::io::stdin().lock().lines().enumerate() {
            let line = line.context("cannot read standard input")?;
            let text = line.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let apdu = parse_hex(text).with_context(|| format!("line {}", index + 1))?;
            exchange(transport.as_mut(), &apdu, args.raw, &mut out)?;
        }
    } else {
        for (index, text) in args.apdus.iter().enumerate() {
            let apdu = parse_hex(text).with_context(|| format!("APDU argument {}", index + 1))?;
            exchange(transport.as_mut(), &apdu, args.raw, &mut out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = hex::decode(&clean).with_context(|| format!("{text:?} is not an APDU in hex"))?;
    if bytes.len() < 4 {
        anyhow::bail!(
            "{text:?} is {} byte(s); an APDU has at least 4",
            bytes.len()
        );
    }
    Ok(bytes)
}

fn exchange(
    transport: &mut dyn Transport,
    apdu: &[u8],
    raw: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let bytes = transport.transmit_raw(apdu)?;
    if raw {
        writeln!(out, "{}", hex::encode_upper(&bytes))?;
    } else {
        let response = Response::from_bytes(&bytes)?;
        writeln!(out, "> {}", apdu::hex_spaced(apdu))?;
        if response.data.is_empty() {
            writeln!(out, "< {}", response.sw)?;
        } else {
            writeln!(
                out,
                "< {}  {}",
                apdu::hex_spaced(&response.data),
                response.sw
            )?;
        }
    }
    // Each answer is flushed as it comes: a script reading us sees what the card acknowledged.
    out.flush()?;
    Ok(())
}
