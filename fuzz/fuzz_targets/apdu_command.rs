//! Command and response APDU decoding on arbitrary bytes: see `tessera_fuzz::apdu_properties::command`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tessera_fuzz::apdu_properties::command(data));
