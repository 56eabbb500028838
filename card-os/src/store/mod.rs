//! Persistent memory: the card's EEPROM, modelled as records owned by applets, with an undo journal that
//! makes transactions (and every single write) atomic across power loss. See `card-os/STORE.md`.
//!
//! The model is physical: a write happens in steps (undo entry first, then the data), and a `FaultPlan`
//! (feature `testing`) can cut power at any write, optionally leaving the data half-written. Recovery at the next power-up
//! rolls back whatever the journal still holds, which gives back the last committed state.

mod image;

pub use image::{CardImage, Durability, ImageError, ImageFile, FORMAT_VERSION};

use std::collections::BTreeMap;

use thiserror::Error;
use zeroize::Zeroize;

/// The applet that owns a record: its index in the card's applet table.
pub type Owner = u8;

/// Bytes each record costs beyond its value (owner, id, length), as on a real card's allocator.
pub const RECORD_OVERHEAD: usize = 8;

/// The largest single record.
pub const MAX_RECORD_LEN: usize = 0xFFFF;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey {
    pub owner: Owner,
    pub id: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StoreError {
    #[error("not enough persistent memory: {needed} bytes needed, {free} free")]
    Full { needed: usize, free: usize },
    #[error("a record of {0} bytes is larger than the 65535-byte maximum")]
    ValueTooLarge(usize),
    #[error("a transaction is already in progress")]
    TransactionInProgress,
    #[error("no transaction in progress")]
    NoTransaction,
    #[error("power was lost")]
    PowerLost,
}

mod fault {
    /// Where to cut power: at the `at_write`-th persistent write of the next command (1-based).
    ///
    /// A test tool (feature `testing`): release builds carry the write counter but no way to arm a cut.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
    pub struct FaultPlan {
        pub at_write: u32,
        /// Leave the value half-written (a torn write) rather than cutting cleanly before it.
        pub torn: bool,
    }
}

#[cfg(any(test, feature = "testing"))]
pub use fault::FaultPlan;
#[cfg(not(any(test, feature = "testing")))]
pub(crate) use fault::FaultPlan;

/// An undo entry: a record's value before the transaction first touched it (`None`: it did not exist).
type UndoEntry = (RecordKey, Option<Vec<u8>>);

#[derive(Debug, Default, Clone)]
struct FaultState {
    plan: Option<FaultPlan>,
    writes: u32,
    tripped: bool,
}

/// The EEPROM.
#[derive(Clone)]
pub struct Eeprom {
    capacity: usize,
    records: BTreeMap<RecordKey, Vec<u8>>,
    used: usize,
    /// The undo journal. `Some` while a transaction or a single write is in flight; if it is still
    /// there at power-up, recovery rolls it back.
    journal: Option<Vec<UndoEntry>>,
    /// Whether an explicit transaction is open (as opposed to the implicit one of a single write).
    in_transaction: bool,
    fault: FaultState,
    dirty: bool,
}

enum Step {
    Proceed,
    Cut { torn: bool },
}

impl Eeprom {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            records: BTreeMap::new(),
            used: 0,
            journal: None,
            in_transaction: false,
            fault: FaultState::default(),
            dirty: true,
        }
    }

    pub(crate) fn from_parts(
        capacity: usize,
        records: BTreeMap<RecordKey, Vec<u8>>,
        journal: Option<Vec<UndoEntry>>,
    ) -> Self {
        let used = records.values().map(|v| v.len() + RECORD_OVERHEAD).sum();
        Self {
            capacity,
            records,
            used,
            journal,
            in_transaction: false,
            fault: FaultState::default(),
            dirty: false,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn used(&self) -> usize {
        self.used
    }

    pub fn free(&self) -> usize {
        self.capacity.saturating_sub(self.used)
    }

    pub(crate) fn records(&self) -> &BTreeMap<RecordKey, Vec<u8>> {
        &self.records
    }

    pub(crate) fn journal(&self) -> Option<&Vec<UndoEntry>> {
        self.journal.as_ref()
    }

    pub fn get(&self, key: RecordKey) -> Option<&[u8]> {
        self.records.get(&key).map(Vec::as_slice)
    }

    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    pub fn needs_recovery(&self) -> bool {
        self.journal.is_some()
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub(crate) fn mark_clean(&mut self) {
        self.dirty = false;
    }

    /// Starts counting writes for a new command, arming `plan` if given.
    pub(crate) fn begin_command(&mut self, plan: Option<FaultPlan>) {
        self.fault = FaultState {
            plan,
            writes: 0,
            tripped: false,
        };
    }

    /// Persistent writes made by the current (or last) command.
    pub fn writes_this_command(&self) -> u32 {
        self.fault.writes
    }

    pub fn power_was_lost(&self) -> bool {
        self.fault.tripped
    }

    /// One physical write step: counts it and decides whether power is cut here.
    fn step(&mut self) -> Result<Step, StoreError> {
        if self.fault.tripped {
            return Err(StoreError::PowerLost);
        }
        self.fault.writes += 1;
        match self.fault.plan {
            Some(plan) if plan.at_write == self.fault.writes => {
                self.fault.tripped = true;
                Ok(Step::Cut { torn: plan.torn })
            }
            _ => Ok(Step::Proceed),
        }
    }

    /// Writes (`Some`) or deletes (`None`) a record. Outside a transaction the write is atomic by itself.
    pub fn write(&mut self, key: RecordKey, value: Option<&[u8]>) -> Result<(), StoreError> {
        let new_len = value.map_or(0, |v| v.len() + RECORD_OVERHEAD);
        if let Some(v) = value {
            if v.len() > MAX_RECORD_LEN {
                return Err(StoreError::ValueTooLarge(v.len()));
            }
        }
        let old_len = self
            .records
            .get(&key)
            .map_or(0, |v| v.len() + RECORD_OVERHEAD);
        let free_after_removal = self.capacity.saturating_sub(self.used - old_len);
        if new_len > free_after_removal {
            return Err(StoreError::Full {
                needed: new_len,
                free: self.free(),
            });
        }
        let step = self.step()?;
        self.dirty = true;
        if !self.in_transaction {
            // A single write is its own one-entry transaction.
            self.journal = Some(Vec::new());
        }
        // INVARIANT: the undo entry is recorded before the data changes.
        self.journal_old_value(key);
        if let Step::Cut { torn } = step {
            if torn {
                let garbled = half_written(self.records.get(&key), value.unwrap_or(&[]));
                self.set_record(key, Some(garbled));
            }
            return Err(StoreError::PowerLost);
        }
        self.set_record(key, value.map(<[u8]>::to_vec));
        if !self.in_transaction {
            self.journal = None;
        }
        Ok(())
    }

    fn journal_old_value(&mut self, key: RecordKey) {
        let old = self.records.get(&key).cloned();
        if let Some(journal) = &mut self.journal {
            if !journal.iter().any(|(k, _)| *k == key) {
                journal.push((key, old));
            }
        }
    }

    fn set_record(&mut self, key: RecordKey, value: Option<Vec<u8>>) {
        if let Some(mut old) = self.records.remove(&key) {
            self.used -= old.len() + RECORD_OVERHEAD;
            old.zeroize();
        }
        if let Some(value) = value {
            self.used += value.len() + RECORD_OVERHEAD;
            self.records.insert(key, value);
        }
    }

    pub fn begin(&mut self) -> Result<(), StoreError> {
        if self.fault.tripped {
            return Err(StoreError::PowerLost);
        }
        if self.in_transaction {
            return Err(StoreError::TransactionInProgress);
        }
        self.in_transaction = true;
        self.journal = Some(Vec::new());
        self.dirty = true;
        Ok(())
    }

    /// Commits the open transaction: dropping the journal is the single step that makes it durable.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if !self.in_transaction {
            return Err(StoreError::NoTransaction);
        }
        if let Step::Cut { .. } = self.step()? {
            return Err(StoreError::PowerLost);
        }
        // INVARIANT: a transaction's writes become permanent only here, all at once.
        self.journal = None;
        self.in_transaction = false;
        self.dirty = true;
        Ok(())
    }

    /// Aborts the open transaction, restoring every record it touched.
    pub fn abort(&mut self) -> Result<(), StoreError> {
        if !self.in_transaction {
            return Err(StoreError::NoTransaction);
        }
        if let Step::Cut { .. } = self.step()? {
            return Err(StoreError::PowerLost);
        }
        self.roll_back();
        Ok(())
    }

    fn roll_back(&mut self) {
        if let Some(journal) = self.journal.take() {
            for (key, old) in journal.into_iter().rev() {
                self.set_record(key, old);
            }
        }
        self.in_transaction = false;
        self.dirty = true;
    }

    /// Power-up recovery: undo whatever an interrupted transaction or write left behind.
    /// Returns whether anything was rolled back.
    pub fn recover(&mut self) -> bool {
        self.fault = FaultState::default();
        let rolled_back = self.journal.is_some();
        if rolled_back {
            self.roll_back();
        }
        self.in_transaction = false;
        rolled_back
    }

    /// A copy without the fault state, for snapshots.
    pub(crate) fn snapshot(&self) -> Eeprom {
        let mut copy = self.clone();
        copy.fault = FaultState::default();
        copy.in_transaction = false;
        copy
    }

    /// Every record of one owner (used when an applet is removed, and by tests).
    pub fn records_of(&self, owner: Owner) -> impl Iterator<Item = (u16, &[u8])> {
        self.records
            .iter()
            .filter(move |(k, _)| k.owner == owner)
            .map(|(k, v)| (k.id, v.as_slice()))
    }
}

/// What a write cut in the middle leaves: the first half of the new bytes over the old ones.
fn half_written(old: Option<&Vec<u8>>, new: &[u8]) -> Vec<u8> {
    let half = new.len() / 2;
    let mut out: Vec<u8> = new[..half].to_vec();
    for i in half..new.len().max(1) {
        out.push(old.and_then(|o| o.get(i)).copied().unwrap_or(0xFF));
    }
    out
}

impl std::fmt::Debug for Eeprom {
    /// Record contents may be keys or PINs: only sizes are printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eeprom")
            .field("capacity", &self.capacity)
            .field("used", &self.used)
            .field("records", &self.records.len())
            .field("journal", &self.journal.as_ref().map(Vec::len))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: RecordKey = RecordKey { owner: 0, id: 1 };
    const B: RecordKey = RecordKey { owner: 0, id: 2 };

    #[test]
    fn transaction_commit_and_abort() {
        let mut e = Eeprom::new(1000);
        e.write(A, Some(b"old")).unwrap();
        e.begin().unwrap();
        e.write(A, Some(b"new")).unwrap();
        e.write(B, Some(b"b")).unwrap();
        e.abort().unwrap();
        assert_eq!((e.get(A), e.get(B)), (Some(&b"old"[..]), None));
        e.begin().unwrap();
        assert_eq!(e.begin(), Err(StoreError::TransactionInProgress));
        e.write(A, Some(b"new")).unwrap();
        e.write(A, None).unwrap();
        e.write(B, Some(b"b")).unwrap();
        e.commit().unwrap();
        assert_eq!((e.get(A), e.get(B)), (None, Some(&b"b"[..])));
        assert_eq!(e.commit(), Err(StoreError::NoTransaction));
        assert!(!e.needs_recovery());
    }

    #[test]
    fn capacity_is_enforced_and_accounts_for_replacement() {
        let mut e = Eeprom::new(2 * RECORD_OVERHEAD + 10);
        e.write(A, Some(&[0; 6])).unwrap();
        assert_eq!(
            e.write(B, Some(&[0; 5])),
            Err(StoreError::Full {
                needed: 5 + RECORD_OVERHEAD,
                free: 4 + RECORD_OVERHEAD
            })
        );
        // Replacing a record frees its old bytes first.
        e.write(A, Some(&[0; 10])).unwrap();
        e.write(A, None).unwrap();
        assert_eq!(e.used(), 0);
        e.write(B, Some(&[0; 10])).unwrap();
        assert_eq!(e.free(), RECORD_OVERHEAD);
    }

    #[test]
    fn cut_during_single_write_keeps_old_value() {
        for torn in [false, true] {
            let mut e = Eeprom::new(1000);
            e.write(A, Some(b"committed")).unwrap();
            e.begin_command(Some(FaultPlan { at_write: 1, torn }));
            assert_eq!(e.write(A, Some(b"replacement")), Err(StoreError::PowerLost));
            assert_eq!(e.write(B, Some(b"x")), Err(StoreError::PowerLost));
            assert!(e.needs_recovery());
            assert!(e.recover());
            assert_eq!(e.get(A), Some(&b"committed"[..]), "torn={torn}");
            assert_eq!(e.get(B), None);
        }
    }

    #[test]
    fn cut_at_every_step_of_a_transaction_gives_all_or_nothing() {
        // Steps: write A, write B, commit.
        for at_write in 1..=3 {
            for torn in [false, true] {
                let mut e = Eeprom::new(1000);
                e.write(A, Some(b"a0")).unwrap();
                e.write(B, Some(b"b0")).unwrap();
                e.begin_command(Some(FaultPlan { at_write, torn }));
                let result = (|| {
                    e.begin()?;
                    e.write(A, Some(b"a1-longer"))?;
                    e.write(B, Some(b"b1"))?;
                    e.commit()
                })();
                assert_eq!(result, Err(StoreError::PowerLost));
                e.recover();
                assert_eq!((e.get(A), e.get(B)), (Some(&b"a0"[..]), Some(&b"b0"[..])));
                assert_eq!(e.used(), 2 * (2 + RECORD_OVERHEAD));
            }
        }
    }

    #[test]
    fn half_written_value_differs_from_both() {
        let old = b"AAAAAAAA".to_vec();
        assert_eq!(half_written(Some(&old), b"BBBBBBBB"), b"BBBBAAAA");
        assert_eq!(half_written(None, b"BB"), b"B\xFF");
    }
}
