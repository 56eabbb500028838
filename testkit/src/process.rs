//! A child process a test started (a `tessera serve`, say) that must not outlive the test.

use std::process::{Child, Command};
use std::time::Duration;

use crate::wait_for;

/// A child stopped with SIGTERM — the signal `tessera serve` shuts down cleanly on — when the test
/// asks or when it is dropped, even by a failing assertion; killed if it has not exited 5 s later.
pub struct Terminating(Child);

impl Terminating {
    pub fn new(child: Child) -> Self {
        Self(child)
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code (`None` when it had to be killed
    /// or died of a signal).
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let mut status = None;
        if wait_for(
            || match self.0.try_wait() {
                Ok(Some(exit)) => {
                    status = Some(exit);
                    true
                }
                _ => false,
            },
            Duration::from_secs(5),
        ) {
            return status.and_then(|s| s.code());
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        None
    }

    /// Whether the child is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Terminating {
    fn drop(&mut self) {
        if self.running() {
            self.terminate();
        }
    }
}
