#![doc = include_str!("../README.md")]

pub mod vpcd;

#[cfg(feature = "testing")]
pub mod testing;

pub use card_transport::{lock_card, share, SharedCard, VirtualCard};
pub use vpcd::{SlotHandle, SlotOptions, SlotState, VpcdSlot, REINSERT_GAP};
