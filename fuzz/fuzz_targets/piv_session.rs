//! The card dispatcher with the PIV applet behind it, fed operation sequences (power cuts included)
//! against a model: see `tessera_fuzz::piv_model`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tessera_fuzz::piv_model::piv_session(data));
