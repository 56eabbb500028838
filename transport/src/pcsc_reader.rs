//! A card reached through pcscd, like any PC/SC application reaches it (cargo feature `pcsc`).

use std::ffi::CString;

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};

use crate::{Transport, TransportError};

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
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let response = self
            .card
            .transmit(apdu, &mut self.receive)
            .map_err(|e| pcsc_error("SCardTransmit", &self.reader, e))?;
        if response.len() < 2 {
            return Err(TransportError::NoStatusWord {
                len: response.len(),
            });
        }
        Ok(response.to_vec())
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
