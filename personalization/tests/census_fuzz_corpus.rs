//! Replays the fuzz corpus of the census readers (`fuzz/corpus/census_*`, minimized with
//! `cargo fuzz cmin`) and the hand-made seeds (`fuzz/seeds/census_*`) as ordinary tests: every
//! input is read without a panic and within the limits, and the check agrees with the full parse.
//! The known hostile seeds must be refused for what they are.
//!
//! The seeds are written by the ignored test `write_fuzz_seeds`:
//! `cargo test -p personalization --test census_fuzz_corpus write_fuzz_seeds -- --ignored`.
// Test helpers unwrap like the tests they serve (clippy allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

// Only `files` is used here: the census replay checks its own agreement property.
#[allow(dead_code)]
#[path = "../../fuzz/src/corpus.rs"]
mod corpus;
#[path = "../../fuzz/src/xlsx_parts.rs"]
mod xlsx_parts;

use std::io::Read;
use std::path::{Path, PathBuf};

use personalization::census::{self, CensusError, ErrorKind, USER_COLUMNS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file of `fuzz/<kind>/<target>/`.
fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    corpus::files(&fuzz_dir(), kind, target)
}

/// The census parse and check of one input agree; returns the errors, if any.
fn replay_csv(data: &[u8]) -> Option<Vec<CensusError>> {
    agree(census::parse_csv(data), census::check_csv(data))
}

fn replay_xlsx(data: &[u8]) -> Option<Vec<CensusError>> {
    let workbook = xlsx_parts::workbook(data);
    agree(
        census::parse_xlsx_bytes(&workbook),
        census::check_xlsx_bytes(&workbook),
    )
}

fn agree(
    parsed: Result<census::Census, Vec<CensusError>>,
    checked: Result<census::CensusSummary, Vec<CensusError>>,
) -> Option<Vec<CensusError>> {
    match (parsed, checked) {
        (Ok(c), Ok(s)) => {
            assert_eq!((c.entities.len(), c.people.len()), (s.entities, s.people));
            None
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            assert!(!a.is_empty());
            Some(a)
        }
        (a, b) => panic!("parse and check disagree: {a:?} / {b:?}"),
    }
}

#[test]
fn the_csv_corpus_replays() {
    let corpus = inputs("corpus", "census_csv");
    assert!(corpus.len() >= 10, "a minimized corpus is committed");
    for (name, data) in corpus.iter().chain(&inputs("seeds", "census_csv")) {
        let result = std::panic::catch_unwind(|| replay_csv(data));
        assert!(result.is_ok(), "census_csv input {name} panicked");
    }
}

#[test]
fn the_xlsx_corpus_replays() {
    let corpus = inputs("corpus", "census_xlsx");
    assert!(corpus.len() >= 10, "a minimized corpus is committed");
    for (name, data) in corpus.iter().chain(&inputs("seeds", "census_xlsx")) {
        let result = std::panic::catch_unwind(|| replay_xlsx(data));
        assert!(result.is_ok(), "census_xlsx input {name} panicked");
    }
}

#[test]
fn the_seeds_are_what_they_say() {
    let seeds = inputs("seeds", "census_xlsx");
    let seed = |name: &str| &seeds.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!(replay_xlsx(seed("sample.xlsx")), None);
    assert_eq!(replay_xlsx(seed("sample-parts.xml")), None);
    let refused = |name: &str| {
        let errors = replay_xlsx(seed(name)).unwrap();
        assert_eq!(errors.len(), 1, "{name}: {errors:?}");
        errors[0].clone()
    };
    let e = refused("xfd1048576.xlsx");
    assert_eq!(e.kind, ErrorKind::TooLarge);
    assert!(e.to_string().contains("sheet users") && e.message.contains("XFD1048576"));
    assert_eq!(refused("zip-bomb.xlsx").kind, ErrorKind::TooLarge);
    assert_eq!(refused("far-column-parts.xml").kind, ErrorKind::TooLarge);
    // Found by the fuzzer: `<dimension ref="A9:G4"/>` made calamine overflow (a panic where
    // overflow is checked, as in this test build): now an error, never a panic.
    assert!(replay_xlsx(seed("reversed-dimension-crash.bin")).is_some());
    // Also found: a cell reference with a huge row number made calamine overflow a multiply.
    assert!(replay_xlsx(seed("cell-reference-overflow-crash.bin")).is_some());
    // Also found: `<sst uniqueCount="10000000000000">` made calamine reserve 160 PB and abort.
    // And, once that was checked, the same behind a decoy `<sst "?>` inside the XML declaration.
    for name in [
        "shared-strings-count-crash.bin",
        "shared-strings-decoy-crash.bin",
    ] {
        let e = refused(name);
        assert_eq!(e.kind, ErrorKind::TooLarge);
        assert!(e.message.contains("shared strings"), "{name}: {e}");
    }

    let csv = inputs("seeds", "census_csv");
    let seed = |name: &str| &csv.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!(replay_csv(seed("sample.csv")), None);
    let errors = replay_csv(seed("control-characters.csv")).unwrap();
    assert!(errors
        .iter()
        .all(|e| e.kind == ErrorKind::ForbiddenCharacter));
    assert_eq!(errors.len(), 3);
}

/// The XML of a part of the sample workbook.
fn sample_part(name: &str) -> Vec<u8> {
    let bytes = std::fs::read(fuzz_dir().join("../examples/census.xlsx")).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut part = Vec::new();
    zip.by_name(name).unwrap().read_to_end(&mut part).unwrap();
    part
}

#[test]
#[ignore = "writes fuzz/seeds/census_*"]
fn write_fuzz_seeds() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz_dir().join("seeds").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let sample_csv = std::fs::read(fuzz_dir().join("../examples/census.csv")).unwrap();
    write("census_csv", "sample.csv", &sample_csv);
    let every_error =
        std::fs::read(fuzz_dir().join("../personalization/src/census/testdata/every_error.csv"))
            .unwrap();
    write("census_csv", "every-error.csv", &every_error);
    let text = String::from_utf8(sample_csv.clone()).unwrap();
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend(text.replace(',', ";").bytes());
    write("census_csv", "semicolons-bom.csv", &bom);
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in text.replace(',', "\t").encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    write("census_csv", "tabs-utf16.csv", &utf16);
    let controls = text
        .replacen("Bianchi", "Bian\u{7}chi", 1)
        .replacen("Laura", "Laura\u{202E}", 1)
        .replacen("Comune di Frascati", "Comune di \u{1B}Frascati", 1);
    write("census_csv", "control-characters.csv", controls.as_bytes());

    let sample_xlsx = std::fs::read(fuzz_dir().join("../examples/census.xlsx")).unwrap();
    write("census_xlsx", "sample.xlsx", &sample_xlsx);
    let parts = [
        sample_part("xl/workbook.xml"),
        sample_part("xl/sharedStrings.xml"),
        sample_part("xl/worksheets/sheet1.xml"),
        sample_part("xl/worksheets/sheet2.xml"),
    ];
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    write(
        "census_xlsx",
        "sample-parts.xml",
        &xlsx_parts::assembled_input(&refs),
    );
    // The users sheet with one more cell, far to the right: refused.
    let users = String::from_utf8(parts[3].clone()).unwrap().replace(
        "</sheetData>",
        r#"<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>"#,
    );
    let far: Vec<&[u8]> = vec![&parts[0], &parts[1], &parts[2], users.as_bytes()];
    write(
        "census_xlsx",
        "far-column-parts.xml",
        &xlsx_parts::assembled_input(&far),
    );

    // The workbook of the issue (written as a spreadsheet program would).
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("entities").unwrap();
    for (c, name) in census::ENTITY_COLUMNS.iter().enumerate() {
        sheet
            .write_string(0, u16::try_from(c).unwrap(), *name)
            .unwrap();
    }
    let sheet = workbook.add_worksheet();
    sheet.set_name("users").unwrap();
    for (c, name) in USER_COLUMNS.iter().enumerate() {
        sheet
            .write_string(0, u16::try_from(c).unwrap(), *name)
            .unwrap();
    }
    sheet.write_string(1_048_575, 16_383, "x").unwrap();
    write(
        "census_xlsx",
        "xfd1048576.xlsx",
        &workbook.save_to_buffer().unwrap(),
    );

    // 4 MiB of XML in a few kilobytes.
    let mut bomb = parts[3].clone();
    let at = bomb.windows(11).position(|w| w == b"<sheetData>").unwrap();
    bomb.splice(at..at, std::iter::repeat_n(b' ', 4 << 20));
    let bombed: Vec<&[u8]> = vec![&parts[0], &parts[1], &parts[2], &bomb];
    write(
        "census_xlsx",
        "zip-bomb.xlsx",
        &xlsx_parts::archive(&bombed, zip::CompressionMethod::Deflated),
    );
}
