//! A staging personalization bureau: census intake, card numbering, on-card key generation, a staging
//! CA, split PIN/PUK/password provisioning, envelopes, release of second halves on activation, and a
//! card registry. The bureau talks to cards only through APDUs over a `Transport`, as a personalization
//! machine does, so the same flow personalizes a physical card through PC/SC.

pub mod batch;
pub mod ca;
pub mod census;
pub mod cns;
mod dates;
pub mod envelope;
pub mod issuer;
pub mod lifecycle;
pub mod mail;
mod private_file;
pub mod registry;
pub mod secrets;
pub mod workstation;
