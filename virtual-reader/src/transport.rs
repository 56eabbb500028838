//! The host side: how tools (conformance runner, personalization bureau) talk to a
//! card, either straight in-process or through PC/SC like any other application.

use std::ffi::CString;
use std::sync::PoisonError;

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};

use crate::SharedCard;

/// A channel to one card.
pub trait Transport {
    /// Sends one command APDU; returns the response APDU (data || SW1 SW2).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
    fn atr(&mut self) -> Result<Vec<u8>, TransportError>;
    /// Warm reset: the card drops its volatile state (selected applet, PIN status).
    fn reset(&mut self) -> Result<(), TransportError>;
    /// For logs and reports, e.g. `pcsc:Virtual PCD 00 00`.
    fn name(&self) -> String;
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("no PC/SC service running (is pcscd started?)")]
    NoService,
    #[error("the PC/SC service stopped (was pcscd restarted?); connect again")]
    ServiceStopped,
    #[error("reader {reader:?} not found; readers present: {}", list(present))]
    ReaderNotFound {
        reader: String,
        present: Vec<String>,
    },
    #[error("no card in reader {0:?}")]
    NoCard(String),
    #[error("the card in reader {0:?} was removed")]
    CardRemoved(String),
    #[error("reader name {0:?} contains a NUL byte")]
    BadReaderName(String),
    #[error("PC/SC {operation} on reader {reader:?} failed: {source}")]
    Pcsc {
        operation: &'static str,
        reader: String,
        source: pcsc::Error,
    },
    #[error("PC/SC {operation} failed: {source}")]
    Service {
        operation: &'static str,
        source: pcsc::Error,
    },
    #[error("the card answered {len} bytes, too short for SW1 SW2")]
    NoStatusWord { len: usize },
    #[error("the card panicked earlier (its lock is poisoned)")]
    CardPanicked,
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        format!("{names:?}")
    }
}

fn check_status_word(response: Vec<u8>) -> Result<Vec<u8>, TransportError> {
    if response.len() < 2 {
        return Err(TransportError::NoStatusWord {
            len: response.len(),
        });
    }
    Ok(response)
}

/// A card called directly, without PC/SC: the reference path for conformance runs.
pub struct InProcessReader {
    card: SharedCard,
}

impl InProcessReader {
    /// Powers the card on, as a reader does on insertion.
    pub fn new(card: SharedCard) -> Self {
        crate::lock_card(&card).power_on();
        Self { card }
    }

    fn with_card<T>(
        &self,
        f: impl FnOnce(&mut dyn crate::VirtualCard) -> T,
    ) -> Result<T, TransportError> {
        let mut card = self
            .card
            .lock()
            .map_err(|_: PoisonError<_>| TransportError::CardPanicked)?;
        Ok(f(&mut *card))
    }
}

impl Transport for InProcessReader {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        check_status_word(self.with_card(|c| c.transmit(apdu))?)
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        self.with_card(|c| c.atr())
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        self.with_card(|c| c.reset())
    }

    fn name(&self) -> String {
        "in-process".to_owned()
    }
}

/// Receive buffer: a short APDU's 256 + 2 bytes, or an extended one's 65536 + 2, with room.
const RECEIVE_BUFFER: usize = pcsc::MAX_BUFFER_SIZE_EXTENDED;

/// A card reached through pcscd, like any PC/SC application reaches it.
pub struct PcscReader {
    reader: String,
    card: pcsc::Card,
    receive: Vec<u8>,
    // Declared after `card` so the card handle is released before its context.
    _context: Context,
}

impl PcscReader {
    /// Names of the readers pcscd knows (with or without a card); empty if none.
    pub fn list() -> Result<Vec<String>, TransportError> {
        reader_names(&establish()?)
    }

    /// Whether `reader` currently holds a card that answered its ATR.
    pub fn card_present(reader: &str) -> Result<bool, TransportError> {
        Ok(Self::card_atr(reader)?.is_some())
    }

    /// The ATR of the card in `reader`, if there is one, as pcscd last saw it; asks
    /// pcscd only (SCardGetStatusChange), never the card.
    pub fn card_atr(reader: &str) -> Result<Option<Vec<u8>>, TransportError> {
        let context = establish()?;
        let name = c_name(reader)?;
        let mut states = [ReaderState::new(name, State::UNAWARE)];
        match context.get_status_change(std::time::Duration::ZERO, &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::UnknownReader) => return Err(not_found(&context, reader)),
            Err(e) => return Err(pcsc_error("SCardGetStatusChange", reader, e)),
        }
        let state = states[0].event_state();
        let present = state.contains(State::PRESENT) && !state.contains(State::MUTE);
        Ok(present.then(|| states[0].atr().to_vec()))
    }

    /// Connects to the card in `reader`, shared, T=1 or T=0 as the card offers.
    pub fn connect(reader: &str) -> Result<Self, TransportError> {
        let context = establish()?;
        let name = c_name(reader)?;
        let card = match context.connect(&name, ShareMode::Shared, Protocols::ANY) {
            Ok(card) => card,
            Err(pcsc::Error::UnknownReader) => return Err(not_found(&context, reader)),
            Err(e) => return Err(pcsc_error("SCardConnect", reader, e)),
        };
        Ok(Self {
            reader: reader.to_owned(),
            card,
            receive: vec![0; RECEIVE_BUFFER],
            _context: context,
        })
    }

    pub fn reader(&self) -> &str {
        &self.reader
    }
}

impl Transport for PcscReader {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let response = self
            .card
            .transmit(apdu, &mut self.receive)
            .map_err(|e| pcsc_error("SCardTransmit", &self.reader, e))?;
        check_status_word(response.to_vec())
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        let status = self
            .card
            .status2_owned()
            .map_err(|e| pcsc_error("SCardStatus", &self.reader, e))?;
        Ok(status.atr().to_vec())
    }

    /// Reconnects with `SCARD_RESET_CARD`. If the handle went stale because the card
    /// was re-inserted or pcscd restarted, connects afresh instead (the card was
    /// powered down in between, which is a reset too).
    fn reset(&mut self) -> Result<(), TransportError> {
        match self
            .card
            .reconnect(ShareMode::Shared, Protocols::ANY, Disposition::ResetCard)
        {
            Ok(()) => Ok(()),
            Err(
                pcsc::Error::InvalidHandle
                | pcsc::Error::ServiceStopped
                | pcsc::Error::NoService
                | pcsc::Error::ReaderUnavailable
                | pcsc::Error::RemovedCard,
            ) => {
                *self = Self::connect(&self.reader)?;
                Ok(())
            }
            Err(e) => Err(pcsc_error("SCardReconnect", &self.reader, e)),
        }
    }

    fn name(&self) -> String {
        format!("pcsc:{}", self.reader)
    }
}

fn establish() -> Result<Context, TransportError> {
    Context::establish(Scope::User).map_err(|e| match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => TransportError::NoService,
        source => TransportError::Service {
            operation: "SCardEstablishContext",
            source,
        },
    })
}

fn reader_names(context: &Context) -> Result<Vec<String>, TransportError> {
    match context.list_readers_owned() {
        Ok(names) => Ok(names
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect()),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(pcsc::Error::NoService | pcsc::Error::ServiceStopped) => Err(TransportError::NoService),
        Err(source) => Err(TransportError::Service {
            operation: "SCardListReaders",
            source,
        }),
    }
}

fn not_found(context: &Context, reader: &str) -> TransportError {
    match reader_names(context) {
        Ok(present) => TransportError::ReaderNotFound {
            reader: reader.to_owned(),
            present,
        },
        Err(e) => e,
    }
}

fn c_name(reader: &str) -> Result<CString, TransportError> {
    CString::new(reader).map_err(|_| TransportError::BadReaderName(reader.to_owned()))
}

fn pcsc_error(operation: &'static str, reader: &str, source: pcsc::Error) -> TransportError {
    match source {
        pcsc::Error::NoSmartcard => TransportError::NoCard(reader.to_owned()),
        pcsc::Error::RemovedCard => TransportError::CardRemoved(reader.to_owned()),
        pcsc::Error::NoService => TransportError::NoService,
        pcsc::Error::ServiceStopped => TransportError::ServiceStopped,
        source => TransportError::Pcsc {
            operation,
            reader: reader.to_owned(),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::EchoCard;

    #[test]
    fn in_process_reader_powers_on_and_relays() {
        let card = crate::share(EchoCard::default());
        let mut reader = InProcessReader::new(card);
        assert_eq!(reader.atr().expect("atr"), EchoCard::ATR);
        assert_eq!(
            reader.transmit(&[0x00, 0xA4, 0x04, 0x00]).expect("tx"),
            [0x90, 0x00]
        );
        reader.reset().expect("reset");
        assert_eq!(reader.name(), "in-process");
    }

    #[test]
    fn errors_name_what_failed() {
        let e = TransportError::ReaderNotFound {
            reader: "X".into(),
            present: vec!["Virtual PCD 00 00".into()],
        };
        assert_eq!(
            e.to_string(),
            "reader \"X\" not found; readers present: [\"Virtual PCD 00 00\"]"
        );
        let e = TransportError::ReaderNotFound {
            reader: "X".into(),
            present: vec![],
        };
        assert!(e.to_string().ends_with("readers present: none"));
        assert!(TransportError::NoService
            .to_string()
            .contains("is pcscd started?"));
    }
}
