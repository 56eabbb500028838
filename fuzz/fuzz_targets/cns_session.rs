//! APDU sequences with power cuts to the CNS card: see `tessera_fuzz::cns_properties::cns_session`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tessera_fuzz::cns_properties::cns_session(data));
