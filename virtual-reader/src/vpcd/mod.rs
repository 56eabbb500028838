//! The card side of PC/SC: pcsc-lite's vpcd driver listens on TCP and a virtual card
//! connects to it. `protocol` is the framing, `slot` the connection that keeps a card
//! inserted.

pub mod protocol;
pub mod slot;

pub use protocol::{ProtocolError, VpcdMessage};
pub use slot::{SlotError, SlotHandle, SlotOptions, SlotState, VpcdSlot, REINSERT_GAP};
