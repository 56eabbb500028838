//! The XLSX reader: cells streamed one by one, never a sheet's declared range.
//!
//! A workbook may declare (or use) any cell up to `XFD1048576`; a reader that allocates the range
//! of the used cells allocates 17 billion cells for a sheet with one cell in each corner. Here each
//! cell is read on its own, refused past the limits (naming the sheet and the cell), and only the
//! cells of the current row are held.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use calamine::{Data, DataRef, Reader, Xlsx, XlsxError};

use super::{map_header, zip_guard, Row, RowSink};
use crate::census::limits::{
    column_letters, refusal, CellBudget, MAX_COLUMNS, MAX_FILE_BYTES, MAX_ROWS,
};
use crate::census::{
    CensusError, ErrorKind, Location, COLUMNS, ENTITIES_SHEET, ENTITY_COLUMNS, USERS_SHEET,
    USER_COLUMNS,
};

/// Runs a call into the workbook reader, turning a panic of it into an error. calamine 0.38
/// subtracts attacker-given cell coordinates unchecked (a `<dimension ref="A9:G4"/>` overflows):
/// harmless where overflow wraps (release builds), a panic where it is checked (debug builds,
/// fuzzing). Only calls into calamine are guarded; the census code runs outside.
fn guarded<T>(call: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(call))
        .map_err(|_| "the workbook reader failed on this file (a malformed part)".to_string())
}

/// The text of a workbook cell: integral numbers without a decimal part (codes and counts).
fn cell_text(cell: DataRef<'_>) -> String {
    match cell {
        DataRef::Empty => String::new(),
        DataRef::String(s) => s,
        DataRef::SharedString(s) => s.to_string(),
        DataRef::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => {
            format!("{f:.0}")
        }
        other => Data::from(other).to_string(),
    }
}

fn cell_location(sheet: &'static str, row: u32, column: u32) -> Location {
    Location {
        sheet: Some(sheet.to_string()),
        row: usize::try_from(row).unwrap_or(usize::MAX).saturating_add(1),
        column: Some(column_letters(column)),
    }
}

/// The cells of one row, as they come, with their 0-based column.
struct PendingRow {
    row: u32,
    cells: Vec<(u32, String)>,
}

/// One sheet being read: its header once found, then data rows into the sink.
struct SheetReader<'s, S: RowSink> {
    sheet: &'static str,
    required: &'static [&'static str],
    record: &'static str,
    /// Census column of each 0-based sheet column, once the header row is read.
    map: Option<Vec<Option<usize>>>,
    sink: &'s mut S,
}

impl<S: RowSink> SheetReader<'_, S> {
    fn flush(&mut self, pending: &PendingRow) -> Result<(), Vec<CensusError>> {
        let row = usize::try_from(pending.row).unwrap_or(usize::MAX) + 1;
        let Some(map) = &self.map else {
            // The first row with a value is the header.
            let width = pending.cells.iter().map(|(c, _)| *c as usize + 1).max();
            let mut header = vec![""; width.unwrap_or(0)];
            for (column, text) in &pending.cells {
                header[*column as usize] = text.as_str();
            }
            self.map = Some(map_header(header, self.required, Some(self.sheet), row)?);
            return Ok(());
        };
        let mut cells = [""; COLUMNS.len()];
        for (column, text) in &pending.cells {
            if let Some(Some(i)) = map.get(*column as usize) {
                cells[*i] = text.trim();
            }
        }
        if cells.iter().all(|c| c.is_empty()) {
            return Ok(());
        }
        cells[super::column_index("record")] = self.record;
        self.sink.row(&Row {
            sheet: Some(self.sheet),
            row,
            cells,
        });
        Ok(())
    }
}

/// Reads one sheet: header row first, then data rows, each tagged with its record kind.
fn sheet_rows<R: std::io::Read + std::io::Seek>(
    workbook: &mut Xlsx<R>,
    wanted: &'static str,
    required: &'static [&'static str],
    record: &'static str,
    budget: &mut CellBudget,
    sink: &mut impl RowSink,
) -> Result<(), Vec<CensusError>> {
    let unreadable = |message: String| vec![CensusError::unreadable(Some(wanted), message)];
    let empty = || unreadable(format!("sheet {wanted} is empty: expected a header row"));
    let names = guarded(|| workbook.sheet_names()).unwrap_or_default();
    let Some(name) = names
        .into_iter()
        .find(|n| n.trim().eq_ignore_ascii_case(wanted))
    else {
        return Err(unreadable(format!("the workbook has no sheet {wanted}")));
    };
    let mut cells = match guarded(|| workbook.worksheet_cells_reader(&name)) {
        Ok(Ok(cells)) => cells,
        Ok(Err(XlsxError::NotAWorksheet(_))) => return Err(empty()),
        Ok(Err(e)) => return Err(unreadable(format!("cannot read sheet {wanted}: {e}"))),
        Err(e) => return Err(unreadable(format!("cannot read sheet {wanted}: {e}"))),
    };
    let mut reader = SheetReader {
        sheet: wanted,
        required,
        record,
        map: None,
        sink,
    };
    let mut pending: Option<PendingRow> = None;
    loop {
        let cell = match guarded(|| cells.next_cell()) {
            Ok(Ok(Some(cell))) => cell,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(unreadable(format!("cannot read sheet {wanted}: {e}"))),
            Err(e) => return Err(unreadable(format!("cannot read sheet {wanted}: {e}"))),
        };
        let (row, column) = cell.get_position();
        let value = cell.get_value();
        if matches!(value, DataRef::Empty) {
            continue;
        }
        let at = || cell_location(wanted, row, column);
        let name = || format!("{}{}", column_letters(column), u64::from(row) + 1);
        if column as usize >= MAX_COLUMNS {
            return Err(vec![refusal(
                at(),
                format!(
                    "cell {} is beyond column {}: a census sheet may have at most {MAX_COLUMNS} columns",
                    name(),
                    column_letters(u32::try_from(MAX_COLUMNS - 1).unwrap_or(0))
                ),
            )]);
        }
        if row as usize >= MAX_ROWS {
            return Err(vec![refusal(
                at(),
                format!(
                    "cell {} is beyond row {MAX_ROWS}: a census sheet may have at most {MAX_ROWS} rows",
                    name()
                ),
            )]);
        }
        let text = cell_text(value.clone());
        budget.take(text.len(), at).map_err(|e| vec![e])?;
        match &mut pending {
            Some(p) if p.row == row => p.cells.push((column, text)),
            Some(p) if p.row > row => {
                return Err(vec![CensusError::new(
                    at(),
                    ErrorKind::Unreadable,
                    format!(
                        "cell {} comes after row {}: the rows of the sheet are out of order (save the workbook again from a spreadsheet)",
                        name(),
                        u64::from(p.row) + 1
                    ),
                )]);
            }
            _ => {
                if let Some(done) = pending.take() {
                    reader.flush(&done)?;
                }
                pending = Some(PendingRow {
                    row,
                    cells: vec![(column, text)],
                });
            }
        }
    }
    if let Some(done) = pending.take() {
        reader.flush(&done)?;
    }
    if reader.map.is_none() {
        return Err(empty());
    }
    Ok(())
}

/// Reads a census workbook (`source` names it in messages) into the sink: the `entities` sheet,
/// then the `users` sheet. Errors of the file itself are returned; the sink's rows are then to be
/// discarded.
pub(super) fn rows(
    bytes: &[u8],
    source: &str,
    sink: &mut impl RowSink,
) -> Result<(), Vec<CensusError>> {
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        return Err(vec![refusal(
            Location {
                sheet: None,
                row: 0,
                column: None,
            },
            format!(
                "a census file may have at most {MAX_FILE_BYTES} bytes, this one has {}",
                bytes.len()
            ),
        )]);
    }
    zip_guard::check_archive(bytes).map_err(|e| vec![e])?;
    let cannot = |e: &dyn std::fmt::Display| {
        vec![CensusError::unreadable(
            None,
            format!("cannot read {source} as an XLSX workbook: {e}"),
        )]
    };
    let mut workbook: Xlsx<_> = match guarded(|| Xlsx::new(Cursor::new(bytes))) {
        Ok(Ok(workbook)) => workbook,
        Ok(Err(e)) => return Err(cannot(&e)),
        Err(e) => return Err(cannot(&e)),
    };
    let mut budget = CellBudget::default();
    let entities = sheet_rows(
        &mut workbook,
        ENTITIES_SHEET,
        &ENTITY_COLUMNS,
        "entity",
        &mut budget,
        sink,
    );
    if let Err(e) = &entities {
        if e.iter().any(|e| e.kind == ErrorKind::TooLarge) {
            return entities;
        }
    }
    let users = sheet_rows(
        &mut workbook,
        USERS_SHEET,
        &USER_COLUMNS,
        "user",
        &mut budget,
        sink,
    );
    match (entities, users) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(mut a), Err(b)) => {
            a.extend(b);
            Err(a)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}
