//! The login lab: the web application of the seeds, which operators log into with their own smart
//! card from a certified workstation, and its security console for the mayor and the ALS.
//!
//! - [`server`]: `tessera lab serve` — two HTTPS doors (workstation, card) over rustls, sessions,
//!   routes; the design of the two-certificate login is in its module documentation;
//! - [`gate`]: who is admitted — every refusal a [`gate::Refusal`] with a sentence and a code;
//! - [`client`]: an HTTPS client whose private key is a card (every TLS signature a card command
//!   over any `Transport`), or a workstation's PKCS#12 — the in-process login of `tessera demo` and
//!   of the tests;
//! - [`staging`]: a staged world to log into (CA, census personalized, a parcel delivered, a
//!   workstation issued) — the start of `tessera demo`, the tests and the bench;
//! - [`holder`]: the envelope half and the e-mail half joined, as the holder does;
//! - [`http`] and [`pages`]: the little HTTP/1.1 and HTML the lab needs.
//!
//! Console actions call the same `personalization` functions as `tessera bureau`.

pub mod client;
pub mod gate;
pub mod holder;
pub mod http;
pub mod pages;
pub mod server;
pub mod staging;

pub use server::{Lab, LabConfig, LabError};
