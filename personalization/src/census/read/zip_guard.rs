//! What a workbook's zip archive declares, checked before anything is inflated.
//!
//! An XLSX file is a zip archive of XML parts. Each entry declares its uncompressed size in the
//! central directory; the check here refuses an archive whose declarations are too large (per
//! entry, in total, or in ratio to the compressed bytes: a zip bomb). An entry that lies about its
//! size is caught while inflating: the zip reader (the same `zip` crate the workbook reader uses)
//! fails as soon as an entry yields more bytes than it declared, so no part ever inflates past the
//! limits checked here.
//!
//! One declaration inside a part is checked too: the `uniqueCount` of the shared strings
//! (`xl/sharedStrings.xml`), which the workbook reader turns into one allocation before it reads a
//! single string (found by fuzzing: `uniqueCount="10000000000000"` in a 500-byte file aborted with a
//! 160-petabyte allocation).

use std::io::{BufRead, Cursor};

use quick_xml::events::Event;

use zip::ZipArchive;

use crate::census::limits::{
    refusal, MAX_COMPRESSION_RATIO, MAX_ENTRY_BYTES, MAX_SHARED_STRINGS, MAX_UNCOMPRESSED_BYTES,
    MAX_ZIP_ENTRIES, RATIO_EXEMPT_BYTES,
};
use crate::census::{CensusError, Location};

/// The first bytes of an OLE compound file: an encrypted workbook, or a legacy `.xls`.
const COMPOUND_FILE_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

fn whole_file() -> Location {
    Location {
        sheet: None,
        row: 0,
        column: None,
    }
}

/// Checks the archive's declared sizes against the limits.
pub(crate) fn check_archive(bytes: &[u8]) -> Result<(), CensusError> {
    if bytes.starts_with(&COMPOUND_FILE_MAGIC) {
        return Err(CensusError::unreadable(
            None,
            "this is an encrypted workbook or a legacy .xls file: save it as an unprotected .xlsx",
        ));
    }
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        CensusError::unreadable(None, format!("not an XLSX workbook (a zip archive): {e}"))
    })?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(refusal(
            whole_file(),
            format!(
                "a workbook may hold at most {MAX_ZIP_ENTRIES} parts, this one has {}",
                archive.len()
            ),
        ));
    }
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_data(i).map_err(|e| {
            CensusError::unreadable(None, format!("not an XLSX workbook: part {i}: {e}"))
        })?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let size = entry.size();
        if size > MAX_ENTRY_BYTES {
            return Err(refusal(
                whole_file(),
                format!(
                    "workbook part {name:?} would inflate to {size} bytes, at most {MAX_ENTRY_BYTES} are read"
                ),
            ));
        }
        let compressed = entry.compressed_size();
        if size > RATIO_EXEMPT_BYTES && size / MAX_COMPRESSION_RATIO > compressed {
            return Err(refusal(
                whole_file(),
                format!(
                    "workbook part {name:?} would inflate from {compressed} to {size} bytes, more than {MAX_COMPRESSION_RATIO} times (a zip bomb?)"
                ),
            ));
        }
        total = total.saturating_add(size);
        if total > MAX_UNCOMPRESSED_BYTES {
            return Err(refusal(
                whole_file(),
                format!(
                    "the parts of a workbook may inflate to at most {MAX_UNCOMPRESSED_BYTES} bytes together"
                ),
            ));
        }
    }
    check_shared_strings(&mut archive)
}

/// Refuses a shared-strings part that declares more strings than a census may have. The part is read
/// as the workbook reader reads it (the same XML library, configured the same way) up to the first
/// `sst` start tag, so a decoy tag in a comment or an attribute cannot hide the one it acts on.
fn check_shared_strings(archive: &mut ZipArchive<Cursor<&[u8]>>) -> Result<(), CensusError> {
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(|e| {
            CensusError::unreadable(None, format!("not an XLSX workbook: part {i}: {e}"))
        })?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        if !name.to_ascii_lowercase().ends_with("sharedstrings.xml") {
            continue;
        }
        if let Some(count) = declared_unique_count(std::io::BufReader::new(entry)) {
            if count > MAX_SHARED_STRINGS {
                return Err(refusal(
                    whole_file(),
                    format!(
                        "workbook part {name:?} declares {count} shared strings, at most {MAX_SHARED_STRINGS} are read"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The `uniqueCount` of the first `sst` start tag (any namespace prefix), read generously (see
/// [`largest_number_after`]). `None` if there is no such tag or number (the workbook reader then
/// reserves nothing either) or the XML breaks first (it fails there too).
fn declared_unique_count(reader: impl BufRead) -> Option<u64> {
    let mut xml = quick_xml::Reader::from_reader(reader);
    let config = xml.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(tag)) if tag.local_name().as_ref() == "sst" => {
                // The workbook reader's attribute parser is lenient (a stray quote does not stop
                // it), so every `uniqueCount=` in the tag counts, and the largest decides.
                return largest_number_after(tag.attributes_raw().as_bytes(), b"uniqueCount");
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The largest number written as `key = "digits"` (or `'…'`, or unquoted, optional `+`) anywhere in
/// `text`, saturating at `u64::MAX`.
fn largest_number_after(text: &[u8], key: &[u8]) -> Option<u64> {
    let mut largest = None;
    let mut rest = text;
    while let Some(at) = rest.windows(key.len()).position(|w| w == key) {
        rest = &rest[at + key.len()..];
        let mut value = rest.iter().copied().skip_while(u8::is_ascii_whitespace);
        if value.next() != Some(b'=') {
            continue;
        }
        let value: Vec<u8> = value
            .skip_while(|b| b.is_ascii_whitespace() || *b == b'"' || *b == b'\'' || *b == b'+')
            .take_while(u8::is_ascii_digit)
            .collect();
        if value.is_empty() {
            continue;
        }
        let number = value.iter().fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        largest = largest.max(Some(number));
    }
    largest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sst_tag_is_found_as_the_workbook_reader_finds_it() {
        let cases: [(&[u8], Option<u64>); 10] = [
            (
                br#"<?xml version="1.0"?><sst xmlns="x" count="3" uniqueCount="2">"#,
                Some(2),
            ),
            (br"<x:sst uniqueCount = '+17'>", Some(17)),
            (br#"<sst count="5">"#, None),
            // Generous on purpose: any number the reader might take counts.
            (br#"<sst xuniqueCount="5">"#, Some(5)),
            (br#"<sst uniqueCount="12a">"#, Some(12)),
            // A stray quote before the attribute (the second fuzz find).
            (
                br#"<sst "?> <sst count="1" uniqueCount="6666666666666686"><si><t>a"b</t></si>"#,
                Some(6_666_666_666_666_686),
            ),
            (
                br#"<sst uniqueCount="99999999999999999999999999"/>"#,
                Some(u64::MAX),
            ),
            // Decoys: text that looks like a tag inside the declaration or a comment.
            (
                br#"<?xml version="1.0" encoding="<sst "?><!-- <sst uniqueCount="1"> --><sst uniqueCount="666666666666">"#,
                Some(666_666_666_666),
            ),
            (br"<sstx><si/>", None),
            (b"", None),
        ];
        for (part, expected) in cases {
            assert_eq!(
                declared_unique_count(part),
                expected,
                "{}",
                String::from_utf8_lossy(part)
            );
        }
    }
}
