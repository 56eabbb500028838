//! `tessera demo`: the whole staging world on one machine, then a login. A staging CA, the sample
//! census personalized (CNS cards, the card the seeds describe), Frascati's parcel delivered to its
//! mayor, a workstation certificate issued, the login lab started, and the seeds' flow performed by
//! in-process clients whose TLS signatures the cards make: the mayor logs in with the card, registers
//! an ALS's card from the security console, and the ALS — envelope half + e-mail half — logs in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use card_os::Durability;
use card_transport::InProcessReader;
use clap::Args;
use login_lab::client::{Identity, LabClient, Reply};
use login_lab::{Lab, LabConfig};
use personalization::batch::{self, BatchOptions};
use personalization::ca::StagingCa;
use personalization::lifecycle::Batch;
use personalization::workstation;

use crate::cards;

/// The sample census: the seeds' Prefettura di Roma, Frascati and Genzano di Roma.
const SAMPLE_CENSUS: &str = include_str!("../../../examples/census.csv");
// The entity the demo logs into, its mayor and one of its ALS (from the sample census).
use login_lab::staging::{self, SAMPLE_ALS as ALS, SAMPLE_ENTITY as ENTITY, SAMPLE_MAYOR as MAYOR};

#[derive(Args)]
pub struct DemoArgs {
    /// Where the CA and the batch go (must not exist or be empty); default: a new directory under
    /// the system's temporary directory, kept and printed.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The lab's workstation door (the card door is the next port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Log in, print the result and exit instead of keeping the lab running.
    #[arg(long)]
    once: bool,
}

fn step(text: &str) {
    println!("• {text}");
}

fn demo_dir(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match arg {
        Some(dir) => dir,
        None => tempfile::Builder::new()
            .prefix("tessera-demo-")
            .tempdir()
            .context("cannot make a temporary directory")?
            .keep(),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        anyhow::bail!(
            "--dir {} is not empty: give a new directory (the demo makes a fresh CA and batch)",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn card_identity(batch_dir: &Path, codice_fiscale: &str) -> anyhow::Result<(Identity, String)> {
    let registry = personalization::registry::Registry::open_existing(batch_dir)?;
    let card = registry
        .current_card(codice_fiscale)?
        .with_context(|| format!("{codice_fiscale} has no card"))?;
    let joined = login_lab::holder::join(batch_dir, &card.card_number)?;
    let image = cards::open(&batch_dir.join(&card.card_file), Durability::Relaxed)?;
    let reader = InProcessReader::new(card_transport::share(image));
    let identity = Identity::from_card(Box::new(reader), &joined.pin)
        .with_context(|| format!("card {} refused its joined PIN", card.card_number))?;
    Ok((identity, card.card_number))
}

fn expect_ok(reply: &Reply, what: &str) -> anyhow::Result<serde_json::Value> {
    let body = reply.json().unwrap_or(serde_json::Value::Null);
    if reply.status != 200 {
        anyhow::bail!(
            "{what}: the lab answered {} ({})",
            reply.status,
            body["reason"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(body)
}

fn logged_in(whoami: &serde_json::Value) -> String {
    let profiles: Vec<&str> = whoami["profiles"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p.as_str()).collect())
        .unwrap_or_default();
    format!(
        "logged in as {} ({}), {} of {} {}, card {}, from {}",
        whoami["name"].as_str().unwrap_or("?"),
        whoami["codice_fiscale"].as_str().unwrap_or("?"),
        profiles.join("+"),
        whoami["entity"].as_str().unwrap_or("?"),
        whoami["entity_name"].as_str().unwrap_or(""),
        whoami["card_number"].as_str().unwrap_or("?"),
        whoami["workstation"].as_str().unwrap_or("?"),
    )
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = demo_dir(args.dir)?;
    let ca_dir = dir.join("ca");
    let batch_dir = dir.join("batch");
    let census = dir.join("census.csv");
    println!("tessera demo in {}", dir.display());

    std::fs::write(&census, SAMPLE_CENSUS).context("cannot write the sample census")?;
    let staged = staging::stage(
        &census,
        &ca_dir,
        &batch_dir,
        &BatchOptions::default(),
        ENTITY,
        MAYOR,
    )?;
    step(&format!("staging CA made in {}", ca_dir.display()));
    step(&format!(
        "sample census personalized: {} CNS cards (RSA-2048 keys generated on the cards) in {}",
        staged.personalized,
        batch_dir.display()
    ));
    step(&format!(
        "{} cards of {ENTITY} delivered to the mayor; the mayor's card is active and its second halves are in {}",
        staged.delivered.len(),
        batch_dir.join("outbox").display()
    ));
    let name = staged.workstation;
    let lifecycle = Batch::open(&batch_dir, None, SystemTime::now())?;
    let (pkcs12, password) = workstation::bundle(&lifecycle.registry, &lifecycle.master, &name)?;
    let p12_path = dir.join(format!("{name}.p12"));
    batch::write_private(&p12_path, &pkcs12)?;
    let password_path = dir.join(format!("{name}.password"));
    batch::write_private(&password_path, password.as_bytes())?;
    step(&format!(
        "workstation certificate {name} issued: {} (password in {})",
        p12_path.display(),
        password_path.display()
    ));
    drop(lifecycle);

    let mut config = LabConfig::new(batch_dir.clone(), ca_dir.clone());
    config.listen = args.listen;
    config.card_listen = super::lab::card_door_of(args.listen);
    let lab = Lab::start(config)?;
    step(&format!(
        "login lab listening: {} (card door {}), trusting {}",
        lab.url(),
        lab.card_addr(),
        lab.ca_file().display()
    ));

    let ca_der = StagingCa::open(&ca_dir)?.certificate_der();
    let workstation_identity = Identity::from_pkcs12(&pkcs12, &password)?;
    step("in-process login (no browser is driven by the demo yet): the card signs the TLS handshake through APDUs");
    let (mayor_card, _) = card_identity(&batch_dir, MAYOR)?;
    let mut mayor = LabClient::new(
        lab.workstation_addr(),
        ca_der.clone(),
        workstation_identity.clone(),
    );
    let whoami = expect_ok(
        &mayor.login_with_card(&mayor_card)?,
        "the mayor's card login",
    )?;
    println!("  {}", logged_in(&whoami));

    let registry = personalization::registry::Registry::open_existing(&batch_dir)?;
    let als_card = registry
        .current_card(ALS)?
        .context("the ALS has no card")?
        .card_number;
    drop(registry);
    expect_ok(
        &mayor.post("/api/console/register", &[("card", &als_card)])?,
        "registering the ALS's card",
    )?;
    step(&format!(
        "the mayor registered the delivery of card {als_card} from the security console: its second halves were e-mailed"
    ));
    let (als_identity, _) = card_identity(&batch_dir, ALS)?;
    let mut als = LabClient::new(lab.workstation_addr(), ca_der, workstation_identity);
    let whoami = expect_ok(&als.login_with_card(&als_identity)?, "the ALS's card login")?;
    step("the ALS joined envelope half and e-mail half into the PIN");
    println!("  {}", logged_in(&whoami));

    // The in-process cards hold their image files' locks: let them go, so that `tessera serve` can
    // put the same cards in a reader for a browser while the lab keeps running.
    drop(mayor_card);
    drop(als_identity);
    if args.once {
        lab.shutdown();
        println!("demo: done");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "\nThe lab keeps running; Ctrl-C stops it. To log in from your own browser: trust {}, import {} \
         (its password is in {}), serve a card with `tessera serve {}/cards/<card>.img`, and open {}.\n\
         Each card's PIN is its envelope half ({}/envelopes/<card>.json) followed by its e-mail half ({}/outbox).",
        lab.ca_file().display(),
        p12_path.display(),
        password_path.display(),
        batch_dir.display(),
        lab.url(),
        batch_dir.display(),
        batch_dir.display(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    lab.shutdown();
    Ok(ExitCode::SUCCESS)
}
