//! Test support for the whole workspace (feature `testing`): a private pcscd with
//! vpcd slots, a do-nothing card, and polling.

mod echo_card;
mod pcscd;

use std::time::{Duration, Instant};

pub use echo_card::EchoCard;
pub use pcscd::{Pcscd, PcscdError, SLOTS};

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether
/// it held.
pub fn wait_for(mut condition: impl FnMut() -> bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
