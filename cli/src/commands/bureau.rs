//! `tessera ca init` and `tessera bureau …`: the staging personalization bureau.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use personalization::batch::{self, BatchError, BatchOptions};
use personalization::lifecycle::{Batch, Mailer};
use personalization::mail::{SmtpConfig, SmtpTls};
use personalization::{ca, census, workstation};

#[derive(Subcommand)]
pub enum CaCommand {
    /// Create a staging CA (clearly named as staging); its private key is a 0600 file.
    Init {
        /// The CA directory to create.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run_ca(command: CaCommand) -> anyhow::Result<ExitCode> {
    match command {
        CaCommand::Init { out } => {
            ca::StagingCa::init(&out, SystemTime::now())
                .with_context(|| format!("cannot create the staging CA in {}", out.display()))?;
            println!(
                "created staging CA in {} (ca.crt, the root to trust; cards-ca.crt and hosts-ca.crt issue card and workstation certificates; the .key files are private, mode 0600)",
                out.display()
            );
            println!("  STAGING ONLY: certificates it issues must never be trusted in production");
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Args)]
pub struct BatchArg {
    /// The batch directory made by `bureau personalize`.
    #[arg(long)]
    pub batch: PathBuf,
    /// The bureau master key file (default: BATCH_DIR/secrets/master.key).
    #[arg(long)]
    pub master_key: Option<PathBuf>,
    /// SMTP settings (TOML: host, port, from, tls = "starttls"|"tls"|"none", username, password);
    /// default: BATCH_DIR/smtp.toml if present, else e-mails go to BATCH_DIR/outbox/*.eml.
    #[arg(long)]
    smtp: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum BureauCommand {
    /// Validate a census (CSV or XLSX) without writing anything.
    Check { census: PathBuf },
    /// Personalize every card of a census (resumable: rerun after a crash to finish the batch).
    Personalize {
        #[arg(long)]
        census: PathBuf,
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The card to make: `cns` (the Italian CNS operator card the seeds describe: RSA-2048,
        /// read by OpenSC's itacns driver) or `piv` (a PIV token, P-256 in slot 9A). One per batch.
        #[arg(long, value_enum, default_value = "cns")]
        profile: ProfileArg,
        /// PIN length (6..8).
        #[arg(long, default_value_t = 8)]
        pin_length: usize,
        #[arg(long)]
        master_key: Option<PathBuf>,
        /// Cards made and committed together (one durability barrier per group; a crash remakes at
        /// most one group).
        #[arg(long, default_value_t = batch::DEFAULT_GROUP_SIZE)]
        group_size: NonZeroUsize,
        /// Threads making the cards of a group (default: one per core).
        #[arg(long)]
        workers: Option<NonZeroUsize>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// The prefecture delivers an entity's cards to its mayor or a censused delegate.
    Deliver {
        #[command(flatten)]
        batch: BatchArg,
        #[arg(long)]
        entity: String,
        /// Codice fiscale of the person receiving the parcel.
        #[arg(long)]
        to: String,
    },
    /// Register a card's delivery to its holder (mayor or ALS): releases the second halves by e-mail.
    Register {
        #[command(flatten)]
        batch: BatchArg,
        #[arg(long)]
        card: String,
        /// Codice fiscale of the mayor or ALS registering it.
        #[arg(long)]
        by: String,
    },
    /// Re-send the second halves of a registered card ("Invio PIN/PUK").
    Resend {
        #[command(flatten)]
        batch: BatchArg,
        #[arg(long)]
        card: String,
        #[arg(long)]
        by: String,
    },
    /// Request a new card: blocks the current one at once and revokes its certificate.
    Replace {
        #[command(flatten)]
        batch: BatchArg,
        #[arg(long)]
        card: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        ca: PathBuf,
        /// Replace even if the entity is left with no active mayor or ALS card.
        #[arg(long)]
        force: bool,
    },
    /// The state of each card.
    Status {
        #[command(flatten)]
        batch: BatchArg,
        #[arg(long)]
        card: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Workstation and server certificates.
    #[command(subcommand)]
    Workstation(WorkstationCommand),
}

#[derive(Subcommand)]
pub enum WorkstationCommand {
    /// Request one more certificate for an entity (the next -PC- number, or with --server -CO-9999/9998).
    Request {
        #[command(flatten)]
        batch: BatchArg,
        #[arg(long)]
        entity: String,
        #[arg(long)]
        server: bool,
    },
    /// The batch job: issue every requested certificate as PKCS#12 with its own password.
    Issue {
        #[command(flatten)]
        batch: BatchArg,
        #[arg(long)]
        ca: PathBuf,
    },
    /// Block a certificate (revokes it).
    Block {
        #[command(flatten)]
        batch: BatchArg,
        #[arg(long)]
        name: String,
    },
    /// List certificates and their states.
    List {
        #[command(flatten)]
        batch: BatchArg,
        #[arg(long)]
        entity: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// "Download all": one zip of an entity's PKCS#12 files plus passwords.txt (0600).
    DownloadAll {
        #[command(flatten)]
        batch: BatchArg,
        #[arg(long)]
        entity: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(serde::Deserialize)]
struct SmtpFile {
    host: String,
    port: u16,
    from: String,
    #[serde(default)]
    tls: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

pub fn smtp_config(arg: &BatchArg) -> anyhow::Result<Option<SmtpConfig>> {
    let default = arg.batch.join("smtp.toml");
    let path = match &arg.smtp {
        Some(path) => path.clone(),
        None if default.exists() => default,
        None => return Ok(None),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read SMTP settings {}", path.display()))?;
    let file: SmtpFile =
        toml::from_str(&text).with_context(|| format!("SMTP settings {}", path.display()))?;
    let tls = match file.tls.as_deref().unwrap_or("starttls") {
        "starttls" => SmtpTls::Starttls,
        "tls" => SmtpTls::Tls,
        "none" => SmtpTls::None,
        other => anyhow::bail!(
            "SMTP settings {}: tls = {other:?} is not starttls, tls or none",
            path.display()
        ),
    };
    Ok(Some(SmtpConfig {
        host: file.host,
        port: file.port,
        username: file.username,
        password: file.password,
        from: file.from,
        tls,
    }))
}

fn open_batch(arg: &BatchArg) -> anyhow::Result<(Batch<'_>, Mailer)> {
    if !arg.batch.join("registry.sqlite").exists() {
        anyhow::bail!(
            "{} is not a personalization batch (no registry.sqlite; make one with `tessera bureau personalize`)",
            arg.batch.display()
        );
    }
    let batch = Batch::open(&arg.batch, arg.master_key.as_deref(), SystemTime::now())?;
    let mailer = Mailer::for_batch(&arg.batch, smtp_config(arg)?);
    Ok((batch, mailer))
}

fn print_census_errors(errors: &[census::CensusError]) {
    for error in errors {
        eprintln!("{error}");
    }
    eprintln!(
        "census rejected: {} error(s); nothing was written",
        errors.len()
    );
}

pub fn run(command: BureauCommand) -> anyhow::Result<ExitCode> {
    match command {
        BureauCommand::Check { census: path } => match census::check(&path) {
            Ok(c) => {
                println!(
                    "census {} is valid: {} entities, {} registrations, {} people (one card each)",
                    path.display(),
                    c.entities,
                    c.registrations,
                    c.people
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(errors) => {
                print_census_errors(&errors);
                Ok(ExitCode::FAILURE)
            }
        },
        BureauCommand::Personalize {
            census,
            ca,
            out,
            profile,
            pin_length,
            master_key,
            group_size,
            workers,
            quiet,
        } => {
            let options = BatchOptions {
                profile: profile.into(),
                pin_length,
                master_key,
                now: SystemTime::now(),
                crash_after_durable_step: crash_hook()?,
                group_size,
                workers,
            };
            let bar = (!quiet).then(|| {
                let bar = indicatif::ProgressBar::new(0);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} cards  {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar
            });
            let result =
                batch::personalize(&census, &ca, &out, &options, &mut |done, total, _cf| {
                    if let Some(bar) = &bar {
                        bar.set_length(total as u64);
                        bar.set_position(done as u64);
                    }
                });
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            match result {
                Ok(summary) => {
                    println!(
                        "batch {}: {} cards personalized now, {} already done, {} in the census",
                        out.display(),
                        summary.personalized,
                        summary.already_done,
                        summary.total
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(BatchError::CensusRejected(errors)) => {
                    print_census_errors(&errors);
                    Ok(ExitCode::FAILURE)
                }
                Err(error) => Err(error.into()),
            }
        }
        BureauCommand::Deliver { batch, entity, to } => {
            let (mut b, mailer) = open_batch(&batch)?;
            let (delivered, activated) = b.deliver(&entity, &to, &mailer)?;
            println!("delivered {} card(s) of {entity} to {to}", delivered.len());
            for card in activated {
                println!(
                    "  {card}: the mayor's card is active on delivery; second halves released"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BureauCommand::Register { batch, card, by } => {
            let (mut b, mailer) = open_batch(&batch)?;
            let sent = b.register(&card, &by, &mailer)?;
            println!(
                "card {card} is active; second halves sent ({})",
                sent.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        BureauCommand::Resend { batch, card, by } => {
            let (mut b, mailer) = open_batch(&batch)?;
            let sent = b.resend(&card, &by, &mailer)?;
            println!(
                "second halves of card {card} sent again ({})",
                sent.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        BureauCommand::Replace {
            batch,
            card,
            by,
            ca,
            force,
        } => {
            let (mut b, _mailer) = open_batch(&batch)?;
            let options = BatchOptions {
                master_key: batch.master_key.clone(),
                crash_after_durable_step: crash_hook()?,
                ..BatchOptions::default()
            };
            let new = b.replace(&card, &by, force, &ca, &options)?;
            println!(
                "card {card} is blocked and its certificate revoked; new card {new} personalized"
            );
            Ok(ExitCode::SUCCESS)
        }
        BureauCommand::Status { batch, card, json } => {
            let (b, _) = open_batch(&batch)?;
            let mut rows = b.status()?;
            if let Some(card) = &card {
                rows.retain(|(c, _)| &c.card_number == card);
                if rows.is_empty() {
                    anyhow::bail!("card {card} is not in batch {}", batch.batch.display());
                }
            }
            if json {
                let list: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(c, state)| {
                        serde_json::json!({
                            "card_number": c.card_number, "codice_fiscale": c.codice_fiscale,
                            "holder": c.holder, "state": state, "issuer_entity": c.issuer_entity,
                            "entities": c.entities, "card_file": c.card_file,
                            "certificate_serial": c.certificate_serial, "replaces": c.replaces,
                            "delivered_to": c.delivered_to, "expires": dates_ymd(c.expires_at),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<14} {:<17} {:<13} {:<12} holder",
                    "card", "codice fiscale", "state", "expires"
                );
                for (c, state) in rows {
                    println!(
                        "{:<14} {:<17} {:<13} {:<12} {}",
                        c.card_number,
                        c.codice_fiscale,
                        state.as_str(),
                        dates_ymd(c.expires_at),
                        c.holder
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BureauCommand::Workstation(command) => run_workstation(command),
    }
}

fn dates_ymd(unix: i64) -> String {
    personalization::lifecycle::ymd(unix)
}

fn run_workstation(command: WorkstationCommand) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    let unix = personalization::lifecycle::unix(now);
    match command {
        WorkstationCommand::Request {
            batch,
            entity,
            server,
        } => {
            let (mut b, _) = open_batch(&batch)?;
            let name = workstation::request(&mut b.registry, &entity, server, unix)?;
            println!("requested {name} (issued by the next `bureau workstation issue`)");
        }
        WorkstationCommand::Issue { batch, ca } => {
            let (mut b, _) = open_batch(&batch)?;
            let authority = ca::StagingCa::open(&ca)?;
            let mut issuer = personalization::issuer::Issuer::open(&ca)?;
            let issued = workstation::issue_requested(
                &mut b.registry,
                &authority,
                &mut issuer,
                &b.master,
                now,
            )?;
            println!("issued {} certificate(s)", issued.len());
            for name in issued {
                println!("  {name}");
            }
        }
        WorkstationCommand::Block { batch, name } => {
            let (mut b, _) = open_batch(&batch)?;
            workstation::block(&mut b.registry, &name, unix)?;
            println!("{name} is blocked and revoked");
        }
        WorkstationCommand::List {
            batch,
            entity,
            json,
        } => {
            let (b, _) = open_batch(&batch)?;
            let rows = workstation::list(&b.registry, entity.as_deref(), unix)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in rows {
                    println!(
                        "{:<16} {:<12} {:<10} {}",
                        r.name,
                        r.kind,
                        r.state,
                        r.not_after.map(dates_ymd).unwrap_or_default()
                    );
                }
            }
        }
        WorkstationCommand::DownloadAll { batch, entity, out } => {
            let (b, _) = open_batch(&batch)?;
            let count = workstation::download_all(&b.registry, &b.master, &entity, &out)?;
            println!(
                "wrote {} certificate(s) and passwords.txt to {}",
                count,
                out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The crash-test hook: `TESSERA_CRASH_AFTER_DURABLE_STEP=N` stops a batch right after its N-th durable
/// step, leaving on disk what a crash there would, so a script can cut a batch at every step in turn.
fn crash_hook() -> anyhow::Result<Option<u64>> {
    const VAR: &str = "TESSERA_CRASH_AFTER_DURABLE_STEP";
    match std::env::var(VAR) {
        Err(_) => Ok(None),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(step) if step > 0 => Ok(Some(step)),
            _ => anyhow::bail!("{VAR} must be a step number from 1, not {text:?}"),
        },
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ProfileArg {
    Cns,
    Piv,
}

impl From<ProfileArg> for personalization::batch::CardProfile {
    fn from(value: ProfileArg) -> Self {
        match value {
            ProfileArg::Cns => Self::Cns,
            ProfileArg::Piv => Self::Piv,
        }
    }
}
