//! Tearing tests: run a command sequence once per possible power cut and check an invariant after each
//! recovery.
//!
//! For every command of the script and every persistent write that command makes, a fresh card runs the
//! commands before it, then the command with power cut at that write (cleanly, and again with the write
//! left half-done), then powers up again — which runs recovery — and hands the card to the caller's
//! invariant. The invariant sees the card powered, with the index of the cut command.

use crate::store::FaultPlan;
use crate::{Card, Silence};

/// Where power was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutPoint {
    /// Index of the command in the script.
    pub command: usize,
    /// The write (1-based) at which power was cut.
    pub write: u32,
    pub torn: bool,
}

/// Runs `script` with power cut at every write of every command; calls `invariant` after each recovery.
/// Returns the number of cut points checked (so a test can assert that there were some).
///
/// # Panics
/// If the invariant fails, or if a command the script expects to write answers without cutting.
pub fn check_every_cut_point(
    make_card: impl Fn() -> Card,
    script: &[Vec<u8>],
    invariant: impl Fn(&mut Card, CutPoint) -> Result<(), String>,
) -> usize {
    // First run: how many writes does each command make?
    let mut card = make_card();
    let writes: Vec<u32> = script
        .iter()
        .map(|apdu| {
            let _ = card.transmit(apdu);
            card.writes_last_command()
        })
        .collect();

    let mut checked = 0;
    for (index, &count) in writes.iter().enumerate() {
        for write in 1..=count {
            for torn in [false, true] {
                let cut = CutPoint {
                    command: index,
                    write,
                    torn,
                };
                let mut card = make_card();
                for apdu in &script[..index] {
                    let _ = card.transmit(apdu);
                }
                card.arm_power_cut(FaultPlan {
                    at_write: write,
                    torn,
                });
                let outcome = card.transmit(&script[index]);
                assert_eq!(
                    outcome,
                    Err(Silence::PowerLost),
                    "{cut:?}: the command answered instead of losing power"
                );
                card.power_on();
                if let Err(message) = invariant(&mut card, cut) {
                    panic!("invariant broken after a power cut at {cut:?}: {message}");
                }
                checked += 1;
            }
        }
    }
    checked
}
