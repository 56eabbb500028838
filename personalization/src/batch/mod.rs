//! Personalizing a census, group by group, resumably.
//!
//! The census is validated first; a rejected census writes nothing. Then the people without a card, in
//! census order, go through the line in groups of [`BatchOptions::group_size`]: the group's card numbers
//! and certificate serials are *claimed* in the CA's issuance index in one transaction (idempotent: a
//! second claim by the same batch and person returns the same number), the cards are made in memory on
//! every core and their files written (`line`), and `commit` makes them durable with one barrier and
//! commits them in one registry transaction, while the next group is being made. A crash anywhere
//! before that commit leaves claimed numbers and no card: the rerun claims the same numbers and serials
//! again and remakes the group (nothing of it was released), so no number is burnt, lost or duplicated.
//!
//! Every durable step counts in [`DurableSteps`]; [`BatchOptions::crash_after_durable_step`] stops the
//! batch right after the N-th, as a crash would, so a test can cut a batch at every step in turn.

mod commit;
mod line;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use piv_host::PivError;
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::ca::{CaError, StagingCa};
use crate::census::{self, Census, CensusError, EntityKind};
use crate::envelope::EnvelopeError;
use crate::issuer::{IssuanceRequest, Issuer};
use crate::registry::{CensusRecord, Registry, RegistryError};
use crate::secrets::{MasterKey, SecretsError};
use crate::{dates, private_file, workstation};

pub use commit::DurableSteps;
pub use line::{personalize_card, Personalized};

#[derive(Debug, Error)]
pub enum BatchError {
    #[error("the census was rejected with {} error(s)", .0.len())]
    CensusRejected(Vec<CensusError>),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("batch {batch} was started with a different census; use a new --out directory")]
    CensusChanged { batch: PathBuf },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("master key {path} is not 64 hex digits")]
    BadMasterKey { path: PathBuf },
    #[error("card {card_number}: {source}")]
    Card {
        card_number: String,
        source: PivError,
    },
    #[error("card {card_number}: {source}")]
    CnsCard {
        card_number: String,
        source: crate::cns::CnsPersonalizationError,
    },
    #[error(
        "batch {batch} makes {recorded} cards; it cannot continue as {asked} (use a new --out directory)"
    )]
    ProfileChanged {
        batch: PathBuf,
        recorded: CardProfile,
        asked: CardProfile,
    },
    #[error("batch {batch}: its profile file says {text:?}, neither cns nor piv")]
    BadProfile { batch: PathBuf, text: String },
    #[error("card image {path}: {source}")]
    CardImage {
        path: PathBuf,
        source: card_os::CardOsError,
    },
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("{0} has no registration in the census")]
    NoRegistration(String),
    #[error("{0} is not in the census")]
    NotInCensus(String),
    #[error("card {0}: no certificate serial was claimed for it")]
    NoSerialClaimed(String),
    /// A bug on the line (a worker, the card runtime) rather than bad input: nothing of the group was
    /// committed, and a rerun remakes it.
    #[error("the personalization line failed: {0} panicked")]
    LinePanicked(&'static str),
    #[error("{0} already has a server certificate and its renewal")]
    ServerCertificatesExhausted(String),
    #[error("no workstation certificate named {0}")]
    UnknownWorkstation(String),
    #[error(
        "entity {0} has no issued workstation certificates (run `bureau workstation issue` first)"
    )]
    NoWorkstationCertificates(String),
    #[error("workstation certificate {0} is requested but not issued yet (run `bureau workstation issue`)")]
    WorkstationNotIssued(String),
    #[error("cannot build the archive: {0}")]
    Archive(String),
    /// The test hook [`BatchOptions::crash_after_durable_step`] fired: the batch stopped as if the
    /// process had died right after this step.
    #[error("injected crash after durable step {step} ({what})")]
    InjectedCrash { step: u64, what: &'static str },
}

impl From<rusqlite::Error> for BatchError {
    fn from(error: rusqlite::Error) -> Self {
        BatchError::Registry(RegistryError::Sql(error))
    }
}

/// How a batch is run.
pub struct BatchOptions {
    /// Which card the batch makes (one per batch; a rerun must ask for the same).
    pub profile: CardProfile,
    /// PIN length, 6..=8 (8 by default).
    pub pin_length: usize,
    /// The bureau master key file; `None`: `BATCH_DIR/secrets/master.key`, created on first use.
    pub master_key: Option<PathBuf>,
    pub now: SystemTime,
    /// Test hook: stop the batch right after its N-th durable step, as a crash there would (see
    /// [`DurableSteps`]). `None` in normal use.
    pub crash_after_durable_step: Option<u64>,
    /// Cards made, written and committed together: one issuance-index commit, one durability barrier
    /// and one registry commit per group instead of per card. Two groups are in memory at once (one
    /// being made, one committing: tens of KB per card) and a crash remakes at most those two.
    pub group_size: NonZeroUsize,
    /// Threads making the cards of a group; `None`: one per core.
    pub workers: Option<NonZeroUsize>,
}

/// The default [`BatchOptions::group_size`].
pub const DEFAULT_GROUP_SIZE: NonZeroUsize = match NonZeroUsize::new(128) {
    Some(size) => size,
    None => NonZeroUsize::MIN,
};

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            profile: CardProfile::default(),
            pin_length: 8,
            master_key: None,
            now: SystemTime::now(),
            crash_after_durable_step: None,
            group_size: DEFAULT_GROUP_SIZE,
            workers: None,
        }
    }
}

/// The card a batch makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CardProfile {
    /// The Italian CNS the seeds describe: ISO 7816-4 files, an RSA-2048 key, read by OpenSC's
    /// itacns driver.
    #[default]
    Cns,
    /// A PIV token with YubiKey extensions: a P-256 key in slot 9A.
    Piv,
}

impl CardProfile {
    pub fn name(self) -> &'static str {
        match self {
            CardProfile::Cns => "cns",
            CardProfile::Piv => "piv",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [CardProfile::Cns, CardProfile::Piv]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

impl std::fmt::Display for CardProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a batch records its profile (batches made before profiles existed have none: PIV).
fn profile_path(batch_dir: &Path) -> PathBuf {
    batch_dir.join("profile")
}

/// The profile a batch was started with, if it was.
pub fn recorded_profile(batch_dir: &Path) -> Result<Option<CardProfile>, BatchError> {
    let path = profile_path(batch_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => CardProfile::from_name(text.trim())
            .map(Some)
            .ok_or_else(|| BatchError::BadProfile {
                batch: batch_dir.to_path_buf(),
                text: text.trim().to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(BatchError::Io {
            action: "read",
            path,
            source,
        }),
    }
}

/// Records the profile of a new batch, or refuses a rerun that asks for another.
fn settle_profile(batch_dir: &Path, asked: CardProfile) -> Result<(), BatchError> {
    match recorded_profile(batch_dir)? {
        Some(recorded) if recorded == asked => Ok(()),
        Some(recorded) => Err(BatchError::ProfileChanged {
            batch: batch_dir.to_path_buf(),
            recorded,
            asked,
        }),
        None if batch_dir.join("registry.sqlite").exists() => {
            // A batch from before profiles: PIV cards.
            if asked == CardProfile::Piv {
                Ok(())
            } else {
                Err(BatchError::ProfileChanged {
                    batch: batch_dir.to_path_buf(),
                    recorded: CardProfile::Piv,
                    asked,
                })
            }
        }
        None => write_private(&profile_path(batch_dir), asked.name().as_bytes()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    pub total: usize,
    pub personalized: usize,
    pub already_done: usize,
    /// Durable steps this run took (commits and files made durable).
    pub durable_steps: u64,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BatchError + 'a {
    move |source| BatchError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn create_private_dir(path: &Path) -> Result<(), BatchError> {
    private_file::create_dir(path).map_err(io("create", path))
}

/// Loads the master key, creating it (0600) on first use.
pub fn master_key(batch_dir: &Path, path: Option<&Path>) -> Result<MasterKey, BatchError> {
    let default = batch_dir.join("secrets").join("master.key");
    let path = path.unwrap_or(&default);
    if path.exists() {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io("read", path))?);
        let bytes =
            Zeroizing::new(
                hex::decode(text.trim()).map_err(|_| BatchError::BadMasterKey {
                    path: path.to_path_buf(),
                })?,
            );
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| BatchError::BadMasterKey {
                path: path.to_path_buf(),
            })?;
        return Ok(MasterKey::from_bytes(key));
    }
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    let key = MasterKey::generate()?;
    write_private(path, key.to_hex().as_bytes())?;
    Ok(key)
}

/// Writes a file readable by its owner only, atomically and durably.
/// Writes a private file (mode 0600, atomically and durably).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BatchError> {
    private_file::write_atomic(path, bytes).map_err(io("write", path))
}

fn census_digest(path: &Path) -> Result<String, BatchError> {
    let bytes = std::fs::read(path).map_err(io("read", path))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// The number prefix of an issuer: the municipality's ISTAT code, or province code + `000`.
pub fn number_prefix(census: &Census, entity: &str) -> String {
    match census.entity(entity).map(|e| e.kind) {
        Some(EntityKind::Prefecture) => format!("{entity}000"),
        _ => entity.to_string(),
    }
}

/// Validates the census and personalizes every card not personalized yet.
pub fn personalize(
    census_path: &Path,
    ca_dir: &Path,
    batch_dir: &Path,
    options: &BatchOptions,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<BatchSummary, BatchError> {
    // All or nothing: a rejected census writes nothing at all.
    let census = census::load(census_path).map_err(BatchError::CensusRejected)?;
    let digest = census_digest(census_path)?;
    let ca = StagingCa::open(ca_dir)?;
    let mut issuer = Issuer::open(ca_dir)?;
    for dir in ["cards", "envelopes", "outbox"] {
        create_private_dir(&batch_dir.join(dir))?;
    }
    settle_profile(batch_dir, options.profile)?;
    let mut registry = Registry::open(batch_dir)?;
    let steps = DurableSteps::new(options.crash_after_durable_step);
    let now = dates::unix(options.now);
    let (batch_id, census_record) = registry.set_up_batch(&census, &digest, now, |tx| {
        workstation::request_from_census(tx, &census, now)
    })?;
    if census_record == CensusRecord::Changed {
        return Err(BatchError::CensusChanged {
            batch: batch_dir.to_path_buf(),
        });
    }
    steps.took("batch set up (id, census, workstation requests)")?;
    let master = master_key(batch_dir, options.master_key.as_deref())?;
    steps.took("master key")?;

    let total = census.people.len();
    let mut summary = BatchSummary {
        total,
        personalized: 0,
        already_done: 0,
        durable_steps: 0,
    };
    let line = line::Line {
        batch_dir,
        ca: &ca,
        master: &master,
        profile: options.profile,
        pin_length: options.pin_length,
        now: options.now,
    };
    let workers = options
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN));
    // What the registry knows of earlier runs, read once (not a query per person).
    let with_cards = registry.people_with_cards()?;
    let recorded = registry.open_allocations()?;
    let mut done = 0;
    let mut claim = |group: &[census::Person],
                     summary: &mut BatchSummary,
                     done: &mut usize,
                     progress: &mut dyn FnMut(usize, usize, &str)|
     -> Result<Vec<line::CardOrder>, BatchError> {
        let mut pending = Vec::with_capacity(group.len());
        for person in group {
            if with_cards.contains(&person.codice_fiscale) {
                summary.already_done += 1;
                *done += 1;
                progress(*done, total, &person.codice_fiscale);
            } else {
                let issuer_entity = person
                    .registrations
                    .first()
                    .map(|r| r.entity.as_str())
                    .ok_or_else(|| BatchError::NoRegistration(person.codice_fiscale.clone()))?;
                pending.push((person, issuer_entity));
            }
        }
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let requests: Vec<IssuanceRequest> = pending
            .iter()
            .map(|(person, issuer_entity)| {
                // A number recorded in the registry (by an earlier version) is kept; otherwise it is
                // claimed — idempotently, so the claim itself is what a rerun finds again.
                match recorded.get(&person.codice_fiscale) {
                    Some(number) => IssuanceRequest::Known(number.clone()),
                    None => IssuanceRequest::Claim {
                        prefix: number_prefix(&census, issuer_entity),
                        owner: format!("batch {batch_id} first card of {}", person.codice_fiscale),
                    },
                }
            })
            .collect();
        let issued = issuer.claim_issuance(&requests, now)?;
        steps.took("group's card numbers and serials claimed")?;
        Ok(pending
            .iter()
            .zip(issued)
            .map(|((person, issuer_entity), issue)| {
                line::CardOrder::from_census(
                    &census,
                    person,
                    issuer_entity,
                    issue.card_number,
                    issue.serial,
                )
            })
            .collect())
    };
    // A pipeline in a fixed order of durable steps: while the workers make group i, this thread
    // commits group i-1 (its barrier and commit mostly wait on the disk) and claims group i+1, so
    // the workers never wait for the databases. The steps run: claims 1, claims 2, durable 1,
    // committed 1, claims 3, durable 2, committed 2, … — the same on every run, so crash tests cut at
    // the same places.
    let groups: Vec<&[census::Person]> = census.people.chunks(options.group_size.get()).collect();
    let mut claimed = match groups.first() {
        Some(group) => claim(group, &mut summary, &mut done, progress)?,
        None => Vec::new(),
    };
    // The group made but not committed yet.
    let mut previous: Option<Vec<(line::MadeCard, [PathBuf; 3])>> = None;
    for index in 0..groups.len() {
        let orders = std::mem::take(&mut claimed);
        let (made, committed, next) = std::thread::scope(|scope| {
            let making = scope.spawn(|| line.make_group(orders, workers));
            let committed = match previous.take() {
                // A group whose people all had cards already has nothing to commit.
                Some(made) if !made.is_empty() => {
                    commit::commit_group(&steps, &mut registry, batch_dir, &made, now)
                        .map(|()| made)
                }
                _ => Ok(Vec::new()),
            };
            let next = match (&committed, groups.get(index + 1)) {
                (Ok(_), Some(group)) => claim(group, &mut summary, &mut done, progress),
                _ => Ok(Vec::new()),
            };
            let made = making
                .join()
                .unwrap_or_else(|_| Err(BatchError::LinePanicked("the thread making a group")));
            (made, committed, next)
        });
        // The first failure in step order is the batch's.
        let committed = committed?;
        let next = next?;
        let made = made?;
        for (card, _) in &committed {
            summary.personalized += 1;
            done += 1;
            progress(done, total, &card.order.codice_fiscale);
        }
        claimed = next;
        previous = Some(made);
    }
    if let Some(made) = previous.take().filter(|made| !made.is_empty()) {
        commit::commit_group(&steps, &mut registry, batch_dir, &made, now)?;
        for (card, _) in &made {
            summary.personalized += 1;
            done += 1;
            progress(done, total, &card.order.codice_fiscale);
        }
    }
    summary.durable_steps = steps.taken();
    Ok(summary)
}

/// Makes and commits one replacement card for `codice_fiscale` (its number already claimed and
/// recorded): the serial is claimed, the card made, written, made durable and committed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn replace_card(
    steps: &DurableSteps,
    ca: &StagingCa,
    issuer: &mut Issuer,
    registry: &mut Registry,
    master: &MasterKey,
    batch_dir: &Path,
    options: &BatchOptions,
    codice_fiscale: &str,
    issuer_entity: &str,
    card_number: &str,
    replaces: &str,
) -> Result<(), BatchError> {
    let now = dates::unix(options.now);
    let issued = issuer.claim_issuance(&[IssuanceRequest::Known(card_number.to_string())], now)?;
    steps.took("certificate serial claimed")?;
    let serial = issued
        .first()
        .map(|issue| issue.serial)
        .ok_or_else(|| BatchError::NoSerialClaimed(card_number.to_string()))?;
    let order = line::CardOrder::from_registry(
        registry,
        codice_fiscale,
        issuer_entity,
        card_number.to_string(),
        serial,
        Some(replaces.to_string()),
    )?;
    // The new card is of the batch's kind, whatever the options say.
    let profile = recorded_profile(batch_dir)?.unwrap_or(CardProfile::Piv);
    let line = line::Line {
        batch_dir,
        ca,
        master,
        profile,
        pin_length: options.pin_length,
        now: options.now,
    };
    let made = line.make(order)?;
    let written = commit::write_files(batch_dir, &made)?;
    commit::commit_group(steps, registry, batch_dir, &[(made, written)], now)
}
