//! Check results and their text and JUnit renderings.

use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// What the card did wrong, in one sentence.
    Fail(String),
    /// Why the check does not apply to this card.
    Skip(String),
}

impl Outcome {
    /// Turns a `Result` from a check's steps into an outcome.
    pub fn from_result(result: Result<Outcome, String>) -> Outcome {
        result.unwrap_or_else(Outcome::Fail)
    }
}

#[derive(Debug, Clone)]
pub struct CheckResult {
    pub id: &'static str,
    pub description: &'static str,
    pub outcome: Outcome,
    pub duration: Duration,
    pub transcript: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub suite: &'static str,
    /// The transport the checks ran through.
    pub target: String,
    pub results: Vec<CheckResult>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Pass))
    }

    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Fail(_)))
    }

    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skip(_)))
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }

    /// One line per check, then the totals line `N passed, N failed, N skipped`.
    pub fn text(&self) -> String {
        let mut out = format!("suite {} on {}\n", self.suite, self.target);
        for r in &self.results {
            let (mark, detail) = match &r.outcome {
                Outcome::Pass => ("PASS", String::new()),
                Outcome::Fail(why) => ("FAIL", format!(" — {why}")),
                Outcome::Skip(why) => ("SKIP", format!(" — {why}")),
            };
            out.push_str(&format!("{mark} {}: {}{detail}\n", r.id, r.description));
        }
        out.push_str(&format!(
            "suite {}: {} passed, {} failed, {} skipped\n",
            self.suite,
            self.passed(),
            self.failed(),
            self.skipped()
        ));
        out
    }

    /// JUnit XML of this report alone.
    pub fn junit(&self) -> Result<String, quick_junit::SerializeError> {
        junit(std::slice::from_ref(self))
    }

    fn test_suite(&self) -> TestSuite {
        let mut suite = TestSuite::new(self.suite);
        for r in &self.results {
            let status = match &r.outcome {
                Outcome::Pass => TestCaseStatus::success(),
                Outcome::Fail(why) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(why.as_str());
                    status
                }
                Outcome::Skip(why) => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(why.as_str());
                    status
                }
            };
            let mut case = TestCase::new(r.id, status);
            case.set_classname(format!("{}.{}", self.suite, self.target));
            case.set_time(r.duration);
            if matches!(r.outcome, Outcome::Fail(_)) {
                case.set_system_out(r.transcript.join("\n"));
            }
            suite.add_test_case(case);
        }
        suite
    }
}

/// JUnit XML of several suites' reports, with each failing check's transcript in its system-out.
pub fn junit(reports: &[Report]) -> Result<String, quick_junit::SerializeError> {
    let mut junit = quick_junit::Report::new("tessera-conformance");
    for report in reports {
        junit.add_test_suite(report.test_suite());
    }
    junit.to_string()
}

/// The closing line over several reports: `conformance: N passed, N failed, N skipped`.
pub fn totals(reports: &[Report]) -> String {
    let sum = |f: fn(&Report) -> usize| reports.iter().map(f).sum::<usize>();
    format!(
        "conformance: {} passed, {} failed, {} skipped",
        sum(Report::passed),
        sum(Report::failed),
        sum(Report::skipped)
    )
}
