//! The census CSV reader and rules on arbitrary bytes: never a panic, never an allocation past
//! the census limits, and the check (no census built) agrees with the full parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use personalization::census;

fuzz_target!(|data: &[u8]| {
    let parsed = census::parse_csv(data);
    let checked = census::check_csv(data);
    match (&parsed, &checked) {
        (Ok(c), Ok(s)) => {
            assert_eq!(c.entities.len(), s.entities);
            assert_eq!(c.people.len(), s.people);
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("parse and check disagree: {parsed:?} / {checked:?}"),
    }
});
