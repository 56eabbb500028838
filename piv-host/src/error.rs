use apdu::StatusWord;
use card_transport::TransportError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PivError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{operation} answered {sw}")]
    Refused {
        operation: &'static str,
        sw: StatusWord,
    },
    #[error("{operation}: unexpected answer ({detail})")]
    Unexpected {
        operation: &'static str,
        detail: String,
    },
    #[error("{what} must be {expected}, got {got}")]
    BadLength {
        what: &'static str,
        expected: String,
        got: usize,
    },
    #[error(
        "the card did not prove it knows the management key: its answer to our challenge is wrong"
    )]
    CardNotAuthenticated,
    #[error("no random numbers from the operating system: {0}")]
    Random(String),
}

impl PivError {
    /// The card's status word, when the card refused.
    pub fn status_word(&self) -> Option<StatusWord> {
        match self {
            PivError::Refused { sw, .. } => Some(*sw),
            _ => None,
        }
    }
}

pub(crate) fn unexpected(operation: &'static str, detail: impl std::fmt::Display) -> PivError {
    PivError::Unexpected {
        operation,
        detail: detail.to_string(),
    }
}

impl From<apdu::CommandError> for PivError {
    fn from(error: apdu::CommandError) -> Self {
        PivError::Transport(TransportError::Command(error))
    }
}
