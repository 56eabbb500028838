#![doc = include_str!("../README.md")]

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

mod card_os_card;
pub mod transport;
pub mod vpcd;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use transport::{InProcessReader, PcscReader, Transport, TransportError};
pub use vpcd::{SlotHandle, SlotOptions, SlotState, VpcdSlot};

/// What the reader needs from a card. card-os's `Card` implements it (in `card_os_card.rs`: the reader
/// knows the card runtime, never the other way round).
pub trait VirtualCard: Send + 'static {
    /// Answer-to-reset bytes (asked every ~400 ms by pcscd even when unpowered).
    fn atr(&self) -> Vec<u8>;
    fn power_on(&mut self);
    fn power_off(&mut self);
    fn reset(&mut self);
    /// One command APDU in, the response APDU (data || SW1 SW2) out. Never panics. An empty reply
    /// means the card went mute (it lost power): the slot takes it out of the reader and reconnects.
    fn transmit(&mut self, command: &[u8]) -> Vec<u8>;
}

/// A card shared between the slot that serves it and whoever else holds it.
pub type SharedCard = Arc<Mutex<dyn VirtualCard>>;

/// Wraps a card for sharing.
pub fn share<C: VirtualCard>(card: C) -> SharedCard {
    Arc::new(Mutex::new(card))
}

/// Locks a card. `VirtualCard` methods never panic by contract; if one did, the card
/// keeps serving in whatever state it was left rather than taking the reader down.
pub(crate) fn lock_card(card: &SharedCard) -> MutexGuard<'_, dyn VirtualCard> {
    card.lock().unwrap_or_else(|poisoned| {
        tracing::error!(
            "a VirtualCard method panicked earlier; the card state may be inconsistent"
        );
        PoisonError::into_inner(poisoned)
    })
}
