//! The census workbook reader and rules on arbitrary bytes (a workbook file, or the XML of its
//! parts: see `tessera_fuzz::xlsx_parts`): never a panic, never an allocation past the census
//! limits, and the check (no census built) agrees with the full parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use personalization::census;
use tessera_fuzz::xlsx_parts;

fuzz_target!(|data: &[u8]| {
    let workbook = xlsx_parts::workbook(data);
    let parsed = census::parse_xlsx_bytes(&workbook);
    let checked = census::check_xlsx_bytes(&workbook);
    match (&parsed, &checked) {
        (Ok(c), Ok(s)) => {
            assert_eq!(c.entities.len(), s.entities);
            assert_eq!(c.people.len(), s.people);
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("parse and check disagree: {parsed:?} / {checked:?}"),
    }
});
