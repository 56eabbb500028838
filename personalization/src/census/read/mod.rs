//! Reading a census file into rows: cells by column, with the location a person sees. Rows are
//! handed to a sink one at a time and borrow the reader's buffers, so a census is never held
//! twice (once as text, once as cells).

mod csv;
mod xlsx;
mod zip_guard;

use super::{sorted, CensusError, ErrorKind, Location, COLUMNS};

/// Reads a CSV census into the sink (see [`csv::rows`]); the file's own errors come sorted by
/// location, like the validator's.
pub(crate) fn csv_rows(bytes: &[u8], sink: &mut impl RowSink) -> Result<(), Vec<CensusError>> {
    self::csv::rows(bytes, sink).map_err(sorted)
}

/// Reads a census workbook into the sink (see [`xlsx::rows`]); the file's own errors come sorted
/// by location, like the validator's.
pub(crate) fn xlsx_rows(
    bytes: &[u8],
    source: &str,
    sink: &mut impl RowSink,
) -> Result<(), Vec<CensusError>> {
    self::xlsx::rows(bytes, source, sink).map_err(sorted)
}

/// One data row, its cells indexed like [`COLUMNS`] (`""` = empty or absent), trimmed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row<'a> {
    pub sheet: Option<&'static str>,
    pub row: usize,
    pub cells: [&'a str; COLUMNS.len()],
}

impl<'a> Row<'a> {
    pub fn cell(&self, column: usize) -> Option<&'a str> {
        self.cells.get(column).copied().filter(|c| !c.is_empty())
    }
}

/// Receives the rows of a census in file order.
pub(crate) trait RowSink {
    fn row(&mut self, row: &Row<'_>);
}

/// The index in [`COLUMNS`] of a column name.
pub(crate) fn column_index(name: &str) -> usize {
    COLUMNS.iter().position(|c| *c == name).unwrap_or(0)
}

/// A header cell as a column name: trimmed, lower case, spaces and hyphens as underscores.
fn header_name(cell: &str) -> String {
    cell.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .to_lowercase()
        .replace([' ', '-'], "_")
}

/// Maps each source column to its index in [`COLUMNS`] (unknown columns to `None`), requiring the
/// given columns. Reports missing and repeated columns.
fn map_header<'h>(
    header: impl IntoIterator<Item = &'h str>,
    required: &[&str],
    sheet: Option<&str>,
    header_row: usize,
) -> Result<Vec<Option<usize>>, Vec<CensusError>> {
    let mut errors = Vec::new();
    let mut map = Vec::new();
    let mut seen = [false; COLUMNS.len()];
    for cell in header {
        let name = header_name(cell);
        let index = COLUMNS
            .iter()
            .position(|c| *c == name)
            .filter(|&i| required.contains(&COLUMNS[i]));
        if let Some(i) = index {
            if seen[i] {
                errors.push(CensusError::new(
                    Location {
                        sheet: sheet.map(str::to_string),
                        row: header_row,
                        column: Some(COLUMNS[i].to_string()),
                    },
                    ErrorKind::Unreadable,
                    format!("column {} appears twice in the header", COLUMNS[i]),
                ));
            }
            seen[i] = true;
        }
        map.push(index);
    }
    for name in required {
        if !seen[column_index(name)] {
            errors.push(CensusError::new(
                Location {
                    sheet: sheet.map(str::to_string),
                    row: header_row,
                    column: Some((*name).to_string()),
                },
                ErrorKind::MissingField,
                format!("the header has no column {name}"),
            ));
        }
    }
    if errors.is_empty() {
        Ok(map)
    } else {
        Err(errors)
    }
}

/// Builds a row from source cells (trimmed); `None` when every known cell is empty.
fn mapped_row<'a>(
    sheet: Option<&'static str>,
    row: usize,
    map: &[Option<usize>],
    values: impl IntoIterator<Item = &'a str>,
) -> Option<Row<'a>> {
    let mut cells = [""; COLUMNS.len()];
    for (value, target) in values.into_iter().zip(map) {
        if let Some(i) = target {
            cells[*i] = value.trim();
        }
    }
    if cells.iter().all(|c| c.is_empty()) {
        return None;
    }
    Some(Row { sheet, row, cells })
}
