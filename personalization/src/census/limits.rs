//! How much a census file may make the bureau read and allocate. Every limit is far above any real
//! census (a region of 100 000 holders uses a few percent of them; 1 000 000 rows pass) and far
//! below what would exhaust the machine. A file past a limit is refused with one located sentence,
//! before the memory is spent: nothing is allocated from a size the file merely declares.

use super::{CensusError, ErrorKind, Location};

/// Bytes of a census file (CSV or XLSX, as stored).
pub const MAX_FILE_BYTES: u64 = 512 << 20;
/// Rows of a sheet or lines of a CSV file (header and blank lines included), and the highest row
/// number a workbook cell may have.
pub const MAX_ROWS: usize = 2_000_000;
/// Columns of a row: the census has 13, the rest is room for notes.
pub const MAX_COLUMNS: usize = 256;
/// Bytes of one cell (Excel's own limit is 32 767 characters).
pub const MAX_CELL_BYTES: usize = 32 << 10;
/// Bytes of one CSV line.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Non-empty cells of a whole census (1 000 000 users take 7 000 000).
pub const MAX_CELLS: usize = 32 << 20;
/// Bytes of all the cells of a census together.
pub const MAX_CELL_BYTES_TOTAL: usize = 512 << 20;
/// Entries (files) in a workbook's zip archive.
pub const MAX_ZIP_ENTRIES: usize = 10_000;
/// Declared uncompressed bytes of one zip entry.
pub const MAX_ENTRY_BYTES: u64 = 1 << 30;
/// Declared uncompressed bytes of every zip entry together.
pub const MAX_UNCOMPRESSED_BYTES: u64 = 2 << 30;
/// An entry may inflate to at most this many times its compressed size (real workbooks stay
/// under 100; a zip bomb is near deflate's maximum of about 1 000).
pub const MAX_COMPRESSION_RATIO: u64 = 250;
/// Entries smaller than this are not held to the ratio (tiny XML parts compress very well).
pub const RATIO_EXEMPT_BYTES: u64 = 1 << 20;
/// Distinct strings a workbook's shared-strings part may declare (`<sst uniqueCount=…>`): the workbook
/// reader reserves room for that many before reading one, so the declaration alone could make it ask
/// for any amount of memory. 1 000 000 users need about 3 000 000.
pub const MAX_SHARED_STRINGS: u64 = 8 << 20;
/// Errors listed for one census: the first ones by location; the rest are counted.
pub const MAX_LISTED_ERRORS: usize = 10_000;

/// A refusal at a place: the file is past a limit.
pub(crate) fn refusal(location: Location, message: impl Into<String>) -> CensusError {
    CensusError::new(location, ErrorKind::TooLarge, message)
}

/// Counts the cells of a census against [`MAX_CELLS`] and [`MAX_CELL_BYTES_TOTAL`].
#[derive(Debug, Default)]
pub(crate) struct CellBudget {
    cells: usize,
    bytes: usize,
}

impl CellBudget {
    /// Accounts for one non-empty cell of `len` bytes at `location`.
    pub fn take(
        &mut self,
        len: usize,
        location: impl FnOnce() -> Location,
    ) -> Result<(), CensusError> {
        if len > MAX_CELL_BYTES {
            return Err(refusal(
                location(),
                format!("a cell may have at most {MAX_CELL_BYTES} bytes, this one has {len}"),
            ));
        }
        self.cells += 1;
        self.bytes += len;
        if self.cells > MAX_CELLS {
            return Err(refusal(
                location(),
                format!("a census may have at most {MAX_CELLS} non-empty cells"),
            ));
        }
        if self.bytes > MAX_CELL_BYTES_TOTAL {
            return Err(refusal(
                location(),
                format!("the cells of a census may hold at most {MAX_CELL_BYTES_TOTAL} bytes"),
            ));
        }
        Ok(())
    }
}

/// The A1-style name of a 0-based column (`0` → `A`, `16383` → `XFD`).
pub(crate) fn column_letters(column: u32) -> String {
    let mut n = u64::from(column) + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = u8::try_from((n - 1) % 26).unwrap_or(0);
        letters.push(char::from(b'A' + rem));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(255), "IV");
        assert_eq!(column_letters(16383), "XFD");
        assert_eq!(column_letters(u32::MAX), "MWLQKWV");
    }
}
