//! Every status word the card sends is decided in this file.
//!
//! - A **refusal** is a [`CardError`]; [`CardError::status_word`] is the one mapping to the wire, and
//!   the dispatcher converts in one place, tracing the variant (with its context) next to the status word.
//! - A **warning** answered together with data (`62 82` end of file) is a [`Warning`], set on the reply.
//! - **Completion** — `90 00`, and `61 xx` when more response bytes wait for GET RESPONSE — comes from
//!   [`completed`] and [`more_data`].
//!
//! # How an applet reports a refusal
//! Return `Err(CardError::…)` from `Applet::process` (or `select` / `install`) with the variant that says
//! what was wrong, in ISO 7816-4's words: `Err(CardError::WrongLength)`,
//! `Err(CardError::SecurityStatusNotSatisfied(Requirement::Pin))`, `Err(CardError::WrongPin { tries_left })`.
//! Store and crypto errors convert with `?`. The applet never picks a status word itself, so one meaning
//! has one status word on every path, and a trace at `debug` level names the variant that answered.
//! The vocabulary covers what an ISO 7816-4 applet (a file system, PINs, keys) needs; if an applet needs
//! a refusal that is not here, it belongs here, mapped once.

use apdu::{ChainError, CommandError, Response, StatusWord};
use thiserror::Error;

use crate::crypto::CryptoError;
use crate::store::StoreError;

/// What a command lacked when it was refused with `69 82` (security status not satisfied).
///
/// It never reaches the host (the status word is the same for all); it tells a trace which check refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// A PIN verified since the last reset.
    Pin,
    /// A PIN verified right before this use (a key whose PIN policy is "always").
    PinForEachUse,
    /// Authentication with a key the host holds (PIV's management key, ISO EXTERNAL AUTHENTICATE).
    KeyAuthentication,
    /// A challenge the card issued and no answer has consumed yet.
    PendingChallenge,
    /// A correct cryptogram in answer to the card's challenge (the host's was wrong).
    CorrectCryptogram,
    /// Nothing: the access condition is NEVER.
    Never,
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Requirement::Pin => "a verified PIN",
            Requirement::PinForEachUse => "a PIN verification right before this use",
            Requirement::KeyAuthentication => "authentication with a key",
            Requirement::PendingChallenge => "a pending challenge",
            Requirement::CorrectCryptogram => "a correct cryptogram",
            Requirement::Never => "an access condition that is never met",
        })
    }
}

/// Everything an applet or the OS can refuse a command with.
///
/// Each variant maps to exactly one status word in [`CardError::status_word`], except [`CardError::PowerLost`]
/// (and `Store(StoreError::PowerLost)`), which never reach the host: power was cut, so the card does not
/// answer at all.
#[derive(Debug, Error)]
pub enum CardError {
    // --- Verification (63 Cx, 69 83) ---
    /// `63 Cx`: VERIFY compared and failed; `tries_left` tries remain (clients read the low nibble).
    #[error("wrong PIN, {tries_left} tries left")]
    WrongPin { tries_left: u8 },
    /// `63 Cx`: a VERIFY status query (no data) on a PIN that is not verified; nothing was compared.
    #[error("PIN not verified, {tries_left} tries left")]
    NotVerified { tries_left: u8 },
    /// `69 83`: the PIN (or key) is blocked.
    #[error("authentication method blocked")]
    AuthenticationBlocked,

    // --- Lengths (67 00, 6C xx) ---
    /// `67 00`: a data field where none belongs, a missing one, or one of the wrong size.
    #[error("wrong length")]
    WrongLength,
    /// `6C xx`: wrong Le; `exact` is the length the host should ask for (`0` = 256).
    #[error("wrong Le; the exact length is {exact}")]
    WrongLe { exact: u8 },

    // --- Security and state (69 8x) ---
    /// `69 81`: the command does not fit the structure of the file (e.g. READ BINARY on a record file).
    #[error("command incompatible with file structure")]
    IncompatibleFileStructure,
    /// `69 82`: the command needs something the card's security state does not have.
    #[error("security status not satisfied: needs {0}")]
    SecurityStatusNotSatisfied(Requirement),
    /// `69 84`: the reference data cannot be used (e.g. a PIN not yet set, a key deactivated).
    #[error("reference data not usable")]
    ReferenceDataNotUsable,
    /// `69 85`: the card's state does not allow the command now.
    #[error("conditions of use not satisfied")]
    ConditionsNotSatisfied,
    /// `69 86`: command not allowed — no current EF.
    #[error("command not allowed: no current EF")]
    NoCurrentEf,

    // --- Parameters and data (6A xx, 6B 00) ---
    /// `6A 80`: the data field is well formed but its content is wrong for this command.
    #[error("invalid command data")]
    InvalidData,
    /// `6A 80`: the data field is not valid BER-TLV.
    #[error("malformed command data: {0}")]
    MalformedTlv(#[from] apdu::tlv::TlvError),
    /// `6A 81`: the applet knows this function but does not offer it.
    #[error("function not supported")]
    FunctionNotSupported,
    /// `6A 82`: file, application or data object not found.
    #[error("not found")]
    NotFound,
    /// `6A 83`: record not found.
    #[error("record not found")]
    RecordNotFound,
    /// `6A 84`: not enough memory space (in the file, or for an object larger than the applet allows).
    #[error("not enough memory")]
    NotEnoughMemory,
    /// `6A 86`: incorrect P1 or P2.
    #[error("incorrect P1/P2")]
    IncorrectP1P2,
    /// `6A 87`: Nc inconsistent with P1-P2.
    #[error("Lc inconsistent with P1/P2")]
    LcInconsistentWithP1P2,
    /// `6A 88`: referenced data (a key, a PIN, a transient value) not found.
    #[error("referenced data not found")]
    ReferenceNotFound,
    /// `6A 89`: the file to create already exists.
    #[error("file already exists")]
    FileExists,
    /// `6B 00`: wrong P1-P2, e.g. an offset outside the EF.
    #[error("wrong parameters P1/P2 (offset outside the file)")]
    WrongP1P2,

    // --- Instruction and class (6D 00, 6E 00) ---
    /// `6D 00`: the applet has no such instruction.
    #[error("instruction not supported")]
    InsNotSupported,
    /// `6E 00`: the applet does not take commands in this class.
    #[error("class not supported")]
    ClaNotSupported,

    // --- OS refusals, answered before any applet sees the command ---
    /// `67 00`: the bytes are not a command APDU (lengths do not add up).
    #[error("malformed APDU: {0}")]
    MalformedApdu(CommandError),
    /// `6E 00`: the class byte is reserved (`001x xxxx`) or invalid (`FF`).
    #[error("class byte {cla:02X} is reserved or invalid")]
    InvalidClass { cla: u8 },
    /// `68 82`: the class byte asks for secure messaging, which this card does not do.
    #[error("secure messaging (class byte {cla:02X}) not supported")]
    SecureMessagingNotSupported { cla: u8 },
    /// `68 81`: a logical channel that is not open.
    #[error("logical channel {channel} is not open")]
    ChannelClosed { channel: u8 },
    /// `68 81`: a logical channel beyond the ones this card has.
    #[error("logical channel {channel} is not supported")]
    ChannelNotSupported { channel: u8 },
    /// `6A 81`: MANAGE CHANNEL open, but every channel is open already.
    #[error("no logical channel is free")]
    NoFreeChannel,
    /// `6A 82`: SELECT by name matched no applet (the current selection stays).
    #[error("no applet has this AID")]
    ApplicationNotFound,
    /// `6D 00`: no applet is selected on the channel to take the command.
    #[error("no applet selected on this channel")]
    NoApplicationSelected,
    /// `67 00`: a command chain grew beyond the card's limit.
    #[error("chained command of {len} bytes exceeds the {limit}-byte limit")]
    ChainTooLong { len: usize, limit: usize },
    /// `68 83`: a chain was interrupted by a command with another header.
    #[error("command chain interrupted by another command")]
    ChainInterrupted,
    /// `68 84`: an OS command (SELECT, MANAGE CHANNEL) cannot be chained.
    #[error("command chaining not supported for this command")]
    ChainingNotSupported,
    /// `69 85`: GET RESPONSE with nothing waiting on this channel.
    #[error("no response data waiting")]
    NoResponsePending,
    /// `6F 00`: the applet built a response longer than the card hands out.
    #[error("response longer than {limit} bytes")]
    ResponseTooLong { limit: usize },

    // --- Platform failures ---
    /// `6A 84` (full, record too large) or `69 85` (transaction misuse); power loss is silence.
    #[error("persistent store: {0}")]
    Store(StoreError),
    /// `6F 00`: crypto failures stay opaque; the host learns nothing about why.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// `6F 00`: something inside the card failed that the host cannot act on; the text is for the trace.
    #[error("internal failure: {0}")]
    Internal(&'static str),
    /// `65 81`: the card image could not be written, so the command's effect is not durable.
    #[error("card image could not be saved: {0}")]
    SaveFailed(String),
    /// No answer at all: power was cut during the command.
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

impl From<CommandError> for CardError {
    fn from(error: CommandError) -> Self {
        CardError::MalformedApdu(error)
    }
}

impl From<ChainError> for CardError {
    fn from(error: ChainError) -> Self {
        match error {
            ChainError::TooLong(len, limit) => CardError::ChainTooLong { len, limit },
            ChainError::Interrupted => CardError::ChainInterrupted,
        }
    }
}

impl CardError {
    /// The status word the card answers; `None` when the card must stay silent (power was lost).
    pub fn status_word(&self) -> Option<StatusWord> {
        use CardError as E;
        Some(match self {
            E::WrongPin { tries_left } | E::NotVerified { tries_left } => {
                StatusWord::remaining_retries(*tries_left)
            }
            E::AuthenticationBlocked => StatusWord::AUTH_METHOD_BLOCKED,
            E::WrongLength | E::MalformedApdu(_) | E::ChainTooLong { .. } => {
                StatusWord::WRONG_LENGTH
            }
            E::WrongLe { exact } => StatusWord::wrong_le(*exact),
            E::IncompatibleFileStructure => StatusWord::INCOMPATIBLE_FILE_STRUCTURE,
            E::SecurityStatusNotSatisfied(_) => StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            E::ReferenceDataNotUsable => StatusWord::REFERENCE_DATA_NOT_USABLE,
            E::ConditionsNotSatisfied | E::NoResponsePending => {
                StatusWord::CONDITIONS_NOT_SATISFIED
            }
            E::NoCurrentEf => StatusWord::COMMAND_NOT_ALLOWED_NO_EF,
            E::InvalidData | E::MalformedTlv(_) => StatusWord::INCORRECT_DATA,
            E::FunctionNotSupported | E::NoFreeChannel => StatusWord::FUNCTION_NOT_SUPPORTED,
            E::NotFound | E::ApplicationNotFound => StatusWord::NOT_FOUND,
            E::RecordNotFound => StatusWord::RECORD_NOT_FOUND,
            E::NotEnoughMemory => StatusWord::NOT_ENOUGH_MEMORY,
            E::IncorrectP1P2 => StatusWord::INCORRECT_P1P2,
            E::LcInconsistentWithP1P2 => StatusWord::LC_INCONSISTENT_WITH_P1P2,
            E::ReferenceNotFound => StatusWord::REFERENCE_NOT_FOUND,
            E::FileExists => StatusWord::FILE_EXISTS,
            E::WrongP1P2 => StatusWord::WRONG_P1P2,
            E::InsNotSupported | E::NoApplicationSelected => StatusWord::INS_NOT_SUPPORTED,
            E::ClaNotSupported | E::InvalidClass { .. } => StatusWord::CLA_NOT_SUPPORTED,
            E::SecureMessagingNotSupported { .. } => StatusWord::SECURE_MESSAGING_NOT_SUPPORTED,
            E::ChannelClosed { .. } | E::ChannelNotSupported { .. } => {
                StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED
            }
            E::ChainInterrupted => StatusWord::LAST_COMMAND_OF_CHAIN_EXPECTED,
            E::ChainingNotSupported => StatusWord::CHAINING_NOT_SUPPORTED,
            E::Store(StoreError::Full { .. } | StoreError::ValueTooLarge(_)) => {
                StatusWord::NOT_ENOUGH_MEMORY
            }
            E::Store(StoreError::TransactionInProgress | StoreError::NoTransaction) => {
                StatusWord::CONDITIONS_NOT_SATISFIED
            }
            E::Store(StoreError::PowerLost) | E::PowerLost => return None,
            E::ResponseTooLong { .. } | E::Crypto(_) | E::Internal(_) => StatusWord::UNKNOWN,
            E::SaveFailed(_) => StatusWord::MEMORY_FAILURE,
        })
    }

    /// Whether the card stays silent for this error (power was cut).
    pub fn is_power_lost(&self) -> bool {
        self.status_word().is_none()
    }
}

/// A warning answered together with response data (the command was carried out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// `62 82`: the end of the file or record came before Ne bytes were read.
    EndOfFile,
    /// `62 83`: the selected file is deactivated.
    SelectedFileDeactivated,
}

impl Warning {
    pub fn status_word(self) -> StatusWord {
        match self {
            Warning::EndOfFile => StatusWord::END_OF_FILE,
            Warning::SelectedFileDeactivated => StatusWord::SELECTED_FILE_DEACTIVATED,
        }
    }
}

/// `90 00`, or the reply's warning: the command was carried out and all its data is in this response.
pub(crate) fn completed(warning: Option<Warning>) -> StatusWord {
    warning.map_or(StatusWord::SUCCESS, Warning::status_word)
}

/// `61 xx`: `remaining` more response bytes wait for GET RESPONSE (`61 00` means 256 or more).
pub(crate) fn more_data(remaining: usize) -> StatusWord {
    StatusWord::bytes_remaining(remaining.min(256) as u8)
}

/// The one place where a refused command becomes its answer: the status word of `error`, traced with
/// the variant that produced it. `None`: the card stays silent (power was lost).
pub(crate) fn refusal(error: &CardError) -> Option<Response> {
    let sw = error.status_word()?;
    tracing::debug!(?error, %sw, "refused");
    Some(Response::status(sw))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A number for every variant. No wildcard: a new variant does not compile until it is numbered
    /// here, and then [`every_error_maps_to_its_one_status_word`] fails until the table has its row.
    fn variant_index(error: &CardError) -> usize {
        match error {
            CardError::WrongPin { .. } => 0,
            CardError::NotVerified { .. } => 1,
            CardError::AuthenticationBlocked => 2,
            CardError::WrongLength => 3,
            CardError::WrongLe { .. } => 4,
            CardError::IncompatibleFileStructure => 5,
            CardError::SecurityStatusNotSatisfied(_) => 6,
            CardError::ReferenceDataNotUsable => 7,
            CardError::ConditionsNotSatisfied => 8,
            CardError::NoCurrentEf => 9,
            CardError::InvalidData => 10,
            CardError::MalformedTlv(_) => 11,
            CardError::FunctionNotSupported => 12,
            CardError::NotFound => 13,
            CardError::RecordNotFound => 14,
            CardError::NotEnoughMemory => 15,
            CardError::IncorrectP1P2 => 16,
            CardError::LcInconsistentWithP1P2 => 17,
            CardError::ReferenceNotFound => 18,
            CardError::FileExists => 19,
            CardError::WrongP1P2 => 20,
            CardError::InsNotSupported => 21,
            CardError::ClaNotSupported => 22,
            CardError::MalformedApdu(_) => 23,
            CardError::InvalidClass { .. } => 24,
            CardError::SecureMessagingNotSupported { .. } => 25,
            CardError::ChannelClosed { .. } => 26,
            CardError::ChannelNotSupported { .. } => 27,
            CardError::NoFreeChannel => 28,
            CardError::ApplicationNotFound => 29,
            CardError::NoApplicationSelected => 30,
            CardError::ChainTooLong { .. } => 31,
            CardError::ChainInterrupted => 32,
            CardError::ChainingNotSupported => 33,
            CardError::NoResponsePending => 34,
            CardError::ResponseTooLong { .. } => 35,
            CardError::Store(_) => 36,
            CardError::Crypto(_) => 37,
            CardError::Internal(_) => 38,
            CardError::SaveFailed(_) => 39,
            CardError::PowerLost => 40,
        }
    }
    const VARIANTS: usize = 41;

    #[test]
    fn every_error_maps_to_its_one_status_word() {
        let mut table: Vec<(CardError, Option<u16>)> = vec![
            (CardError::WrongPin { tries_left: 2 }, Some(0x63C2)),
            (CardError::WrongPin { tries_left: 40 }, Some(0x63CF)),
            (CardError::NotVerified { tries_left: 3 }, Some(0x63C3)),
            (CardError::AuthenticationBlocked, Some(0x6983)),
            (CardError::WrongLength, Some(0x6700)),
            (CardError::WrongLe { exact: 8 }, Some(0x6C08)),
            (CardError::IncompatibleFileStructure, Some(0x6981)),
            (CardError::ReferenceDataNotUsable, Some(0x6984)),
            (CardError::ConditionsNotSatisfied, Some(0x6985)),
            (CardError::NoCurrentEf, Some(0x6986)),
            (CardError::InvalidData, Some(0x6A80)),
            (
                CardError::MalformedTlv(apdu::tlv::TlvError::Truncated(0)),
                Some(0x6A80),
            ),
            (CardError::FunctionNotSupported, Some(0x6A81)),
            (CardError::NotFound, Some(0x6A82)),
            (CardError::RecordNotFound, Some(0x6A83)),
            (CardError::NotEnoughMemory, Some(0x6A84)),
            (CardError::IncorrectP1P2, Some(0x6A86)),
            (CardError::LcInconsistentWithP1P2, Some(0x6A87)),
            (CardError::ReferenceNotFound, Some(0x6A88)),
            (CardError::FileExists, Some(0x6A89)),
            (CardError::WrongP1P2, Some(0x6B00)),
            (CardError::InsNotSupported, Some(0x6D00)),
            (CardError::ClaNotSupported, Some(0x6E00)),
            (
                CardError::MalformedApdu(CommandError::ZeroExtendedLc),
                Some(0x6700),
            ),
            (CardError::InvalidClass { cla: 0xFF }, Some(0x6E00)),
            (
                CardError::SecureMessagingNotSupported { cla: 0x0C },
                Some(0x6882),
            ),
            (CardError::ChannelClosed { channel: 2 }, Some(0x6881)),
            (CardError::ChannelNotSupported { channel: 9 }, Some(0x6881)),
            (CardError::NoFreeChannel, Some(0x6A81)),
            (CardError::ApplicationNotFound, Some(0x6A82)),
            (CardError::NoApplicationSelected, Some(0x6D00)),
            (CardError::ChainTooLong { len: 4, limit: 3 }, Some(0x6700)),
            (CardError::ChainInterrupted, Some(0x6883)),
            (CardError::ChainingNotSupported, Some(0x6884)),
            (CardError::NoResponsePending, Some(0x6985)),
            (CardError::ResponseTooLong { limit: 65536 }, Some(0x6F00)),
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
            (CardError::Store(StoreError::PowerLost), None),
            (CardError::Crypto(CryptoError::InvalidKey), Some(0x6F00)),
            (CardError::Internal("certificate builder"), Some(0x6F00)),
            (CardError::SaveFailed("disk full".into()), Some(0x6581)),
            (CardError::PowerLost, None),
            (CardError::from(StoreError::PowerLost), None),
            // Codec errors convert into the OS's refusals.
            (CardError::from(CommandError::TooShort(3)), Some(0x6700)),
            (
                CardError::from(CommandError::LengthMismatch { actual: 7 }),
                Some(0x6700),
            ),
            (CardError::from(ChainError::TooLong(4, 3)), Some(0x6700)),
            (CardError::from(ChainError::Interrupted), Some(0x6883)),
            (
                CardError::from(apdu::tlv::TlvError::TrailingBytes(1)),
                Some(0x6A80),
            ),
        ];
        for requirement in [
            Requirement::Pin,
            Requirement::PinForEachUse,
            Requirement::KeyAuthentication,
            Requirement::PendingChallenge,
            Requirement::CorrectCryptogram,
            Requirement::Never,
        ] {
            table.push((
                CardError::SecurityStatusNotSatisfied(requirement),
                Some(0x6982),
            ));
        }
        let covered: std::collections::BTreeSet<usize> = table
            .iter()
            .map(|(error, _)| variant_index(error))
            .collect();
        let missing: Vec<usize> = (0..VARIANTS).filter(|i| !covered.contains(i)).collect();
        assert!(missing.is_empty(), "variants without a row: {missing:?}");
        for (error, expected) in table {
            assert_eq!(
                error.status_word().map(StatusWord::to_u16),
                expected,
                "{error:?}"
            );
            assert_eq!(error.is_power_lost(), expected.is_none(), "{error:?}");
        }
    }

    #[test]
    fn warnings_and_completion_words() {
        assert_eq!(completed(None), StatusWord::SUCCESS);
        assert_eq!(completed(Some(Warning::EndOfFile)).to_u16(), 0x6282);
        assert_eq!(
            completed(Some(Warning::SelectedFileDeactivated)).to_u16(),
            0x6283
        );
        assert_eq!(more_data(16).to_u16(), 0x6110);
        assert_eq!(more_data(256).to_u16(), 0x6100);
        assert_eq!(more_data(1000).to_u16(), 0x6100);
    }

    #[test]
    fn a_refusal_carries_only_its_status_word() {
        let response = refusal(&CardError::SecurityStatusNotSatisfied(
            Requirement::KeyAuthentication,
        ));
        assert_eq!(
            response.map(|r| r.to_bytes()),
            Some(vec![0x69, 0x82]),
            "refusals have no data"
        );
        assert!(refusal(&CardError::PowerLost).is_none());
    }
}
