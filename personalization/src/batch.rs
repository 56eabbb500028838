//! Personalizing a census, card by card, resumably.
//!
//! The census is validated first; a rejected census writes nothing. Then, for each person in census
//! order: a card number is *claimed* in the CA's issuance index by this batch and person (allocation and
//! claim are one transaction, and a second claim by the same owner returns the same number), then
//! recorded in the batch registry; the certificate serial is claimed the same way by the card number; the
//! card image is created and personalized through APDUs; the envelope is written; and one registry
//! transaction commits card, certificate and sealed second halves. A crash anywhere before that commit
//! leaves a person with a claimed number and no card: the rerun claims the same number and serial again
//! and remakes that card (nothing of it was released), so no number is burnt, lost or duplicated.
//!
//! Every durable step counts in [`DurableSteps`]; [`BatchOptions::crash_after_durable_step`] stops the
//! batch right after the N-th, as a crash would, so a test can cut a batch at every step in turn.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use card_os::{AppletRegistry, Card, CardConfig, Installation, Storage};
use card_transport::{InProcessReader, SharedCard, Transport};
use piv_host::{GenerateOptions, ManagementKey, PinValue, PivError, PivSession};
use piv_types::{tag, KeyAlgorithm, KeySlot, ManagementAlgorithm, ObjectId, PinReference};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::ca::{CaError, Holder, StagingCa};
use crate::census::{self, Census, CensusError, EntityKind};
use crate::envelope::{self, EnvelopeContent, EnvelopeError};
use crate::issuer::Issuer;
use crate::registry::{NewCard, Registry, RegistryError};
use crate::secrets::{self, CardSecrets, MasterKey, SecretsError};
use crate::{dates, workstation};

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
    #[error("card image {path}: {source}")]
    CardImage {
        path: PathBuf,
        source: card_os::CardOsError,
    },
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("{0}")]
    Rule(String),
    /// The test hook [`BatchOptions::crash_after_durable_step`] fired: the batch stopped as if the
    /// process had died right after this step.
    #[error("injected crash after durable step {step} ({what})")]
    InjectedCrash { step: u64, what: &'static str },
}

/// Counts the durable steps of a batch (each commit, each file made durable), and stops the batch after
/// the N-th when a crash is injected. Stopping returns an error that nothing above handles, so what is
/// on disk is exactly what a process killed at that instant would leave.
pub struct DurableSteps {
    done: std::cell::Cell<u64>,
    crash_after: Option<u64>,
}

impl DurableSteps {
    pub fn new(crash_after: Option<u64>) -> Self {
        Self {
            done: std::cell::Cell::new(0),
            crash_after,
        }
    }

    /// How many durable steps have been taken.
    pub fn taken(&self) -> u64 {
        self.done.get()
    }

    /// Marks one durable step as taken: call it right after the step is on disk.
    pub fn took(&self, what: &'static str) -> Result<(), BatchError> {
        let step = self.done.get() + 1;
        self.done.set(step);
        if self.crash_after == Some(step) {
            return Err(BatchError::InjectedCrash { step, what });
        }
        Ok(())
    }
}

impl From<rusqlite::Error> for BatchError {
    fn from(error: rusqlite::Error) -> Self {
        BatchError::Registry(RegistryError::Sql(error))
    }
}

/// How a batch is run.
pub struct BatchOptions {
    /// PIN length, 6..=8 (8 by default).
    pub pin_length: usize,
    /// The bureau master key file; `None`: `BATCH_DIR/secrets/master.key`, created on first use.
    pub master_key: Option<PathBuf>,
    pub now: SystemTime,
    /// Test hook: stop the batch right after its N-th durable step, as a crash there would (see
    /// [`DurableSteps`]). `None` in normal use.
    pub crash_after_durable_step: Option<u64>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            pin_length: 8,
            master_key: None,
            now: SystemTime::now(),
            crash_after_durable_step: None,
        }
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
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io("create", path))
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

/// Writes a file readable by its owner only, atomically.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BatchError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("write", &tmp))?;
    file.write_all(bytes).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("sync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("replace", path))
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
    let mut registry = Registry::open(batch_dir)?;
    let steps = DurableSteps::new(options.crash_after_durable_step);
    let batch_id = registry.batch_id()?;
    steps.took("batch id")?;
    let now = dates::unix(options.now);
    match registry.meta("census_digest")? {
        None => {
            registry.import_census(&census, &digest, now)?;
            steps.took("census imported")?;
        }
        Some(previous) if previous == digest => {}
        Some(_) => {
            return Err(BatchError::CensusChanged {
                batch: batch_dir.to_path_buf(),
            })
        }
    }
    let master = master_key(batch_dir, options.master_key.as_deref())?;
    steps.took("master key")?;
    workstation::request_from_census(&mut registry, &census, now)?;
    steps.took("workstation requests")?;

    let total = census.people.len();
    let mut summary = BatchSummary {
        total,
        personalized: 0,
        already_done: 0,
        durable_steps: 0,
    };
    for (index, person) in census.people.iter().enumerate() {
        if registry.has_card(&person.codice_fiscale)? {
            summary.already_done += 1;
            progress(index + 1, total, &person.codice_fiscale);
            continue;
        }
        let issuer_entity = person
            .registrations
            .first()
            .map(|r| r.entity.clone())
            .ok_or_else(|| {
                BatchError::Rule(format!("{} has no registration", person.codice_fiscale))
            })?;
        let card_number = match registry.allocation(&person.codice_fiscale)? {
            Some((number, _)) => number,
            None => {
                let number = issuer.claim_card_number(
                    &number_prefix(&census, &issuer_entity),
                    &format!("batch {batch_id} first card of {}", person.codice_fiscale),
                )?;
                steps.took("card number claimed")?;
                registry.record_allocation(&person.codice_fiscale, &number, None)?;
                steps.took("card number recorded")?;
                number
            }
        };
        make_card(
            &steps,
            &ca,
            &mut issuer,
            &mut registry,
            &master,
            batch_dir,
            options,
            &person.codice_fiscale,
            &issuer_entity,
            &card_number,
            None,
        )?;
        summary.personalized += 1;
        progress(index + 1, total, &person.codice_fiscale);
    }
    summary.durable_steps = steps.taken();
    Ok(summary)
}

/// Creates, personalizes and commits one card (also used to replace a card).
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_card(
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
    replaces: Option<&str>,
) -> Result<(), BatchError> {
    let now = dates::unix(options.now);
    let (surname, name) = registry
        .person(codice_fiscale)?
        .ok_or_else(|| BatchError::Rule(format!("{codice_fiscale} is not in the census")))?;
    let entities = registry.entities_of(codice_fiscale)?;
    let entity_names = entities
        .iter()
        .map(|code| {
            registry
                .entity_name(code)
                .map(|n| n.unwrap_or_else(|| code.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let card_file = format!("cards/{card_number}.img");
    let card_path = batch_dir.join(&card_file);
    // A card image left by an interrupted run was never committed nor released: start it afresh.
    if card_path.exists() {
        std::fs::remove_file(&card_path).map_err(io("remove", &card_path))?;
    }
    let applets = AppletRegistry::new().register(piv_applet::aid(), piv_applet::factory);
    let installation = Installation {
        aid: piv_applet::aid(),
        params: piv_applet::InstallParams::default().to_bytes(),
        default_selected: true,
    };
    // The card is built in memory, as a chip on the line, and becomes a file once finished: it counts as
    // issued only at the registry commit, and a crash before that remakes it from scratch anyway.
    let card = Card::create(
        CardConfig::default(),
        &applets,
        &[installation],
        Storage::Memory,
    )
    .map_err(|source| BatchError::CardImage {
        path: card_path.clone(),
        source,
    })?;
    let card = Arc::new(Mutex::new(card));
    let shared: SharedCard = card.clone();
    let mut reader = InProcessReader::new(shared);

    let serial = issuer.claim_serial(
        &format!("certificate of card {card_number}"),
        &format!("card {card_number}"),
        now,
    )?;
    steps.took("certificate serial claimed")?;
    let secrets = CardSecrets::generate(options.pin_length)?;
    let holder = Holder {
        codice_fiscale: codice_fiscale.to_string(),
        surname: surname.clone(),
        given_name: name.clone(),
    };
    let management_key = ManagementKey::new(
        ManagementAlgorithm::Aes192,
        &master.management_key(card_number)[..],
    )
    .map_err(|source| BatchError::Card {
        card_number: card_number.to_string(),
        source,
    })?;
    let personalized = personalize_card(
        &mut reader,
        ca,
        &holder,
        serial,
        options.now,
        &entity_names.first().cloned().unwrap_or_default(),
        card_number,
        &secrets,
        &management_key,
    )
    .map_err(|source| BatchError::Card {
        card_number: card_number.to_string(),
        source,
    })?;
    drop(reader);
    // INVARIANT: the card image is durable (fsync) before the registry says the card exists.
    card.lock()
        .map_err(|_| BatchError::Rule(format!("card {card_number}: the card panicked")))?
        .save_new(&card_path)
        .map_err(|source| BatchError::CardImage {
            path: card_path.clone(),
            source: source.into(),
        })?;
    steps.took("card image")?;

    let halves = secrets.split();
    let expiry = dates::ymd(personalized.not_after);
    let content = EnvelopeContent {
        card_number: card_number.to_string(),
        codice_fiscale: codice_fiscale.to_string(),
        holder_name: format!("{surname} {name}"),
        entities: entity_names,
        expiry,
        card_file: card_file.clone(),
        pin_first_half: halves.pin.0.expose().to_string(),
        puk_first_half: halves.puk.0.expose().to_string(),
        password_first_half: halves.password.0.expose().to_string(),
    };
    envelope::write(&batch_dir.join("envelopes"), &content)?;
    steps.took("envelope")?;
    let sealed = secrets::seal_second_halves(master, card_number, &halves)?;
    registry.commit_card(&NewCard {
        card_number,
        codice_fiscale,
        issuer_entity,
        entities: &entities,
        card_file: &card_file,
        certificate_serial: &hex::encode(serial),
        certificate_der: &personalized.certificate_der,
        not_before: now,
        not_after: personalized.not_after,
        sealed_second_halves: &sealed,
        guid: &hex::encode(personalized.guid),
        replaces,
        now,
    })?;
    steps.took("card committed")?;
    Ok(())
}

/// What personalization put on the card.
pub struct Personalized {
    pub public_point: Vec<u8>,
    pub certificate_der: Vec<u8>,
    pub guid: [u8; 16],
    /// Unix seconds.
    pub not_after: i64,
}

/// The personalization sequence, APDUs only: factory management key → on-card 9A key → certificate →
/// CHUID with a fresh GUID → printed information → PIN and PUK → per-card management key.
#[allow(clippy::too_many_arguments)]
pub fn personalize_card(
    transport: &mut dyn Transport,
    ca: &StagingCa,
    holder: &Holder,
    serial: [u8; 16],
    now: SystemTime,
    affiliation: &str,
    card_number: &str,
    secrets: &CardSecrets,
    management_key: &ManagementKey,
) -> Result<Personalized, PivError> {
    use apdu::tlv;
    let mut piv = PivSession::open(transport)?;
    piv.authenticate(&ManagementKey::factory())?;
    let public = piv.generate(
        KeySlot::Authentication,
        KeyAlgorithm::EccP256,
        GenerateOptions::default(),
    )?;
    let public_point = public
        .ec_point()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| unexpected("key generation", "not an EC key"))?;
    let certificate_der = ca
        .issue_user(holder, &public_point, serial, now)
        .map_err(|e| unexpected("certificate issuance", e))?;
    piv.put_certificate(KeySlot::Authentication, &certificate_der)?;
    let not_after = dates::unix(crate::ca::not_after(now, crate::ca::VALIDITY_YEARS));

    // CHUID: keep the card's FASC-N, write a fresh GUID and the expiry.
    let mut guid = [0u8; 16];
    getrandom::fill(&mut guid).map_err(|e| unexpected("GUID", e))?;
    let chuid = piv.get_object(ObjectId::CHUID)?;
    let mut new_chuid = Vec::new();
    for item in tlv::iter(&chuid).flatten() {
        match item.tag.0 {
            tag::CHUID_GUID => tlv::write(&mut new_chuid, tag::CHUID_GUID, &guid),
            tag::CHUID_EXPIRY => {
                let (y, m, d) = dates::civil(not_after);
                let expiry = format!("{y:04}{m:02}{d:02}");
                tlv::write(&mut new_chuid, tag::CHUID_EXPIRY, expiry.as_bytes());
            }
            _ => tlv::write(&mut new_chuid, item.tag, item.value),
        }
    }
    piv.put_object(ObjectId::CHUID, &new_chuid)?;

    // Printed information (SP 800-73-4 §3.1.4): name, affiliation, expiry, card serial, issuer.
    let mut printed = Vec::new();
    let name = format!("{} {}", holder.surname, holder.given_name);
    tlv::write(&mut printed, tag::PRINTED_NAME, truncate(&name, 32));
    tlv::write(
        &mut printed,
        tag::PRINTED_AFFILIATION,
        truncate(affiliation, 20),
    );
    tlv::write(
        &mut printed,
        tag::PRINTED_EXPIRY,
        dates::piv_expiry(not_after).as_bytes(),
    );
    tlv::write(&mut printed, tag::PRINTED_SERIAL, card_number.as_bytes());
    tlv::write(&mut printed, tag::PRINTED_ISSUER, b"tessera staging");
    tlv::write(&mut printed, tag::ERROR_DETECTION, &[]);
    piv.put_object(ObjectId::PRINTED_INFO, &printed)?;

    let pin = |value: &str| PinValue::new(value);
    expect_changed(piv.change_reference(
        PinReference::Pin,
        &pin(piv_types::DEFAULT_PIN)?,
        &pin(secrets.pin.expose())?,
    )?)?;
    expect_changed(piv.change_reference(
        PinReference::Puk,
        &pin(piv_types::DEFAULT_PUK)?,
        &pin(secrets.puk.expose())?,
    )?)?;
    piv.set_management_key(management_key, false)?;
    // Prove the new key works before the card leaves the line.
    piv.authenticate(management_key)?;
    Ok(Personalized {
        public_point,
        certificate_der,
        guid,
        not_after,
    })
}

fn unexpected(operation: &'static str, detail: impl std::fmt::Display) -> PivError {
    PivError::Unexpected {
        operation,
        detail: detail.to_string(),
    }
}

/// A factory PIN or PUK that the card does not take back is a card we must not ship.
fn expect_changed(outcome: piv_host::PinOutcome) -> Result<(), PivError> {
    match outcome {
        piv_host::PinOutcome::Verified => Ok(()),
        other => Err(PivError::Refused {
            operation: "CHANGE REFERENCE DATA",
            sw: other.status_word(),
        }),
    }
}

fn truncate(text: &str, max: usize) -> &[u8] {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text.as_bytes()[..end]
}
