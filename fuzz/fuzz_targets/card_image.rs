//! The card image decoder (bodies framed with a valid checksum, see the property) on arbitrary bytes: see `tessera_fuzz::card_properties::card_image`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tessera_fuzz::card_properties::card_image(data));
