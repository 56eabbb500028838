//! A card called directly, without PC/SC: the reference path for conformance runs and the bureau's line.

use crate::{lock_card, SharedCard, Transport, TransportError};

/// A virtual card in a reader that exists only in this process.
pub struct InProcessReader {
    card: SharedCard,
}

impl InProcessReader {
    /// Powers the card on, as a reader does on insertion.
    pub fn new(card: SharedCard) -> Self {
        lock_card(&card).power_on();
        Self { card }
    }

    /// The card in this reader.
    pub fn card(&self) -> &SharedCard {
        &self.card
    }
}

impl Transport for InProcessReader {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let response = lock_card(&self.card).transmit(apdu);
        match response.len() {
            0 => Err(TransportError::Mute),
            1 => Err(TransportError::NoStatusWord { len: 1 }),
            _ => Ok(response),
        }
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        Ok(lock_card(&self.card).atr())
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        lock_card(&self.card).reset();
        Ok(())
    }

    fn name(&self) -> String {
        "in-process".to_owned()
    }
}
