#![doc = include_str!("../README.md")]

pub mod applet;
mod card;
mod channel;
mod clock;
mod contact;
pub mod crypto;
mod error;
pub mod ins;
mod pin;
mod platform;
mod secret;
pub mod store;
#[cfg(any(test, feature = "testing"))]
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
pub use error::{CardError, Requirement, Warning};
pub use pin::{OwnerPin, PinCheck, PinPolicy};
pub use secret::{ct_eq, Secret};
#[cfg(any(test, feature = "testing"))]
pub use store::FaultPlan;
pub use store::{Durability, ImageError, StoreError};
pub use transient::Lifetime;
