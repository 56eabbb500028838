//! Fuzz input → workbook bytes, shared by the `census_xlsx` target and the corpus replay test
//! (`personalization/tests/census_fuzz_corpus.rs` includes this file), so both read a corpus file
//! the same way.
//!
//! An input whose first byte is even is a workbook file as it is (a real `.xlsx` starts with
//! `PK`): this fuzzes the zip layer. An input whose first byte is odd is the XML of the parts that
//! hold a census, separated by [`SEPARATOR`]: workbook, shared strings, `entities` sheet, `users`
//! sheet (a missing part gets a minimal default). They are stored uncompressed with correct
//! checksums in a generated archive, so mutations reach the XML and the census reader instead of
//! dying on a checksum.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// Separates the XML parts of an assembled input.
pub const SEPARATOR: &[u8] = b"\n--part--\n";

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/worksheets/sheet2.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#;
const ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
const WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet2.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#;
const WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="entities" sheetId="1" r:id="rId1"/><sheet name="users" sheetId="2" r:id="rId2"/></sheets></workbook>"#;
const SHARED_STRINGS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="0" uniqueCount="0"></sst>"#;
const SHEET: &str = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>"#;

/// Splits on every occurrence of [`SEPARATOR`].
fn parts(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        parts.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    parts.push(rest);
    parts
}

/// The workbook a fuzz input stands for (see the module documentation).
pub fn workbook(data: &[u8]) -> Vec<u8> {
    match data.first() {
        Some(first) if first % 2 == 1 => assemble(&data[1..]),
        _ => data.to_vec(),
    }
}

/// The parts of an assembled input, stored uncompressed.
fn assemble(data: &[u8]) -> Vec<u8> {
    archive(&parts(data), CompressionMethod::Stored)
}

/// A workbook of the given XML parts (workbook, shared strings, `entities` sheet, `users` sheet;
/// missing ones get a minimal default), compressed with `method`. (Writing to memory with valid
/// names cannot fail; an empty archive is returned if it did.)
pub fn archive(given: &[&[u8]], method: CompressionMethod) -> Vec<u8> {
    let part =
        |i: usize, default: &'static str| given.get(i).copied().unwrap_or(default.as_bytes());
    let files: [(&str, &[u8]); 7] = [
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("_rels/.rels", ROOT_RELS.as_bytes()),
        ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.as_bytes()),
        ("xl/workbook.xml", part(0, WORKBOOK)),
        ("xl/sharedStrings.xml", part(1, SHARED_STRINGS)),
        ("xl/worksheets/sheet1.xml", part(2, SHEET)),
        ("xl/worksheets/sheet2.xml", part(3, SHEET)),
    ];
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(method)
        .large_file(false);
    for (name, bytes) in files {
        if zip.start_file(name, options).is_err() || zip.write_all(bytes).is_err() {
            return Vec::new();
        }
    }
    zip.finish().map(Cursor::into_inner).unwrap_or_default()
}

/// The assembled-input form of XML parts (for seeding a corpus).
pub fn assembled_input(parts: &[&[u8]]) -> Vec<u8> {
    let mut input = vec![1u8];
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            input.extend_from_slice(SEPARATOR);
        }
        input.extend_from_slice(part);
    }
    input
}
