//! The vpcd framing on an arbitrary byte stream read in arbitrary chunks: see
//! `tessera_fuzz::vpcd_properties::framing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tessera_fuzz::vpcd_properties::framing(data));
