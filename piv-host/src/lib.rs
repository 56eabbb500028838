#![doc = include_str!("../README.md")]

mod error;
mod management;
mod pin;
mod public_key;
mod session;

pub use error::PivError;
pub use management::ManagementKey;
pub use pin::{PinOutcome, PinValue};
pub use public_key::PublicKey;
pub use session::{sign_command, GenerateOptions, Metadata, PivSession, RsaCrtParts, Version};
