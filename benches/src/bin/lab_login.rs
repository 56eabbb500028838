//! What a card login to the lab costs, in one run: the login lab on loopback, staged from the sample
//! census (`login_lab::staging`), and three things timed against it from the same process —
//! - the floor: one request on the workstation door, a fresh TLS 1.3 handshake whose client key is
//!   the workstation's software P-256 key (what every page of the lab costs);
//! - a PIV card login (P-256 in 9A, TLS 1.3): the workstation-door ticket, then the card door with
//!   the card as client key — the handshake signature is a GENERAL AUTHENTICATE through card-os;
//! - a CNS card login (RSA-2048, TLS 1.2): the same with PSO COMPUTE DIGITAL SIGNATURE.
//!
//! A login is two handshakes, so 2 × floor is what a two-door login costs with software keys; the
//! ratio login ÷ (2 × floor) is what the card adds. Prints medians and ratios.
//!
//! `cargo run --release -p benches --bin lab-login -- [--logins N]`

use std::time::{Duration, Instant};

use card_os::{AppletRegistry, Card, Durability};
use card_transport::InProcessReader;
use login_lab::client::{Identity, LabClient};
use login_lab::staging::{self, SAMPLE_ENTITY, SAMPLE_MAYOR};
use login_lab::{Lab, LabConfig};
use personalization::batch::{BatchOptions, CardProfile};
use personalization::ca::StagingCa;
use personalization::registry::Registry;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

struct Staged {
    _dir: tempfile::TempDir,
    lab: Lab,
    client: LabClient,
    mayor: Identity,
}

fn stage(profile: CardProfile) -> Result<Staged, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let census = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/census.csv");
    let options = BatchOptions {
        profile,
        ..BatchOptions::default()
    };
    let staged = staging::stage(
        census.as_ref(),
        &dir.path().join("ca"),
        &dir.path().join("batch"),
        &options,
        SAMPLE_ENTITY,
        SAMPLE_MAYOR,
    )
    .map_err(|e| e.to_string())?;
    let mut config = LabConfig::new(staged.batch_dir.clone(), staged.ca_dir.clone());
    config.listen = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    config.card_listen = config.listen;
    let lab = Lab::start(config).map_err(|e| e.to_string())?;

    let registry = Registry::open_existing(&staged.batch_dir).map_err(|e| e.to_string())?;
    let master =
        personalization::batch::master_key(&staged.batch_dir, None).map_err(|e| e.to_string())?;
    let (pkcs12, password) =
        personalization::workstation::bundle(&registry, &master, &staged.workstation)
            .map_err(|e| e.to_string())?;
    let workstation = Identity::from_pkcs12(&pkcs12, &password).map_err(|e| e.to_string())?;
    let ca_der = StagingCa::open(&staged.ca_dir)
        .map_err(|e| e.to_string())?
        .certificate_der();
    let client = LabClient::new(lab.workstation_addr(), ca_der, workstation);

    let card = registry
        .current_card(SAMPLE_MAYOR)
        .map_err(|e| e.to_string())?
        .ok_or("the mayor has no card")?;
    let pin = login_lab::holder::join(&staged.batch_dir, &card.card_number)
        .map_err(|e| e.to_string())?
        .pin;
    let applets = AppletRegistry::new()
        .register(piv_applet::aid(), piv_applet::factory)
        .register(cns_applet::aid(), cns_applet::factory);
    let image = Card::open(
        &staged.batch_dir.join(&card.card_file),
        &applets,
        Durability::Relaxed,
    )
    .map_err(|e| e.to_string())?;
    let reader = InProcessReader::new(card_transport::share(image));
    let mayor = Identity::from_card(Box::new(reader), &pin).map_err(|e| e.to_string())?;
    Ok(Staged {
        _dir: dir,
        lab,
        client,
        mayor,
    })
}

fn time_floor(staged: &Staged, n: usize) -> Result<Duration, String> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let reply = staged.client.get("/api/login").map_err(|e| e.to_string())?;
        samples.push(start.elapsed());
        if reply.status != 200 {
            return Err(format!("/api/login answered {}", reply.status));
        }
    }
    Ok(median(samples))
}

fn time_logins(staged: &mut Staged, n: usize) -> Result<Duration, String> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let reply = staged
            .client
            .login_with_card(&staged.mayor)
            .map_err(|e| e.to_string())?;
        samples.push(start.elapsed());
        if reply.status != 200 {
            return Err(format!("the card login answered {}", reply.status));
        }
    }
    Ok(median(samples))
}

fn main() -> Result<(), String> {
    let mut logins = 100usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--logins" => {
                logins = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n: &usize| n > 0)
                    .ok_or("--logins needs a positive number")?
            }
            other => return Err(format!("unknown argument {other:?} (--logins N)")),
        }
    }
    let mut piv = stage(CardProfile::Piv)?;
    let mut cns = stage(CardProfile::Cns)?;
    // Warm-up: the first handshakes pay for lazy initialisation on both sides.
    time_floor(&piv, 5)?;
    time_logins(&mut piv, 3)?;
    time_logins(&mut cns, 3)?;

    // Interleaved rounds, so a noisy moment of the machine lands on all three alike.
    let rounds = 5;
    let per_round = logins.div_ceil(rounds);
    let (mut floor, mut piv_login, mut cns_login) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        floor.push(time_floor(&piv, per_round)?);
        piv_login.push(time_logins(&mut piv, per_round)?);
        cns_login.push(time_logins(&mut cns, per_round)?);
    }
    let (floor, piv_login, cns_login) = (median(floor), median(piv_login), median(cns_login));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "lab login on loopback, {} per kind in {rounds} interleaved rounds, medians:",
        per_round * rounds
    );
    println!(
        "  floor: one workstation-door request (TLS 1.3, software P-256 client key) {:.3} ms",
        ms(floor)
    );
    for (name, login) in [
        ("PIV card login (P-256, TLS 1.3)", piv_login),
        ("CNS card login (RSA-2048, TLS 1.2)", cns_login),
    ] {
        println!(
            "  {name}: {:.3} ms = {:.2} × floor, {:.2} × the two-handshake floor",
            ms(login),
            ratio(login, floor),
            ratio(login, floor * 2)
        );
    }
    piv.lab.shutdown();
    cns.lab.shutdown();
    Ok(())
}
