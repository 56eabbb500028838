//! Hostile census files: each one gets located errors or a one-sentence refusal, never an abort
//! and never an allocation from a size the file merely declares.
// Test helpers unwrap like the tests they serve (clippy allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

#[path = "../../fuzz/src/xlsx_parts.rs"]
#[allow(dead_code)]
mod xlsx_parts;

use personalization::census::{self, limits, CensusError, ErrorKind, COLUMNS, USER_COLUMNS};
use zip::CompressionMethod;

fn refusal(result: Result<impl std::fmt::Debug, Vec<CensusError>>) -> CensusError {
    let errors = result.expect_err("a refusal");
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.into_iter().next().unwrap()
}

/// A workbook with sheets `entities` and `users`, their header rows, and one more cell.
fn workbook_with_cell(row: u32, column: u16) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let entities = workbook.add_worksheet();
    entities.set_name("entities").unwrap();
    for (c, name) in census::ENTITY_COLUMNS.iter().enumerate() {
        entities
            .write_string(0, u16::try_from(c).unwrap(), *name)
            .unwrap();
    }
    let users = workbook.add_worksheet();
    users.set_name("users").unwrap();
    for (c, name) in USER_COLUMNS.iter().enumerate() {
        users
            .write_string(0, u16::try_from(c).unwrap(), *name)
            .unwrap();
    }
    users.write_string(row, column, "x").unwrap();
    workbook.save_to_buffer().unwrap()
}

#[test]
fn a_cell_at_xfd1048576_is_refused_naming_sheet_and_cell() {
    // The workbook of the issue: 2 KB, one cell in the last column of the last row.
    let bytes = workbook_with_cell(1_048_575, 16_383);
    assert!(bytes.len() < 8 << 10, "{} bytes", bytes.len());
    for error in [
        refusal(census::parse_xlsx_bytes(&bytes)),
        refusal(census::check_xlsx_bytes(&bytes)),
    ] {
        assert_eq!(error.kind, ErrorKind::TooLarge);
        assert_eq!(error.location.sheet.as_deref(), Some("users"));
        assert_eq!(error.location.row, 1_048_576);
        assert_eq!(error.location.column.as_deref(), Some("XFD"));
        assert_eq!(
            error.to_string(),
            "sheet users, row 1048576, column XFD: cell XFD1048576 is beyond column IV: \
             a census sheet may have at most 256 columns"
        );
    }
    // Through a file, as `tessera bureau check` reads it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.xlsx");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(refusal(census::check(&path)).kind, ErrorKind::TooLarge);
}

#[test]
fn a_far_but_allowed_cell_is_only_a_row() {
    // Row 1 048 576 in column A is within the limits: read as one more (incomplete) user row.
    let bytes = workbook_with_cell(1_048_575, 0);
    let errors = census::parse_xlsx_bytes(&bytes).unwrap_err();
    assert!(
        errors.iter().all(|e| e.location.row == 1_048_576),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.kind == ErrorKind::MissingField));
}

/// A `users` sheet whose XML is padded with `padding` spaces (valid XML, compresses ~1000:1).
fn padded_users_sheet(padding: usize) -> Vec<u8> {
    let mut xml = br#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#.to_vec();
    xml.resize(xml.len() + padding, b' ');
    xml.extend_from_slice(b"<sheetData/></worksheet>");
    xml
}

#[test]
fn a_zip_bomb_is_refused_from_its_declared_sizes() {
    let sheet = padded_users_sheet(4 << 20);
    let default_sheet: &[u8] = br#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>"#;
    let bytes = xlsx_parts::archive(
        &[
            br#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="entities" sheetId="1" r:id="rId1"/><sheet name="users" sheetId="2" r:id="rId2"/></sheets></workbook>"#,
            br#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>"#,
            default_sheet,
            &sheet,
        ],
        CompressionMethod::Deflated,
    );
    assert!(bytes.len() < 64 << 10, "{} bytes", bytes.len());
    let error = refusal(census::parse_xlsx_bytes(&bytes));
    assert_eq!(error.kind, ErrorKind::TooLarge);
    assert!(
        error.message.contains("xl/worksheets/sheet2.xml"),
        "{error}"
    );
    assert!(error.message.contains("zip bomb"), "{error}");
}

/// Rewrites the uncompressed size an archive declares for every entry of that size (local and
/// central headers).
fn declare_size(archive: &mut [u8], actual: u32, declared: u32) {
    let mut patched = 0;
    for at in 0..archive.len().saturating_sub(30) {
        let offset = match archive[at..at + 4] {
            [0x50, 0x4B, 0x03, 0x04] => 22,
            [0x50, 0x4B, 0x01, 0x02] => 24,
            _ => continue,
        };
        let field = &mut archive[at + offset..at + offset + 4];
        if *field == actual.to_le_bytes() {
            field.copy_from_slice(&declared.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "one local and one central header");
}

#[test]
fn an_entry_inflating_past_its_declared_size_is_cut_off() {
    // Under the ratio limit, but the entry holds far more than it declares: the reader stops at
    // the declared size with an error instead of inflating the rest.
    let sheet = padded_users_sheet(900 << 10);
    let mut bytes = xlsx_parts::archive(
        &[
            br#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="entities" sheetId="1" r:id="rId1"/><sheet name="users" sheetId="2" r:id="rId2"/></sheets></workbook>"#,
            br#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>"#,
            br#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>entity</t></is></c></row></sheetData></worksheet>"#,
            &sheet,
        ],
        CompressionMethod::Deflated,
    );
    declare_size(&mut bytes, u32::try_from(sheet.len()).unwrap(), 200);
    let errors = census::parse_xlsx_bytes(&bytes).unwrap_err();
    let error = errors
        .iter()
        .find(|e| e.location.sheet.as_deref() == Some("users"))
        .expect("an error about the users sheet");
    assert_eq!(error.kind, ErrorKind::Unreadable, "{error}");
    assert!(
        error.message.contains("declared uncompressed size"),
        "{error}"
    );
}

#[test]
fn an_encrypted_workbook_or_legacy_xls_is_named() {
    let mut bytes = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    bytes.resize(4096, 0);
    let error = refusal(census::parse_xlsx_bytes(&bytes));
    assert_eq!(error.kind, ErrorKind::Unreadable);
    assert!(error.message.contains("encrypted"), "{error}");
}

#[test]
fn rows_out_of_order_are_refused() {
    let users = br#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="9"><c r="A9" t="inlineStr"><is><t>x</t></is></c></row><row r="5"><c r="A5" t="inlineStr"><is><t>y</t></is></c></row></sheetData></worksheet>"#;
    let entities = br#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>entity</t></is></c></row></sheetData></worksheet>"#;
    let bytes = xlsx_parts::workbook(&xlsx_parts::assembled_input(&[
        br#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="entities" sheetId="1" r:id="rId1"/><sheet name="users" sheetId="2" r:id="rId2"/></sheets></workbook>"#,
        br#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>"#,
        entities,
        users,
    ]));
    let errors = census::parse_xlsx_bytes(&bytes).unwrap_err();
    let error = errors
        .iter()
        .find(|e| e.location.sheet.as_deref() == Some("users"))
        .unwrap();
    assert_eq!(error.kind, ErrorKind::Unreadable);
    assert_eq!(error.location.row, 5);
    assert!(error.message.contains("out of order"), "{error}");
}

fn header() -> String {
    let mut csv = COLUMNS.join(",");
    csv.push('\n');
    csv
}

#[test]
fn csv_limits_are_located() {
    // Too many columns.
    let mut csv = header();
    csv.push_str(&"x,".repeat(limits::MAX_COLUMNS));
    csv.push('\n');
    let error = refusal(census::parse_csv(csv.as_bytes()));
    assert_eq!((error.kind, error.location.row), (ErrorKind::TooLarge, 2));
    assert!(error.message.contains("at most 256 columns"), "{error}");

    // A cell too long, named by its column.
    let mut csv = header();
    csv.push_str(&format!(
        "user,058,,,,,,,,{},Mario,m@x.it,ALS\n",
        "R".repeat(limits::MAX_CELL_BYTES + 1)
    ));
    let error = refusal(census::parse_csv(csv.as_bytes()));
    assert_eq!(error.kind, ErrorKind::TooLarge);
    assert_eq!(
        error.to_string(),
        format!(
            "row 2, column surname: a cell may have at most {} bytes, this one has {}",
            limits::MAX_CELL_BYTES,
            limits::MAX_CELL_BYTES + 1
        )
    );

    // A line too long (a note column past the census columns).
    let mut csv = header();
    csv.push_str(&"n".repeat(limits::MAX_LINE_BYTES + 1));
    let error = refusal(census::parse_csv(csv.as_bytes()));
    assert_eq!((error.kind, error.location.row), (ErrorKind::TooLarge, 2));

    // Too many lines.
    let mut csv = header();
    csv.push_str(&"\n".repeat(limits::MAX_ROWS));
    let error = refusal(census::check_csv(csv.as_bytes()));
    assert_eq!(error.kind, ErrorKind::TooLarge);
    assert_eq!(error.location.row, limits::MAX_ROWS + 1);
}

#[test]
fn errors_past_the_listed_bound_are_counted() {
    // Every row misses its codice fiscale: one error per row, more than are listed.
    let rows = limits::MAX_LISTED_ERRORS + 500;
    let mut csv = header();
    csv.push_str("entity,058040,comune,Comune,1,2,999999,comune.example.it,,,,,\n");
    for _ in 0..rows {
        csv.push_str("user,058040,,,,,,,,Rossi,Mario,mario.rossi@comune.example.it,ALS\n");
    }
    let errors = census::parse_csv(csv.as_bytes()).unwrap_err();
    assert_eq!(errors.len(), limits::MAX_LISTED_ERRORS + 1);
    assert!(errors[..limits::MAX_LISTED_ERRORS]
        .windows(2)
        .all(|w| w[0].location <= w[1].location));
    assert_eq!(errors[0].location.row, 3, "the first errors are listed");
    let last = errors.last().unwrap();
    assert_eq!(last.kind, ErrorKind::TooLarge);
    assert_eq!(
        last.message,
        format!(
            "and 500 more errors (only the first {} are listed)",
            limits::MAX_LISTED_ERRORS
        )
    );
}

/// A valid one-user census with one cell replaced.
fn census_with(column: &str, value: &str) -> String {
    let mut cells = [
        "user",
        "058040",
        "",
        "",
        "",
        "",
        "",
        "",
        "FRRLSN71E09D773A",
        "Ferri",
        "Alessandro",
        "alessandro.ferri@comune.frascati.rm.it",
        "SINDACO",
    ]
    .map(str::to_string);
    let mut entity = [
        "entity",
        "058040",
        "comune",
        "Comune di Frascati",
        "2",
        "3",
        "5",
        "comune.frascati.rm.it",
        "",
        "",
        "",
        "",
        "",
    ]
    .map(str::to_string);
    let i = COLUMNS.iter().position(|c| *c == column).unwrap();
    if cells[i].is_empty() {
        entity[i] = value.to_string();
    } else {
        cells[i] = value.to_string();
    }
    let quote = |row: &[String]| {
        row.iter()
            .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "{}\n{}\n{}\n",
        COLUMNS.join(","),
        quote(&entity),
        quote(&cells)
    )
}

#[test]
fn the_base_census_of_the_character_tests_is_valid() {
    for column in ["surname", "name", "entity_name", "email"] {
        let value = match column {
            "surname" => "Ferri",
            "name" => "Alessandro",
            "entity_name" => "Comune di Frascati",
            _ => "alessandro.ferri@comune.frascati.rm.it",
        };
        census::parse_csv(census_with(column, value).as_bytes()).unwrap();
    }
}

#[test]
fn control_bidi_and_invisible_characters_are_refused_where_printed() {
    for (column, value, code) in [
        ("surname", "Fer\u{7}ri", "U+0007"),
        ("surname", "Ferri\u{1B}[31m", "U+001B"),
        ("name", "Ales\u{0}sandro", "U+0000"),
        ("name", "Alessandro\u{7F}", "U+007F"),
        ("surname", "Fer\u{85}ri", "U+0085"),
        ("surname", "\u{202E}irreF", "U+202E"),
        ("name", "Ale\u{2066}ssandro\u{2069}", "U+2066"),
        ("entity_name", "Comune di \u{202D}Frascati", "U+202D"),
        ("entity_name", "Comune\u{200B} di Frascati", "U+200B"),
        ("surname", "Fer\u{AD}ri", "U+00AD"),
        ("name", "Alessandro\u{FEFF}", "U+FEFF"),
        (
            "email",
            "alessandro.ferri\u{200D}@comune.frascati.rm.it",
            "U+200D",
        ),
        (
            "email",
            "alessandro.ferri@comune.frascati.rm.it\u{202E}",
            "U+202E",
        ),
        ("email_domains", "comune.frascati.rm.it\u{1B}", "U+001B"),
    ] {
        let errors = census::parse_csv(census_with(column, value).as_bytes()).unwrap_err();
        let error = errors
            .iter()
            .find(|e| e.kind == ErrorKind::ForbiddenCharacter)
            .unwrap_or_else(|| panic!("{value:?} in {column} accepted: {errors:?}"));
        let row = if matches!(column, "entity_name" | "email_domains") {
            2
        } else {
            3
        };
        assert_eq!(error.location.row, row, "{error}");
        assert_eq!(error.location.column.as_deref(), Some(column), "{error}");
        assert!(error.message.contains(code), "{error}");
        // The check reports the same.
        assert_eq!(
            census::check_csv(census_with(column, value).as_bytes()).unwrap_err(),
            errors
        );
    }
}

#[test]
fn a_wrapped_cell_is_folded_not_refused() {
    let census =
        census::parse_csv(census_with("entity_name", "Comune di\nFrascati").as_bytes()).unwrap();
    assert_eq!(census.entities[0].name, "Comune di Frascati");
    let census = census::parse_csv(census_with("surname", "Ferri\tBianchi").as_bytes()).unwrap();
    assert_eq!(census.people[0].surname, "Ferri Bianchi");
}
