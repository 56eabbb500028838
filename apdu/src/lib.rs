#![doc = include_str!("../README.md")]

mod chaining;
mod command;
mod reader;
mod response;
mod status;
pub mod tlv;

pub use chaining::{ChainError, Chained, CommandChain};
pub use command::{Command, CommandError, MAX_EXTENDED_NE, MAX_SHORT_NE};
pub use reader::{Reader, ReaderError};
pub use response::{Response, ResponseError};
pub use status::StatusWord;

/// Formats bytes as upper-case hex separated by spaces, the way card tools print APDUs.
pub fn hex_spaced(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}
