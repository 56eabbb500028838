//! The census workbook reader and rules on arbitrary bytes (a workbook file, or the XML of its
//! parts: see `tessera_fuzz::xlsx_parts`): never a panic, never an allocation past the census
//! limits, and the check (no census built) agrees with the full parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use personalization::census;
use tessera_fuzz::xlsx_parts;

/// Known panics of the workbook reader (calamine), which the census reader catches and reports
/// as an unreadable file (see `guarded` in `personalization/src/census/read/xlsx.rs`), are not
/// crashes of the census reader: libFuzzer's panic hook aborts on every panic, caught or not, so
/// it is skipped for panics located in calamine's source. Any other panic still aborts.
fn skip_caught_reader_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort_on_panic = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info
                .location()
                .is_some_and(|l| l.file().contains("/calamine-"))
            {
                return;
            }
            abort_on_panic(info);
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    skip_caught_reader_panics();
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
