//! What a workbook's zip archive declares, checked before anything is inflated.
//!
//! An XLSX file is a zip archive of XML parts. Each entry declares its uncompressed size in the
//! central directory; the check here refuses an archive whose declarations are too large (per
//! entry, in total, or in ratio to the compressed bytes: a zip bomb). An entry that lies about its
//! size is caught while inflating: the zip reader (the same `zip` crate the workbook reader uses)
//! fails as soon as an entry yields more bytes than it declared, so no part ever inflates past the
//! limits checked here.

use std::io::Cursor;

use zip::ZipArchive;

use crate::census::limits::{
    refusal, MAX_COMPRESSION_RATIO, MAX_ENTRY_BYTES, MAX_UNCOMPRESSED_BYTES, MAX_ZIP_ENTRIES,
    RATIO_EXEMPT_BYTES,
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
    let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
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
    Ok(())
}
