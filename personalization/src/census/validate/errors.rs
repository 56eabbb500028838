//! The errors of one census: every one found, listed up to a bound (the first by location), so a
//! file with an error on each of a million rows cannot make the bureau hold a million messages.

use crate::census::limits::MAX_LISTED_ERRORS;
use crate::census::{sorted, CensusError, ErrorKind, Location};

#[derive(Debug, Default)]
pub(crate) struct ErrorList {
    /// Errors in order of detection, except that a sorted prefix of them may be the survivors of an
    /// earlier trim.
    errors: Vec<CensusError>,
    /// Errors found but not listed (past [`MAX_LISTED_ERRORS`] by location).
    dropped: usize,
}

impl ErrorList {
    pub fn push(&mut self, error: CensusError) {
        self.errors.push(error);
        if self.errors.len() >= 2 * MAX_LISTED_ERRORS {
            self.trim();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Keeps the first [`MAX_LISTED_ERRORS`] by location. The sort is stable and every survivor
    /// of an earlier trim was detected before the errors after it, so errors at the same place keep
    /// their order of detection.
    fn trim(&mut self) {
        let errors = sorted(std::mem::take(&mut self.errors));
        let mut errors = errors;
        if errors.len() > MAX_LISTED_ERRORS {
            self.dropped += errors.len() - MAX_LISTED_ERRORS;
            errors.truncate(MAX_LISTED_ERRORS);
        }
        self.errors = errors;
    }

    /// The listed errors sorted by location, with a last line counting the others.
    pub fn into_sorted(mut self) -> Vec<CensusError> {
        self.trim();
        let mut errors = self.errors;
        if self.dropped > 0 {
            errors.push(CensusError::new(
                Location {
                    sheet: None,
                    row: 0,
                    column: None,
                },
                ErrorKind::TooLarge,
                format!(
                    "and {} more errors (only the first {MAX_LISTED_ERRORS} are listed)",
                    self.dropped
                ),
            ));
        }
        errors
    }
}
