//! Conformance checks that run against any card through a [`Transport`]: the in-process card, a virtual
//! card behind pcscd, or a physical card in a real reader. Each check either passes, fails with one
//! sentence saying what the card did wrong, or is skipped with the reason. Reports print as text and as
//! JUnit XML for CI, and as a self-contained HTML page for people.

mod atr;
mod cns;
mod html;
mod identity;
mod piv;
mod report;
mod runtime;
mod session;

pub use atr::{parse_atr, Atr};
pub use html::{escape, html, RunInfo};
pub use identity::{identify, CardIdentity};
pub use report::{junit, totals, CheckResult, Outcome, Report};
pub use session::Session;

use std::time::Instant;

use card_transport::Transport;

/// One conformance check.
pub struct Check {
    /// Stable identifier, e.g. `runtime.get-response`.
    pub id: &'static str,
    pub description: &'static str,
    pub run: fn(&mut Session<'_>) -> Outcome,
}

/// A named list of checks.
pub struct Suite {
    pub name: &'static str,
    pub checks: Vec<Check>,
}

/// The card-runtime suite: ATR, SELECT, response pieces, chaining, channels, PIN status.
pub fn runtime_suite() -> Suite {
    runtime::suite()
}

/// PIV checks that never change the card (safe on physical cards): objects, PIN status, error answers.
pub fn piv_suite() -> Suite {
    piv::suite()
}

/// Italian CNS checks that never change the card (safe on physical cards): ATR, file system, the files
/// OpenSC reads, PIN status.
pub fn cns_suite() -> Suite {
    cns::suite()
}

/// Every suite, in the order they run.
pub fn all_suites() -> Vec<Suite> {
    vec![runtime::suite(), piv::suite(), cns::suite()]
}

/// Runs every check of `suite`, resetting the card before each so checks do not depend on each other.
pub fn run(suite: &Suite, transport: &mut dyn Transport) -> Report {
    let target = transport.name();
    let mut results = Vec::new();
    for check in &suite.checks {
        let started = Instant::now();
        let mut session = Session::new(transport);
        let outcome = match session.reset() {
            Ok(()) => (check.run)(&mut session),
            Err(error) => Outcome::Fail(format!("could not reset the card: {error}")),
        };
        results.push(CheckResult {
            id: check.id,
            description: check.description,
            outcome,
            duration: started.elapsed(),
            transcript: session.into_transcript(),
        });
    }
    Report {
        suite: suite.name,
        target,
        results,
    }
}
