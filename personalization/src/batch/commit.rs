//! The commit protocol of a group of cards, and the count of durable steps a crash test cuts at.
//!
//! For each group: (1) one issuance-index transaction claims every card number and certificate serial
//! (idempotent by owner, see [`crate::issuer::Issuer::claim_issuance`]); the cards are made in memory
//! and their image and envelope files written (`line`, [`write_files`]); (2) **one** durability barrier
//! makes all of them durable; (3) one registry transaction commits every card, certificate, sealed
//! second halves and `personalized` event. Nothing of a group is released before (3): a crash anywhere
//! before it leaves claimed numbers and files no record refers to, and the rerun remakes the same group
//! under the same numbers.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use super::line::MadeCard;
use super::BatchError;
use crate::envelope;
use crate::private_file;
use crate::registry::Registry;

/// Counts the durable steps of a batch (each commit, each durability barrier), and stops the batch
/// after the N-th when a crash is injected. Stopping returns an error that nothing above handles, so
/// what is on disk is exactly what a process killed at that instant would leave.
pub struct DurableSteps {
    done: Cell<u64>,
    crash_after: Option<u64>,
}

impl DurableSteps {
    pub fn new(crash_after: Option<u64>) -> Self {
        Self {
            done: Cell::new(0),
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

/// Writes one made card's image and envelope into the batch, unsynced (before the barrier);
/// returns the paths written. The cards' own workers call it, so the files of a group are written on
/// every core. A file left by an interrupted run was never committed nor released: it is overwritten.
pub(crate) fn write_files(batch_dir: &Path, card: &MadeCard) -> Result<[PathBuf; 3], BatchError> {
    let image = batch_dir.join(&card.card_file);
    write(&image, &card.image)?;
    let (pdf, json) = envelope::paths(&batch_dir.join("envelopes"), &card.order.card_number);
    write(&pdf, &card.envelope.pdf)?;
    write(&json, card.envelope.json.as_bytes())?;
    Ok([image, pdf, json])
}

/// Steps (2) and (3) for a group of made cards whose files are written: one barrier, one registry
/// commit.
pub(crate) fn commit_group(
    steps: &DurableSteps,
    registry: &mut Registry,
    batch_dir: &Path,
    made: &[(MadeCard, [PathBuf; 3])],
    now: i64,
) -> Result<(), BatchError> {
    let written: Vec<&Path> = made
        .iter()
        .flat_map(|(_, paths)| paths.iter().map(PathBuf::as_path))
        .collect();
    // INVARIANT: every card image and envelope of the group is durable before the registry says any of
    // its cards exists.
    private_file::sync_filesystem(batch_dir, &written).map_err(|source| BatchError::Io {
        action: "make durable the cards written in",
        path: batch_dir.to_path_buf(),
        source,
    })?;
    steps.took("group's card images and envelopes durable")?;
    let rows: Vec<_> = made
        .iter()
        .map(|(card, _)| card.registry_rows(now))
        .collect();
    registry.commit_cards(&rows)?;
    steps.took("group committed")?;
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), BatchError> {
    private_file::write_unsynced(path, bytes).map_err(|source| BatchError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}
