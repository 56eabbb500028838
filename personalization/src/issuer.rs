//! The bureau's issuance index, kept next to the staging CA (`CA_DIR/issued.sqlite`): card-number
//! counters per issuer and every certificate serial ever used. It outlives batches, so a card number or a
//! serial is never handed out twice — also across runs and across batches.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::registry::RegistryError;

pub struct Issuer {
    conn: Connection,
}

impl Issuer {
    pub fn open(ca_dir: &Path) -> Result<Self, RegistryError> {
        let path = ca_dir.join("issued.sqlite");
        let conn = Connection::open(&path).map_err(|e| RegistryError::open(&path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS counters (issuer TEXT PRIMARY KEY, next INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS serials (serial TEXT PRIMARY KEY, purpose TEXT NOT NULL, at INTEGER NOT NULL);",
        )?;
        crate::registry::make_private(&path);
        Ok(Self { conn })
    }

    /// The next card number of an issuer: its 6-character prefix (ISTAT code of the municipality, or
    /// province code + `000` for a prefecture) followed by a 6-digit progressive.
    pub fn allocate_card_number(&mut self, prefix: &str) -> Result<String, RegistryError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let next: i64 = tx
            .query_row(
                "SELECT next FROM counters WHERE issuer = ?1",
                params![prefix],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(1);
        if next > 999_999 {
            return Err(RegistryError::Exhausted(prefix.to_string()));
        }
        tx.execute(
            "INSERT INTO counters (issuer, next) VALUES (?1, ?2)
             ON CONFLICT(issuer) DO UPDATE SET next = excluded.next",
            params![prefix, next + 1],
        )?;
        tx.commit()?;
        Ok(format!("{prefix}{next:06}"))
    }

    /// A fresh random certificate serial, recorded so it is never used again.
    pub fn allocate_serial(&mut self, purpose: &str, now: i64) -> Result<[u8; 16], RegistryError> {
        loop {
            let serial = crate::ca::random_serial();
            let inserted = self.conn.execute(
                "INSERT OR IGNORE INTO serials (serial, purpose, at) VALUES (?1, ?2, ?3)",
                params![hex::encode(serial), purpose, now],
            )?;
            if inserted == 1 {
                return Ok(serial);
            }
        }
    }
}
