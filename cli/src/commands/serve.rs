//! `tessera serve`: plug cards into vpcd slots until SIGINT/SIGTERM, then remove them cleanly. With
//! `--control ADDR`, a control socket lets tests pull, insert, reset, tear, snapshot, restore, re-clock and
//! trace the cards while they are served (`crate::control`; `tessera ctl` is its client).

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use card_os::Durability;
use clap::Args;
use virtual_reader::{SharedCard, SlotOptions, SlotState, VpcdSlot};

use crate::cards;
use crate::control::protocol::ControlAddr;
use crate::control::served::{Served, ServedCard, Slot};
use crate::control::server;

#[derive(Args)]
pub struct ServeArgs {
    /// vpcd's address for the first card; further cards take the following ports.
    /// Debian's vpcd listens on 35963 and 35964.
    #[arg(long, default_value = "127.0.0.1:35963", value_name = "HOST:PORT")]
    vpcd: String,
    /// Seconds to wait for vpcd at start-up before giving up (0: wait forever). Once connected, a card
    /// reconnects by itself whenever pcscd restarts.
    #[arg(long, default_value_t = 10)]
    wait: u64,
    /// Skip fsync (faster; a machine crash may lose acknowledged state). For benchmarks only.
    #[arg(long)]
    relaxed_durability: bool,
    /// Accept control requests (remove, insert, reset, tear, snapshot, restore, clock, trace; see `tessera
    /// ctl`) on this Unix socket path (created 0600) or loopback address 127.0.0.1:PORT.
    #[arg(long, value_name = "PATH|127.0.0.1:PORT", env = "TESSERA_CONTROL")]
    control: Option<String>,
    /// Card images to plug in, one per vpcd slot.
    #[arg(required = true)]
    cards: Vec<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (host, first_port) = split_host_port(&args.vpcd)?;
    let durability = if args.relaxed_durability {
        Durability::Relaxed
    } else {
        Durability::Full
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }

    let control = args
        .control
        .as_deref()
        .map(ControlAddr::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?;
    refuse_duplicates(&args.cards)?;

    let mut slots = Vec::new();
    for (index, path) in args.cards.iter().enumerate() {
        let card = cards::open(path, durability)?;
        let port = u16::try_from(index)
            .ok()
            .and_then(|i| first_port.checked_add(i))
            .context("too many cards for the port range")?;
        let addr = format!("{host}:{port}");
        addr.to_socket_addrs()
            .with_context(|| format!("--vpcd {addr} is not a reachable address"))?;
        let served = Arc::new(Mutex::new(ServedCard::new(card)));
        let shared: SharedCard = served.clone();
        let handle = VpcdSlot::plug(addr.clone(), shared, SlotOptions::default())
            .with_context(|| format!("cannot plug {} into vpcd at {addr}", path.display()))?;
        slots.push(Slot::new(path.clone(), addr, served, handle));
    }
    let served = Arc::new(Served::new(slots, durability));
    let _listener = match &control {
        Some(addr) => {
            let handler = Arc::clone(&served);
            let listener = server::listen(addr, Arc::new(move |request| handler.handle(request)))?;
            println!("control socket listening on {addr}");
            Some(listener)
        }
        None => None,
    };

    let started = Instant::now();
    let mut announced = vec![false; served.len()];
    let mut ever_connected = false;
    while !stop.load(Ordering::Relaxed) {
        for (i, was) in announced.iter_mut().enumerate() {
            let Some((connected, inserted, path, addr)) = served.with_slot(i, |slot| {
                (
                    matches!(slot.handle.state(), SlotState::Connected { .. }),
                    slot.handle.is_inserted(),
                    slot.path.clone(),
                    slot.vpcd.clone(),
                )
            }) else {
                continue;
            };
            if connected && !*was {
                println!("inserted {} into vpcd at {addr}", path.display());
            } else if !connected && *was {
                if inserted {
                    println!("{}: vpcd at {addr} went away; reconnecting", path.display());
                } else {
                    println!("removed {} from vpcd at {addr} (control)", path.display());
                }
            }
            *was = connected;
            ever_connected |= connected;
        }
        if args.wait > 0 && !ever_connected && started.elapsed() > Duration::from_secs(args.wait) {
            let addr = served
                .with_slot(0, |slot| slot.vpcd.clone())
                .unwrap_or_default();
            anyhow::bail!(
                "vpcd at {addr} is not reachable after {} s: is pcscd running with the vpcd driver? \
                 (install: scripts/pcsc-install.sh; start: scripts/pcscd.sh start)",
                args.wait
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let removed = served.shut_down();
    drop(_listener);
    for (path, addr) in removed {
        println!("removed {} from vpcd at {addr}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// One card image, one slot: two slots on the same file would overwrite each other's state.
fn refuse_duplicates(cards: &[PathBuf]) -> anyhow::Result<()> {
    let mut seen: Vec<(PathBuf, &PathBuf)> = Vec::new();
    for path in cards {
        let canonical = path
            .canonicalize()
            .with_context(|| format!("card image {} cannot be opened", path.display()))?;
        if let Some((_, first)) = seen.iter().find(|(c, _)| *c == canonical) {
            anyhow::bail!(
                "{} and {} are the same card image: one card image, one slot",
                first.display(),
                path.display()
            );
        }
        seen.push((canonical, path));
    }
    Ok(())
}

fn split_host_port(text: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = text
        .rsplit_once(':')
        .with_context(|| format!("--vpcd {text:?} must be HOST:PORT"))?;
    let port = port
        .parse()
        .with_context(|| format!("--vpcd {text:?}: {port:?} is not a port number"))?;
    Ok((host.to_string(), port))
}
