//! Without the `pcsc` feature there is no PC/SC: the same API, every call answering in one sentence how
//! to get it. Callers compile unchanged and fall back (the CLI talks to cards in-process instead).

use crate::{Transport, TransportError};

/// A PC/SC reader — not in this build (cargo feature `pcsc` is off).
pub struct PcscReader {
    never: std::convert::Infallible,
}

impl PcscReader {
    pub fn list() -> Result<Vec<String>, TransportError> {
        Err(TransportError::PcscNotBuilt)
    }

    pub fn card_present(_reader: &str) -> Result<bool, TransportError> {
        Err(TransportError::PcscNotBuilt)
    }

    pub fn card_atr(_reader: &str) -> Result<Option<Vec<u8>>, TransportError> {
        Err(TransportError::PcscNotBuilt)
    }

    pub fn connect(_reader: &str) -> Result<Self, TransportError> {
        Err(TransportError::PcscNotBuilt)
    }

    pub fn reader(&self) -> &str {
        match self.never {}
    }
}

impl Transport for PcscReader {
    fn transmit_raw(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self.never {}
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        match self.never {}
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        match self.never {}
    }

    fn name(&self) -> String {
        match self.never {}
    }
}
