#![doc = include_str!("../README.md")]

pub mod applet;
mod card;
mod channel;
mod clock;
mod contact;
pub mod crypto;
mod error;
mod pin;
mod secret;
pub mod store;
pub mod tearing;
mod transient;

pub use apdu;
pub use applet::{Aid, Applet, AppletFactory, AppletRegistry, AppletStore, Context, Reply};
pub use card::{
    Card, CardConfig, CardOsError, CardSnapshot, Installation, Silence, Storage, DEFAULT_ATR,
    MAX_RESPONSE_LEN,
};
pub use channel::{channel_of, BASIC_CHANNEL, CHANNELS};
pub use clock::Clock;
pub use error::CardError;
pub use pin::{OwnerPin, PinCheck, PinPolicy};
pub use secret::{ct_eq, Secret};
pub use store::{Durability, FaultPlan, ImageError, StoreError};
pub use transient::Lifetime;
