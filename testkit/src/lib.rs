//! Test support for the whole workspace, used only as a dev-dependency (and by the benchmark binaries):
//!
//! - [`Pcscd`]: private pcscd daemons with as many vpcd slots as a test asks for — one daemon holds
//!   [`READERS_PER_PCSCD`] readers; more slots start more daemons, each on a socket of its own. A
//!   cross-process lock makes test binaries take turns.
//! - [`EchoCard`]: the do-nothing card (answers `90 00`), the floor of every PC/SC benchmark.
//! - [`tool`]: one runner for external tools (opensc-tool, pkcs11-tool, yubico-piv-tool, ykman,
//!   certutil…): a timeout, captured output, secrets masked, failures that name the command and show
//!   what it printed.
//! - [`Terminating`]: a child process (a `tessera serve`) stopped with SIGTERM when the test ends.
//! - [`wait_for`]: polling with a deadline.
//! - [`browser`]: a real Firefox on an Xvfb display, driven through Marionette, its PIN dialog
//!   answered by xdotool.

pub mod browser;
mod echo_card;
mod pcscd;
mod process;
pub mod tool;

use std::time::{Duration, Instant};

pub use echo_card::EchoCard;
pub use pcscd::{
    Pcscd, PcscdError, CSOCK_ENV, FIRST_PORT, LOCK_PATH, MAX_SLOTS, READERS_PER_PCSCD, SLOTS,
    SLOTS_PER_ENTRY,
};
pub use process::Terminating;

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
