//! Test support (feature `testing`), kept for crates that still reach it here: everything lives in the
//! `testkit` crate now.

pub use testkit::{wait_for, EchoCard, Pcscd, PcscdError, SLOTS};
