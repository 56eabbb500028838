//! The batch's card registry (`BATCH_DIR/registry.sqlite`): entities, people and their memberships,
//! cards and their states, certificates, sealed second halves, workstation certificates, and an
//! append-only event log (triggers refuse UPDATE and DELETE on it).

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use thiserror::Error;

use crate::census::{Census, EntityKind, Profile};

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("cannot open registry {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create {path} readable by its owner only: {source}")]
    Private {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("registry: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("card numbers of issuer {0} are exhausted")]
    Exhausted(String),
    #[error("issuance index is damaged: {0}")]
    Corrupt(String),
}

impl RegistryError {
    pub(crate) fn private(path: &Path, source: std::io::Error) -> Self {
        RegistryError::Private {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn open(path: &Path, source: rusqlite::Error) -> Self {
        RegistryError::Open {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where a card is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CardState {
    Personalized,
    Delivered,
    Active,
    Blocked,
    Expired,
}

impl CardState {
    pub fn as_str(self) -> &'static str {
        match self {
            CardState::Personalized => "personalized",
            CardState::Delivered => "delivered",
            CardState::Active => "active",
            CardState::Blocked => "blocked",
            CardState::Expired => "expired",
        }
    }

    /// The state a registry row spells; `None` for any other text (a damaged or newer registry), which
    /// must never be read as some state by default.
    pub fn parse(text: &str) -> Option<CardState> {
        [
            CardState::Personalized,
            CardState::Delivered,
            CardState::Active,
            CardState::Blocked,
            CardState::Expired,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

impl std::fmt::Display for CardState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One card as the registry knows it.
#[derive(Debug, Clone, Serialize)]
pub struct CardRow {
    pub card_number: String,
    pub codice_fiscale: String,
    pub holder: String,
    pub issuer_entity: String,
    pub entities: Vec<String>,
    /// The stored state (see [`CardRow::effective_state`] for expiry).
    pub state: CardState,
    pub card_file: String,
    pub certificate_serial: String,
    pub expires_at: i64,
    pub replaces: Option<String>,
    pub delivered_to: Option<String>,
}

impl CardRow {
    /// The state, with expiry applied as of `now` (Unix seconds).
    pub fn effective_state(&self, now: i64) -> CardState {
        match self.state {
            CardState::Delivered | CardState::Active | CardState::Personalized
                if now >= self.expires_at =>
            {
                CardState::Expired
            }
            state => state,
        }
    }
}

/// What an event of the log records. Stored as its kebab-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    CensusImported,
    Personalized,
    Delivered,
    ActivatedOnDelivery,
    Registered,
    HalvesReleased,
    HalvesResent,
    BlockedForReplacement,
    WorkstationRequested,
    WorkstationIssued,
    WorkstationBlocked,
}

impl EventKind {
    const ALL: [EventKind; 11] = [
        EventKind::CensusImported,
        EventKind::Personalized,
        EventKind::Delivered,
        EventKind::ActivatedOnDelivery,
        EventKind::Registered,
        EventKind::HalvesReleased,
        EventKind::HalvesResent,
        EventKind::BlockedForReplacement,
        EventKind::WorkstationRequested,
        EventKind::WorkstationIssued,
        EventKind::WorkstationBlocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CensusImported => "census-imported",
            EventKind::Personalized => "personalized",
            EventKind::Delivered => "delivered",
            EventKind::ActivatedOnDelivery => "activated-on-delivery",
            EventKind::Registered => "registered",
            EventKind::HalvesReleased => "halves-released",
            EventKind::HalvesResent => "halves-resent",
            EventKind::BlockedForReplacement => "blocked-for-replacement",
            EventKind::WorkstationRequested => "workstation-requested",
            EventKind::WorkstationIssued => "workstation-issued",
            EventKind::WorkstationBlocked => "workstation-blocked",
        }
    }

    /// The kind a stored name stands for; `None` for a name this version does not know.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the append-only event log.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at: i64,
    pub kind: EventKind,
    pub card_number: Option<String>,
    pub entity: Option<String>,
    /// Codice fiscale of who acted, where a person did.
    pub actor: Option<String>,
    pub detail: String,
}

/// What committing a personalized card records, all at once.
pub struct NewCard<'a> {
    pub card_number: &'a str,
    pub codice_fiscale: &'a str,
    pub issuer_entity: &'a str,
    pub entities: &'a [String],
    pub card_file: &'a str,
    pub certificate_serial: &'a str,
    pub certificate_der: &'a [u8],
    pub not_before: i64,
    pub not_after: i64,
    pub sealed_second_halves: &'a [u8],
    /// [`crate::secrets::MasterKey::password_verifier`] of the card's access password.
    pub password_verifier: &'a [u8],
    pub guid: &'a str,
    pub replaces: Option<&'a str>,
    pub now: i64,
}

pub struct Registry {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
    code TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    monitored_workstations INTEGER NOT NULL, workstations INTEGER NOT NULL, employees INTEGER NOT NULL,
    email_domains TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (
    codice_fiscale TEXT PRIMARY KEY, surname TEXT NOT NULL, name TEXT NOT NULL, census_order INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (
    entity TEXT NOT NULL REFERENCES entities(code), codice_fiscale TEXT NOT NULL REFERENCES people(codice_fiscale),
    email TEXT NOT NULL, profiles TEXT NOT NULL, PRIMARY KEY (entity, codice_fiscale));
CREATE TABLE IF NOT EXISTS allocations (
    codice_fiscale TEXT PRIMARY KEY, card_number TEXT NOT NULL UNIQUE, replaces TEXT);
CREATE TABLE IF NOT EXISTS cards (
    card_number TEXT PRIMARY KEY, codice_fiscale TEXT NOT NULL REFERENCES people(codice_fiscale),
    issuer_entity TEXT NOT NULL, state TEXT NOT NULL, card_file TEXT NOT NULL, guid TEXT NOT NULL,
    certificate_serial TEXT NOT NULL, expires_at INTEGER NOT NULL, replaces TEXT, delivered_to TEXT,
    created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS card_entities (
    card_number TEXT NOT NULL REFERENCES cards(card_number), entity TEXT NOT NULL REFERENCES entities(code),
    PRIMARY KEY (card_number, entity));
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY, card_number TEXT, subject TEXT NOT NULL, not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL, state TEXT NOT NULL, der BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS escrow (
    card_number TEXT PRIMARY KEY REFERENCES cards(card_number), sealed BLOB NOT NULL,
    releases INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS access_passwords (
    card_number TEXT PRIMARY KEY REFERENCES cards(card_number), verifier BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS workstations (
    name TEXT PRIMARY KEY, entity TEXT NOT NULL REFERENCES entities(code), kind TEXT NOT NULL,
    state TEXT NOT NULL, serial TEXT, requested_at INTEGER NOT NULL, issued_at INTEGER,
    not_after INTEGER, certificate BLOB, pkcs12 BLOB, sealed_password BLOB);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, kind TEXT NOT NULL,
    card_number TEXT, entity TEXT, actor TEXT, detail TEXT NOT NULL DEFAULT '');
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
";

impl Registry {
    /// Opens (creating if needed) the registry of a batch directory.
    pub fn open(batch_dir: &Path) -> Result<Self, RegistryError> {
        let path = batch_dir.join("registry.sqlite");
        crate::private_file::ensure_private(&path).map_err(|e| RegistryError::private(&path, e))?;
        let conn = Connection::open(&path).map_err(|e| RegistryError::open(&path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )?;
        // One transaction: a dozen CREATE statements would otherwise be a dozen durable commits.
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))?;
        Ok(Self { conn })
    }

    /// Opens an existing registry; a missing one is an error naming the batch.
    pub fn open_existing(batch_dir: &Path) -> Result<Self, RegistryError> {
        let path = batch_dir.join("registry.sqlite");
        if !path.exists() {
            return Err(RegistryError::open(
                &path,
                rusqlite::Error::InvalidPath(path.clone()),
            ));
        }
        Self::open(batch_dir)
    }

    pub(crate) fn transaction(&mut self) -> Result<Transaction<'_>, RegistryError> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, RegistryError> {
        meta_in(&self.conn, key)
    }

    /// This batch's identity in the CA's issuance index: a random id made on first use and kept in the
    /// registry, so the numbers a batch claims stay its own even if the batch directory is moved.
    pub fn batch_id(&mut self) -> Result<String, RegistryError> {
        batch_id_in(&self.conn)
    }

    /// A batch's set-up as **one** durable commit: its id (made on first use), the census (imported
    /// once, with its digest; a different census is refused and nothing is written), and whatever
    /// else the batch records up front (`also`, run inside the same transaction: the workstation
    /// requests). Returns the batch id.
    pub fn set_up_batch(
        &mut self,
        census: &Census,
        digest: &str,
        now: i64,
        also: impl FnOnce(&Transaction<'_>) -> Result<(), RegistryError>,
    ) -> Result<(String, CensusRecord), RegistryError> {
        let tx = self.transaction()?;
        let batch_id = batch_id_in(&tx)?;
        let record = match meta_in(&tx, "census_digest")? {
            None => {
                import_census_in(&tx, census, digest, now)?;
                CensusRecord::Imported
            }
            Some(previous) if previous == digest => CensusRecord::Same,
            // Dropping the transaction rolls it back.
            Some(_) => return Ok((batch_id, CensusRecord::Changed)),
        };
        also(&tx)?;
        tx.commit()?;
        Ok((batch_id, record))
    }

    /// The card number allocated to a person whose card is not committed yet (a resumed batch).
    pub fn allocation(
        &self,
        codice_fiscale: &str,
    ) -> Result<Option<(String, Option<String>)>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT a.card_number, a.replaces FROM allocations a
                 WHERE a.codice_fiscale = ?1 AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.card_number = a.card_number)",
                params![codice_fiscale],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Records the number allocated to a person before the card is made, so a crash never loses it.
    pub fn record_allocation(
        &mut self,
        codice_fiscale: &str,
        card_number: &str,
        replaces: Option<&str>,
    ) -> Result<(), RegistryError> {
        self.conn.execute(
            "INSERT INTO allocations (codice_fiscale, card_number, replaces) VALUES (?1, ?2, ?3)
             ON CONFLICT(codice_fiscale) DO UPDATE SET card_number = excluded.card_number, replaces = excluded.replaces",
            params![codice_fiscale, card_number, replaces],
        )?;
        Ok(())
    }

    /// The one commit point of a personalized card: card, links, certificate, escrow and event together.
    pub fn commit_card(&mut self, card: &NewCard<'_>) -> Result<(), RegistryError> {
        self.commit_cards(std::slice::from_ref(card))
    }

    /// Commits a whole group of cards in one transaction (one durable commit for the group): each card,
    /// its certificate, its sealed second halves and its `personalized` event, in the order given.
    pub fn commit_cards(&mut self, cards: &[NewCard<'_>]) -> Result<(), RegistryError> {
        let tx = self.transaction()?;
        for card in cards {
            insert_card(&tx, card)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn card_from_row(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<CardRow> {
        let card_number: String = row.get(0)?;
        let mut statement = self.conn.prepare_cached(
            "SELECT entity FROM card_entities WHERE card_number = ?1 ORDER BY entity",
        )?;
        let entities = statement
            .query_map(params![card_number], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        let surname: String = row.get(9)?;
        let name: String = row.get(10)?;
        let state_text: String = row.get(3)?;
        let state = CardState::parse(&state_text).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("card {card_number} has an unknown state {state_text:?}").into(),
            )
        })?;
        Ok(CardRow {
            card_number,
            codice_fiscale: row.get(1)?,
            issuer_entity: row.get(2)?,
            state,
            card_file: row.get(4)?,
            certificate_serial: row.get(5)?,
            expires_at: row.get(6)?,
            replaces: row.get(7)?,
            delivered_to: row.get(8)?,
            holder: format!("{surname} {name}"),
            entities,
        })
    }

    const CARD_COLUMNS: &'static str =
        "c.card_number, c.codice_fiscale, c.issuer_entity, c.state, c.card_file,
        c.certificate_serial, c.expires_at, c.replaces, c.delivered_to, p.surname, p.name
        FROM cards c JOIN people p ON p.codice_fiscale = c.codice_fiscale";

    pub fn cards(&self) -> Result<Vec<CardRow>, RegistryError> {
        let sql = format!("SELECT {} ORDER BY c.card_number", Self::CARD_COLUMNS);
        let mut statement = self.conn.prepare(&sql)?;
        let rows = statement.query_map([], |r| self.card_from_row(r))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The card whose certificate is exactly `certificate_der` (the one the bureau issued for it).
    pub fn card_by_certificate(
        &self,
        certificate_der: &[u8],
    ) -> Result<Option<CardRow>, RegistryError> {
        let number: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT card_number FROM certificates WHERE der = ?1",
                params![certificate_der],
                |r| r.get(0),
            )
            .optional()?;
        match number.flatten() {
            Some(number) => self.card(&number),
            None => Ok(None),
        }
    }

    pub fn card(&self, card_number: &str) -> Result<Option<CardRow>, RegistryError> {
        let sql = format!("SELECT {} WHERE c.card_number = ?1", Self::CARD_COLUMNS);
        Ok(self
            .conn
            .query_row(&sql, params![card_number], |r| self.card_from_row(r))
            .optional()?)
    }

    /// The person's current card: the newest one not blocked.
    pub fn current_card(&self, codice_fiscale: &str) -> Result<Option<CardRow>, RegistryError> {
        let sql = format!(
            "SELECT {} WHERE c.codice_fiscale = ?1 AND c.state != 'blocked' ORDER BY c.created_at DESC, c.card_number DESC LIMIT 1",
            Self::CARD_COLUMNS
        );
        Ok(self
            .conn
            .query_row(&sql, params![codice_fiscale], |r| self.card_from_row(r))
            .optional()?)
    }

    /// Everyone who has a card (of any state): [`Registry::has_card`] for a whole census in one query.
    pub fn people_with_cards(&self) -> Result<std::collections::HashSet<String>, RegistryError> {
        let mut statement = self
            .conn
            .prepare("SELECT DISTINCT codice_fiscale FROM cards")?;
        let rows = statement.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every recorded number not yet made into a card, by person: [`Registry::allocation`] for a whole
    /// census in one query (the replaced card, if any, is left out).
    pub fn open_allocations(
        &self,
    ) -> Result<std::collections::HashMap<String, String>, RegistryError> {
        let mut statement = self.conn.prepare(
            "SELECT a.codice_fiscale, a.card_number FROM allocations a
             WHERE NOT EXISTS (SELECT 1 FROM cards c WHERE c.card_number = a.card_number)",
        )?;
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn has_card(&self, codice_fiscale: &str) -> Result<bool, RegistryError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM cards WHERE codice_fiscale = ?1)",
            params![codice_fiscale],
            |r| r.get(0),
        )?)
    }

    /// `(email, profiles)` of a person in an entity.
    pub fn membership(
        &self,
        entity: &str,
        codice_fiscale: &str,
    ) -> Result<Option<(String, Vec<Profile>)>, RegistryError> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT email, profiles FROM memberships WHERE entity = ?1 AND codice_fiscale = ?2",
                params![entity, codice_fiscale],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(email, profiles)| {
            let profiles = profiles
                .split(';')
                .map(|text| {
                    Profile::parse(text).ok_or_else(|| {
                        RegistryError::Corrupt(format!(
                            "a membership with unknown profile {text:?}"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((email, profiles))
        })
        .transpose()
    }

    /// Entity codes a person belongs to, in census order.
    pub fn entities_of(&self, codice_fiscale: &str) -> Result<Vec<String>, RegistryError> {
        let mut statement = self
            .conn
            .prepare("SELECT entity FROM memberships WHERE codice_fiscale = ?1 ORDER BY rowid")?;
        let rows = statement.query_map(params![codice_fiscale], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<String>, _>>()?)
    }

    pub fn entity_name(&self, code: &str) -> Result<Option<String>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name FROM entities WHERE code = ?1",
                params![code],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// `(surname, name)` of a person.
    pub fn person(&self, codice_fiscale: &str) -> Result<Option<(String, String)>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT surname, name FROM people WHERE codice_fiscale = ?1",
                params![codice_fiscale],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Codici fiscali in census order.
    pub fn people(&self) -> Result<Vec<String>, RegistryError> {
        let mut statement = self
            .conn
            .prepare("SELECT codice_fiscale FROM people ORDER BY census_order")?;
        let rows = statement.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<String>, _>>()?)
    }

    /// The access-password verifier of a card (`None` for a card personalized before verifiers were
    /// kept: its holder logs in with the card only).
    pub fn password_verifier(&self, card_number: &str) -> Result<Option<Vec<u8>>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT verifier FROM access_passwords WHERE card_number = ?1",
                params![card_number],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn sealed_halves(&self, card_number: &str) -> Result<Option<Vec<u8>>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT sealed FROM escrow WHERE card_number = ?1",
                params![card_number],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The event log, oldest first.
    pub fn events(&self) -> Result<Vec<Event>, RegistryError> {
        let mut statement = self.conn.prepare(
            "SELECT at, kind, card_number, entity, actor, detail FROM events ORDER BY id",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        rows.map(|row| {
            let (at, kind, card_number, entity, actor, detail) = row?;
            let kind = EventKind::parse(&kind).ok_or_else(|| {
                RegistryError::Corrupt(format!("an event of unknown kind {kind:?}"))
            })?;
            Ok(Event {
                at,
                kind,
                card_number,
                entity,
                actor,
                detail,
            })
        })
        .collect()
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// What a batch's set-up found of its census.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CensusRecord {
    /// First run: the census is now in the registry.
    Imported,
    /// A rerun with the same census.
    Same,
    /// A rerun with another census: refused, nothing written.
    Changed,
}

fn meta_in(conn: &Connection, key: &str) -> Result<Option<String>, RegistryError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
        .optional()?)
}

fn batch_id_in(conn: &Connection) -> Result<String, RegistryError> {
    if let Some(id) = meta_in(conn, "batch_id")? {
        return Ok(id);
    }
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|_| {
        RegistryError::Corrupt("the operating system's random generator failed".into())
    })?;
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('batch_id', ?1)",
        params![hex::encode(random)],
    )?;
    meta_in(conn, "batch_id")?
        .ok_or_else(|| RegistryError::Corrupt("the batch id was not recorded".into()))
}

/// Records the census (once per batch), with its digest so a rerun can check it is the same one.
fn import_census_in(
    tx: &Transaction<'_>,
    census: &Census,
    digest: &str,
    now: i64,
) -> Result<(), RegistryError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('census_digest', ?1)",
        params![digest],
    )?;
    for e in &census.entities {
        let kind = match e.kind {
            EntityKind::Municipality => "comune",
            EntityKind::Prefecture => "prefettura",
        };
        tx.execute(
            "INSERT INTO entities VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                e.code,
                kind,
                e.name,
                e.monitored_workstations,
                e.workstations,
                e.employees,
                e.email_domains.join(";")
            ],
        )?;
    }
    for (order, p) in census.people.iter().enumerate() {
        tx.execute(
            "INSERT INTO people VALUES (?1, ?2, ?3, ?4)",
            params![p.codice_fiscale, p.surname, p.name, order as i64],
        )?;
        for r in &p.registrations {
            let profiles: Vec<String> = r.profiles.iter().map(|p| p.to_string()).collect();
            tx.execute(
                "INSERT INTO memberships VALUES (?1, ?2, ?3, ?4)",
                params![r.entity, p.codice_fiscale, r.email, profiles.join(";")],
            )?;
        }
    }
    append_event(
        tx,
        now,
        EventKind::CensusImported,
        None,
        None,
        None,
        &format!("{} people", census.people.len()),
    )?;
    Ok(())
}

/// Sets a card's state (inside a caller's transaction, with its event).
pub(crate) fn set_card_state(
    tx: &Transaction<'_>,
    card_number: &str,
    state: CardState,
) -> Result<(), RegistryError> {
    tx.execute(
        "UPDATE cards SET state = ?1 WHERE card_number = ?2",
        params![state.as_str(), card_number],
    )?;
    Ok(())
}

/// A card handed to `to` (the mayor or a delegate): delivered.
pub(crate) fn mark_delivered(
    tx: &Transaction<'_>,
    card_number: &str,
    to: &str,
) -> Result<(), RegistryError> {
    tx.execute(
        "UPDATE cards SET state = ?1, delivered_to = ?2 WHERE card_number = ?3",
        params![CardState::Delivered.as_str(), to, card_number],
    )?;
    Ok(())
}

/// One more release of a card's second halves.
pub(crate) fn count_release(tx: &Transaction<'_>, card_number: &str) -> Result<(), RegistryError> {
    tx.execute(
        "UPDATE escrow SET releases = releases + 1 WHERE card_number = ?1",
        params![card_number],
    )?;
    Ok(())
}

/// A certificate revoked (its card blocked, or its workstation).
pub(crate) fn revoke_certificate(tx: &Transaction<'_>, serial: &str) -> Result<(), RegistryError> {
    tx.execute(
        "UPDATE certificates SET state = 'revoked' WHERE serial = ?1",
        params![serial],
    )?;
    Ok(())
}

pub(crate) fn append_event(
    tx: &Transaction<'_>,
    at: i64,
    kind: EventKind,
    card_number: Option<&str>,
    entity: Option<&str>,
    actor: Option<&str>,
    detail: &str,
) -> Result<(), RegistryError> {
    tx.execute(
        "INSERT INTO events (at, kind, card_number, entity, actor, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at, kind.as_str(), card_number, entity, actor, detail],
    )?;
    Ok(())
}

/// One card's rows, inside the caller's transaction.
fn insert_card(tx: &Transaction<'_>, card: &NewCard<'_>) -> Result<(), RegistryError> {
    tx.prepare_cached(
        "INSERT INTO cards (card_number, codice_fiscale, issuer_entity, state, card_file, guid,
            certificate_serial, expires_at, replaces, created_at)
         VALUES (?1, ?2, ?3, 'personalized', ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        card.card_number,
        card.codice_fiscale,
        card.issuer_entity,
        card.card_file,
        card.guid,
        card.certificate_serial,
        card.not_after,
        card.replaces,
        card.now
    ])?;
    let mut member = tx.prepare_cached("INSERT INTO card_entities VALUES (?1, ?2)")?;
    for entity in card.entities {
        member.execute(params![card.card_number, entity])?;
    }
    tx.prepare_cached("INSERT INTO certificates VALUES (?1, ?2, ?3, ?4, ?5, 'valid', ?6)")?
        .execute(params![
            card.certificate_serial,
            card.card_number,
            format!("CN={}", card.codice_fiscale),
            card.not_before,
            card.not_after,
            card.certificate_der
        ])?;
    tx.prepare_cached("INSERT INTO escrow (card_number, sealed) VALUES (?1, ?2)")?
        .execute(params![card.card_number, card.sealed_second_halves])?;
    tx.prepare_cached("INSERT INTO access_passwords (card_number, verifier) VALUES (?1, ?2)")?
        .execute(params![card.card_number, card.password_verifier])?;
    append_event(
        tx,
        card.now,
        EventKind::Personalized,
        Some(card.card_number),
        Some(card.issuer_entity),
        None,
        "",
    )
}

#[cfg(test)]
mod state_tests {
    use super::{CardState, EventKind};

    #[test]
    fn every_state_round_trips_and_unknown_text_is_refused() {
        for state in [
            CardState::Personalized,
            CardState::Delivered,
            CardState::Active,
            CardState::Blocked,
            CardState::Expired,
        ] {
            assert_eq!(CardState::parse(state.as_str()), Some(state));
        }
        for text in ["", "Active", "revoked", "personalised", "blocked "] {
            assert_eq!(CardState::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn every_event_kind_round_trips_as_its_serialized_name_and_unknown_names_are_refused() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).expect("json");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        for text in [
            "",
            "Personalized",
            "personalised",
            "blocked",
            "halves released",
        ] {
            assert_eq!(EventKind::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn the_registry_and_its_wal_and_shared_memory_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut registry = super::Registry::open(dir.path()).expect("open");
        registry.batch_id().expect("a write");
        for name in [
            "registry.sqlite",
            "registry.sqlite-wal",
            "registry.sqlite-shm",
        ] {
            let mode = std::fs::metadata(dir.path().join(name))
                .expect(name)
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
}
