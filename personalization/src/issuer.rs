//! The bureau's issuance index, kept next to the staging CA (`CA_DIR/issued.sqlite`): card-number
//! counters per issuer and every certificate serial ever used. It outlives batches, so a card number or a
//! serial is never handed out twice — also across runs and across batches.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::registry::RegistryError;

pub struct Issuer {
    conn: Connection,
}

impl Issuer {
    pub fn open(ca_dir: &Path) -> Result<Self, RegistryError> {
        let path = ca_dir.join("issued.sqlite");
        crate::private_file::ensure_private(&path).map_err(|e| RegistryError::private(&path, e))?;
        let conn = Connection::open(&path).map_err(|e| RegistryError::open(&path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             BEGIN IMMEDIATE;
             CREATE TABLE IF NOT EXISTS counters (issuer TEXT PRIMARY KEY, next INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS serials (serial TEXT PRIMARY KEY, purpose TEXT NOT NULL, at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS claims (owner TEXT PRIMARY KEY, value TEXT NOT NULL UNIQUE);
             COMMIT;",
        )?;
        Ok(Self { conn })
    }

    /// The card number claimed by `owner` (a batch, a person, a purpose): the one already allocated to it if
    /// there is one, else the issuer's next number. Allocation and claim are one transaction, so a crash
    /// at any instant leaves a number either claimed by exactly one owner or never allocated — and a
    /// rerun by the same owner gets the same number back, whatever step the previous run died at.
    ///
    /// The number is the issuer's 6-character prefix (ISTAT code of the municipality, or province code +
    /// `000` for a prefecture) followed by a 6-digit progressive.
    pub fn claim_card_number(
        &mut self,
        prefix: &str,
        owner: &str,
    ) -> Result<String, RegistryError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let number = claim_number_in(&tx, prefix, owner)?;
        tx.commit()?;
        Ok(number)
    }

    /// The card numbers and certificate serials of a whole group of cards, claimed in **one**
    /// transaction (one durable commit for the group instead of two per card). Each request claims the
    /// number owned by its `owner` (or keeps the number it already has, from the batch registry), then
    /// the serial owned by `certificate of card <number>`: both idempotent, so a group cut at any
    /// instant and claimed again gets back exactly the same numbers and serials, in the same order.
    pub fn claim_issuance(
        &mut self,
        requests: &[IssuanceRequest],
        now: i64,
    ) -> Result<Vec<Issuance>, RegistryError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut claimed = Vec::with_capacity(requests.len());
        for request in requests {
            let card_number = match request {
                IssuanceRequest::Known(number) => number.clone(),
                IssuanceRequest::Claim { prefix, owner } => claim_number_in(&tx, prefix, owner)?,
            };
            let serial = claim_serial_in(
                &tx,
                &format!("certificate of card {card_number}"),
                &format!("card {card_number}"),
                now,
            )?;
            claimed.push(Issuance {
                card_number,
                serial,
            });
        }
        tx.commit()?;
        Ok(claimed)
    }

    /// A fresh random certificate serial, recorded so it is never used again.
    pub fn allocate_serial(&mut self, purpose: &str, now: i64) -> Result<[u8; 16], RegistryError> {
        fresh_serial(&self.conn, purpose, now)
    }
}

/// The number of one card of a group to claim a serial for (see [`Issuer::claim_issuance`]).
pub enum IssuanceRequest {
    /// Claim the number `owner` (a batch and a person) owns, or the next one of the issuer whose
    /// 6-character number prefix is `prefix`.
    Claim { prefix: String, owner: String },
    /// The card already has this number (claimed earlier): only its serial is claimed.
    Known(String),
}

/// What a card was given: its number and its certificate's serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuance {
    pub card_number: String,
    pub serial: [u8; 16],
}

/// What `owner` claimed earlier, if anything.
fn claimed_by(tx: &Transaction<'_>, owner: &str) -> Result<Option<String>, RegistryError> {
    Ok(tx
        .prepare_cached("SELECT value FROM claims WHERE owner = ?1")?
        .query_row(params![owner], |r| r.get(0))
        .optional()?)
}

fn record_claim(tx: &Transaction<'_>, owner: &str, value: &str) -> Result<(), RegistryError> {
    tx.prepare_cached("INSERT INTO claims (owner, value) VALUES (?1, ?2)")?
        .execute(params![owner, value])?;
    Ok(())
}

/// A random serial never used before, recorded with its purpose.
fn fresh_serial(conn: &Connection, purpose: &str, now: i64) -> Result<[u8; 16], RegistryError> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO serials (serial, purpose, at) VALUES (?1, ?2, ?3)",
    )?;
    loop {
        let serial = crate::ca::random_serial();
        if insert.execute(params![hex::encode(serial), purpose, now])? == 1 {
            return Ok(serial);
        }
    }
}

/// The number claimed by `owner` inside `tx`: the one it already has, else the issuer's next.
fn claim_number_in(
    tx: &Transaction<'_>,
    prefix: &str,
    owner: &str,
) -> Result<String, RegistryError> {
    if let Some(number) = claimed_by(tx, owner)? {
        return Ok(number);
    }
    let next: i64 = tx
        .prepare_cached("SELECT next FROM counters WHERE issuer = ?1")?
        .query_row(params![prefix], |r| r.get(0))
        .optional()?
        .unwrap_or(1);
    if next > 999_999 {
        return Err(RegistryError::Exhausted(prefix.to_string()));
    }
    tx.prepare_cached(
        "INSERT INTO counters (issuer, next) VALUES (?1, ?2)
         ON CONFLICT(issuer) DO UPDATE SET next = excluded.next",
    )?
    .execute(params![prefix, next + 1])?;
    let number = format!("{prefix}{next:06}");
    record_claim(tx, owner, &number)?;
    Ok(number)
}

/// The serial claimed by `owner` inside `tx`: the one it already has, else a fresh one never used.
fn claim_serial_in(
    tx: &Transaction<'_>,
    owner: &str,
    purpose: &str,
    now: i64,
) -> Result<[u8; 16], RegistryError> {
    if let Some(serial) = claimed_by(tx, owner)? {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(&serial, &mut bytes).map_err(|_| {
            RegistryError::Corrupt(format!("claimed serial {serial:?} is not 16 hex bytes"))
        })?;
        return Ok(bytes);
    }
    let serial = fresh_serial(tx, purpose, now)?;
    record_claim(tx, owner, &hex::encode(serial))?;
    Ok(serial)
}
