//! The PIV applet's install parameters on arbitrary bytes: see `tessera_fuzz::card_properties::install_params`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tessera_fuzz::card_properties::install_params(data));
