//! The card's error type and the ONE place that decides which status word goes on the wire for it.

use apdu::StatusWord;
use thiserror::Error;

use crate::crypto::CryptoError;
use crate::store::StoreError;

/// Everything an applet or the OS can fail with while processing a command.
///
/// Each variant maps to exactly one status word in [`CardError::status_word`], except [`CardError::PowerLost`],
/// which never reaches the host: power was cut, so the card does not answer at all.
#[derive(Debug, Error)]
pub enum CardError {
    /// An explicit ISO status word chosen by the applet (e.g. `63 Cx`).
    #[error("status {0}")]
    Status(StatusWord),
    #[error("wrong length")]
    WrongLength,
    #[error("malformed command data: {0}")]
    IncorrectData(#[from] apdu::tlv::TlvError),
    #[error("invalid command data")]
    InvalidData,
    #[error("incorrect P1/P2")]
    IncorrectP1P2,
    #[error("instruction not supported")]
    InsNotSupported,
    #[error("class not supported")]
    ClaNotSupported,
    #[error("function not supported")]
    FunctionNotSupported,
    #[error("not found")]
    NotFound,
    #[error("referenced data not found")]
    ReferenceNotFound,
    #[error("security status not satisfied")]
    SecurityStatusNotSatisfied,
    #[error("authentication method blocked")]
    AuthenticationBlocked,
    #[error("conditions of use not satisfied")]
    ConditionsNotSatisfied,
    #[error("persistent store: {0}")]
    Store(StoreError),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("card image could not be saved: {0}")]
    SaveFailed(String),
    #[error("power lost during the command")]
    PowerLost,
}

impl From<StoreError> for CardError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::PowerLost => CardError::PowerLost,
            other => CardError::Store(other),
        }
    }
}

impl CardError {
    /// The status word the card answers; `None` when the card must stay silent (power was lost).
    pub fn status_word(&self) -> Option<StatusWord> {
        Some(match self {
            CardError::Status(sw) => *sw,
            CardError::WrongLength => StatusWord::WRONG_LENGTH,
            CardError::IncorrectData(_) | CardError::InvalidData => StatusWord::INCORRECT_DATA,
            CardError::IncorrectP1P2 => StatusWord::INCORRECT_P1P2,
            CardError::InsNotSupported => StatusWord::INS_NOT_SUPPORTED,
            CardError::ClaNotSupported => StatusWord::CLA_NOT_SUPPORTED,
            CardError::FunctionNotSupported => StatusWord::FUNCTION_NOT_SUPPORTED,
            CardError::NotFound => StatusWord::NOT_FOUND,
            CardError::ReferenceNotFound => StatusWord::REFERENCE_NOT_FOUND,
            CardError::SecurityStatusNotSatisfied => StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            CardError::AuthenticationBlocked => StatusWord::AUTH_METHOD_BLOCKED,
            CardError::ConditionsNotSatisfied => StatusWord::CONDITIONS_NOT_SATISFIED,
            CardError::Store(StoreError::Full { .. }) => StatusWord::NOT_ENOUGH_MEMORY,
            CardError::Store(StoreError::TransactionInProgress | StoreError::NoTransaction) => {
                StatusWord::CONDITIONS_NOT_SATISFIED
            }
            CardError::Store(StoreError::ValueTooLarge(_)) => StatusWord::NOT_ENOUGH_MEMORY,
            CardError::Store(StoreError::PowerLost) | CardError::PowerLost => return None,
            CardError::SaveFailed(_) => StatusWord::MEMORY_FAILURE,
            // Crypto failures stay opaque: the host learns nothing about why.
            CardError::Crypto(_) => StatusWord::UNKNOWN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_one_status_word() {
        let table: Vec<(CardError, Option<u16>)> = vec![
            (
                CardError::Status(StatusWord::remaining_retries(2)),
                Some(0x63C2),
            ),
            (CardError::WrongLength, Some(0x6700)),
            (
                CardError::IncorrectData(apdu::tlv::TlvError::Truncated(0)),
                Some(0x6A80),
            ),
            (CardError::InvalidData, Some(0x6A80)),
            (CardError::IncorrectP1P2, Some(0x6A86)),
            (CardError::InsNotSupported, Some(0x6D00)),
            (CardError::ClaNotSupported, Some(0x6E00)),
            (CardError::FunctionNotSupported, Some(0x6A81)),
            (CardError::NotFound, Some(0x6A82)),
            (CardError::ReferenceNotFound, Some(0x6A88)),
            (CardError::SecurityStatusNotSatisfied, Some(0x6982)),
            (CardError::AuthenticationBlocked, Some(0x6983)),
            (CardError::ConditionsNotSatisfied, Some(0x6985)),
            (
                CardError::Store(StoreError::Full {
                    needed: 10,
                    free: 2,
                }),
                Some(0x6A84),
            ),
            (
                CardError::Store(StoreError::ValueTooLarge(70000)),
                Some(0x6A84),
            ),
            (
                CardError::Store(StoreError::TransactionInProgress),
                Some(0x6985),
            ),
            (CardError::Store(StoreError::NoTransaction), Some(0x6985)),
            (CardError::Crypto(CryptoError::InvalidKey), Some(0x6F00)),
            (CardError::SaveFailed("disk full".into()), Some(0x6581)),
            (CardError::PowerLost, None),
            (CardError::from(StoreError::PowerLost), None),
        ];
        for (error, expected) in table {
            assert_eq!(
                error.status_word().map(StatusWord::to_u16),
                expected,
                "{error:?}"
            );
        }
    }
}
