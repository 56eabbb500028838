//! `tessera serve`: plug cards into vpcd slots until SIGINT/SIGTERM, then remove them cleanly.

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use card_os::Durability;
use clap::Args;
use virtual_reader::{SlotOptions, SlotState, VpcdSlot};

use crate::cards;

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

    let mut slots = Vec::new();
    for (index, path) in args.cards.iter().enumerate() {
        let card = cards::open(path, durability)?;
        let port = first_port
            .checked_add(index as u16)
            .context("too many cards for the port range")?;
        let addr = format!("{host}:{port}");
        addr.to_socket_addrs()
            .with_context(|| format!("--vpcd {addr} is not a reachable address"))?;
        let handle = VpcdSlot::plug(
            addr.clone(),
            virtual_reader::share(card),
            SlotOptions::default(),
        )
        .with_context(|| format!("cannot plug {} into vpcd at {addr}", path.display()))?;
        slots.push((path.clone(), addr, handle));
    }

    let started = Instant::now();
    let mut announced = vec![false; slots.len()];
    while !stop.load(Ordering::Relaxed) {
        for (i, (path, addr, handle)) in slots.iter().enumerate() {
            let connected = matches!(handle.state(), SlotState::Connected { .. });
            if connected && !announced[i] {
                println!("inserted {} into vpcd at {addr}", path.display());
            } else if !connected && announced[i] {
                println!("{}: vpcd at {addr} went away; reconnecting", path.display());
            }
            announced[i] = connected;
        }
        if args.wait > 0
            && !announced.iter().all(|&a| a)
            && started.elapsed() > Duration::from_secs(args.wait)
            && !slots.is_empty()
            && announced.iter().all(|&a| !a)
        {
            let (_, addr, _) = &slots[0];
            anyhow::bail!(
                "vpcd at {addr} is not reachable after {} s: is pcscd running with the vpcd driver? \
                 (install: scripts/pcsc-install.sh; start: scripts/pcscd.sh start)",
                args.wait
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (path, addr, handle) in slots {
        handle.remove();
        println!("removed {} from vpcd at {addr}", path.display());
    }
    Ok(ExitCode::SUCCESS)
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
