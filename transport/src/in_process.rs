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
        checked(lock_card(&self.card).transmit(apdu))
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

/// A transport straight onto a card the caller holds (no sharing, no power-up): for tests and tools that
/// own a card and want the host-side rules (`exchange`, chaining, a host client) on it.
pub struct DirectReader<'c, C: crate::VirtualCard + ?Sized> {
    card: &'c mut C,
}

impl<'c, C: crate::VirtualCard + ?Sized> DirectReader<'c, C> {
    pub fn new(card: &'c mut C) -> Self {
        Self { card }
    }
}

impl<C: crate::VirtualCard + ?Sized> Transport for DirectReader<'_, C> {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        checked(self.card.transmit(apdu))
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        Ok(self.card.atr())
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        self.card.reset();
        Ok(())
    }

    fn name(&self) -> String {
        "direct".to_owned()
    }
}

/// A card's reply as a transport result: empty = mute (power lost), one byte = no status word.
fn checked(response: Vec<u8>) -> Result<Vec<u8>, TransportError> {
    match response.len() {
        0 => Err(TransportError::Mute),
        1 => Err(TransportError::NoStatusWord { len: 1 }),
        _ => Ok(response),
    }
}
