//! `tessera ctl`: the thin client of `tessera serve --control`. Each subcommand is one request; the
//! answer is printed (`--json`: as the server sent it). Exit 0 when done, 1 when serve refused (its one
//! sentence on stderr), 2 when serve cannot be reached.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::control::protocol::{ControlAddr, Request, Response, SlotInfo};

/// How long to wait for serve's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Args)]
pub struct CtlArgs {
    /// serve's control socket: the path or 127.0.0.1:PORT given to `serve --control`.
    #[arg(long, env = "TESSERA_CONTROL", value_name = "PATH|127.0.0.1:PORT")]
    control: String,
    /// Print serve's answer as the JSON line it sent.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Slots, their card files, and whether each card is inserted, connected, powered.
    List,
    /// Take the card out of the reader (pcscd sees a removal).
    Remove { slot: usize },
    /// Put the slot's card back, or another card image instead.
    Insert { slot: usize, card: Option<PathBuf> },
    /// Warm reset: the card's volatile state (selection, PIN verified) is cleared.
    Reset { slot: usize },
    /// Cut the card's power at the N-th persistent write of its next command: the host gets no answer
    /// and the card recovers when it is powered up again.
    Tear {
        slot: usize,
        #[arg(long, value_name = "N")]
        at_write: u32,
        /// Leave that write half-done instead of cutting before it.
        #[arg(long)]
        torn: bool,
    },
    /// Keep a copy of the card's durable state under NAME (in serve's memory).
    Snapshot { slot: usize, name: String },
    /// Bring snapshot NAME back (the card is power-cycled into it).
    Restore { slot: usize, name: String },
    /// Fix the card's clock (certificate-expiry tests), or let it follow the host's clock again.
    #[command(group = clap::ArgGroup::new("time").required(true).args(["set", "system"]))]
    Clock {
        slot: usize,
        /// The time, RFC 3339 (e.g. 2030-01-01T00:00:00Z).
        #[arg(long, value_name = "RFC3339")]
        set: Option<String>,
        #[arg(long)]
        system: bool,
    },
    /// Start or stop an APDU trace (PIN-bearing data redacted) that `tessera replay` checks.
    #[command(group = clap::ArgGroup::new("action").required(true).args(["start", "stop"]))]
    Trace {
        slot: usize,
        /// Write the trace here (0600; an existing file is replaced).
        #[arg(long, value_name = "FILE")]
        start: Option<PathBuf>,
        #[arg(long)]
        stop: bool,
    },
}

pub fn run(args: CtlArgs) -> anyhow::Result<ExitCode> {
    let addr = ControlAddr::parse(&args.control).map_err(|e| anyhow::anyhow!(e))?;
    let request = request(args.verb)?;
    let line = exchange(&addr, &request)?;
    let response: Response = serde_json::from_str(&line).with_context(|| {
        format!("serve at {addr} answered something that is not a control answer: {line:?}")
    })?;
    if args.json {
        println!("{line}");
    } else if let Some(slots) = &response.slots {
        print_slots(slots);
    } else if let Some(message) = &response.message {
        println!("{message}");
    }
    if response.ok {
        Ok(ExitCode::SUCCESS)
    } else {
        if !args.json {
            eprintln!(
                "tessera ctl: {}",
                response
                    .error
                    .as_deref()
                    .unwrap_or("refused (no reason given)")
            );
        }
        Ok(ExitCode::FAILURE)
    }
}

/// The request for a verb; paths become absolute, since serve has a working directory of its own.
fn request(verb: Verb) -> anyhow::Result<Request> {
    Ok(match verb {
        Verb::List => Request::List,
        Verb::Remove { slot } => Request::Remove { slot },
        Verb::Insert { slot, card } => Request::Insert {
            slot,
            card: card.map(|c| absolute(&c)).transpose()?,
        },
        Verb::Reset { slot } => Request::Reset { slot },
        Verb::Tear {
            slot,
            at_write,
            torn,
        } => Request::Tear {
            slot,
            at_write,
            torn,
        },
        Verb::Snapshot { slot, name } => Request::Snapshot { slot, name },
        Verb::Restore { slot, name } => Request::Restore { slot, name },
        Verb::Clock { slot, set, .. } => Request::Clock { slot, set },
        Verb::Trace {
            slot,
            start: Some(file),
            ..
        } => Request::TraceStart {
            slot,
            file: absolute(&file)?,
        },
        Verb::Trace { slot, .. } => Request::TraceStop { slot },
    })
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot make {} absolute", path.display()))
}

/// Sends one request line and reads the answer line.
fn exchange(addr: &ControlAddr, request: &Request) -> anyhow::Result<String> {
    let line = serde_json::to_string(request).context("cannot encode the request")?;
    let unreachable = || {
        format!("cannot reach tessera serve's control socket at {addr} (is `tessera serve --control {addr}` running?)")
    };
    let answer = match addr {
        ControlAddr::Unix(path) => {
            let stream = UnixStream::connect(path).with_context(unreachable)?;
            stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
            talk(&stream, &mut &stream, &line)
        }
        ControlAddr::Tcp(tcp) => {
            let stream = TcpStream::connect_timeout(tcp, Duration::from_secs(5))
                .with_context(unreachable)?;
            stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
            talk(&stream, &mut &stream, &line)
        }
    };
    answer.with_context(|| format!("no answer from tessera serve at {addr}"))
}

fn talk(reader: impl std::io::Read, writer: &mut impl Write, line: &str) -> anyhow::Result<String> {
    writeln!(writer, "{line}")?;
    writer.flush()?;
    let mut answer = String::new();
    BufReader::new(reader).read_line(&mut answer)?;
    if answer.is_empty() {
        anyhow::bail!("the connection closed without an answer");
    }
    Ok(answer.trim_end().to_owned())
}

fn print_slots(slots: &[SlotInfo]) {
    for s in slots {
        let state = match (s.inserted, s.connected, s.powered) {
            (false, _, _) => "removed",
            (true, false, _) => "inserted, waiting for vpcd",
            (true, true, false) => "in the reader",
            (true, true, true) => "in the reader, powered",
        };
        println!(
            "slot {}: {} (vpcd {}) — {state}",
            s.slot,
            s.card.display(),
            s.vpcd
        );
        println!("  clock {}", s.clock);
        if let Some(trace) = &s.tracing {
            println!("  tracing into {}", trace.display());
        }
        if !s.snapshots.is_empty() {
            println!("  snapshots {}", s.snapshots.join(", "));
        }
        if let Some(tear) = &s.tear {
            println!("  tear: {tear}");
        }
    }
}
