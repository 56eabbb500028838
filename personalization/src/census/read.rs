//! Reading a census file into raw rows: cells by column, with the location a person sees.

use std::path::Path;

use calamine::{open_workbook, Data, Reader, Xlsx};

use super::{
    CensusError, ErrorKind, Location, COLUMNS, ENTITIES_SHEET, ENTITY_COLUMNS, USERS_SHEET,
    USER_COLUMNS,
};

/// One data row, its cells indexed like [`COLUMNS`] (`None` = empty or absent).
#[derive(Debug, Clone)]
pub(crate) struct RawRow {
    pub sheet: Option<String>,
    pub row: usize,
    pub cells: [Option<String>; COLUMNS.len()],
}

impl RawRow {
    pub fn cell(&self, column: usize) -> Option<&str> {
        self.cells.get(column).and_then(|c| c.as_deref())
    }

    pub fn location(&self, column: Option<usize>) -> Location {
        Location {
            sheet: self.sheet.clone(),
            row: self.row,
            column: column.and_then(|c| COLUMNS.get(c)).map(|c| c.to_string()),
        }
    }
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
fn map_header(
    header: &[String],
    required: &[&str],
    sheet: Option<&str>,
    header_row: usize,
) -> Result<Vec<Option<usize>>, Vec<CensusError>> {
    let mut errors = Vec::new();
    let mut map = Vec::with_capacity(header.len());
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

/// Builds a row from source cells; `None` when every known cell is empty.
fn raw_row(
    sheet: Option<&str>,
    row: usize,
    map: &[Option<usize>],
    values: impl IntoIterator<Item = String>,
) -> Option<RawRow> {
    let mut cells: [Option<String>; COLUMNS.len()] = Default::default();
    for (value, target) in values.into_iter().zip(map) {
        if let Some(i) = target {
            let v = value.trim();
            if !v.is_empty() {
                cells[*i] = Some(v.to_string());
            }
        }
    }
    if cells.iter().all(Option::is_none) {
        return None;
    }
    Some(RawRow {
        sheet: sheet.map(str::to_string),
        row,
        cells,
    })
}

/// Windows-1252 code points for the bytes 0x80–0x9F (the rest is Latin-1).
const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

/// Decodes a CSV file: UTF-8 (BOM optional), UTF-16 with a BOM, else Windows-1252 (the encoding of
/// a CSV saved by an Italian Excel).
pub(crate) fn decode(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest).into_owned();
    }
    let utf16 = |rest: &[u8], little: bool| {
        let units = rest.chunks(2).map(|c| {
            let pair = [c[0], c.get(1).copied().unwrap_or(0)];
            if little {
                u16::from_le_bytes(pair)
            } else {
                u16::from_be_bytes(pair)
            }
        });
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect::<String>()
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes
            .iter()
            .map(|&b| match b {
                0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)],
                _ => char::from(b),
            })
            .collect(),
    }
}

/// The delimiter of a CSV: the most frequent of `,` `;` tab outside quotes in the first line
/// (`,` on a tie).
pub(crate) fn sniff_delimiter(text: &str) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' | '\r' if !quoted => break,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let delimiters = [b',', b';', b'\t'];
    let mut best = 0;
    for i in 1..3 {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    delimiters[best]
}

/// Line numbers as an editor shows them. (The CSV reader's own line count skips blank lines, and
/// its byte offset points before the blank lines that precede a record.)
struct Lines<'a> {
    text: &'a [u8],
    /// Byte offset of the start of each line.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let text = text.as_bytes();
        let mut starts = vec![0];
        let mut i = 0;
        while i < text.len() {
            match text[i] {
                b'\r' if text.get(i + 1) == Some(&b'\n') => {
                    starts.push(i + 2);
                    i += 2;
                    continue;
                }
                b'\r' | b'\n' => starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        Lines { text, starts }
    }

    /// The 1-based line of the record the reader reports at this position.
    fn line(&self, position: Option<&csv::Position>) -> usize {
        let Some(byte) = position.and_then(|p| usize::try_from(p.byte()).ok()) else {
            return 0;
        };
        let mut at = byte;
        while matches!(self.text.get(at), Some(b'\r' | b'\n')) {
            at += 1;
        }
        self.starts.partition_point(|&s| s <= at)
    }
}

/// The rows of a CSV census (every column, the `record` column saying which kind).
pub(crate) fn csv_rows(bytes: &[u8]) -> Result<Vec<RawRow>, Vec<CensusError>> {
    let text = decode(bytes);
    let lines = Lines::new(&text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .delimiter(sniff_delimiter(&text))
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let mut errors = Vec::new();
    let header = loop {
        match records.next() {
            None => {
                return Err(vec![CensusError::unreadable(
                    None,
                    "the file is empty: expected a header row",
                )])
            }
            Some(Err(e)) => errors.push(CensusError::new(
                Location {
                    sheet: None,
                    row: lines.line(e.position()),
                    column: None,
                },
                ErrorKind::Unreadable,
                format!("unreadable CSV: {e}"),
            )),
            Some(Ok(record)) => {
                if record.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                break record;
            }
        }
    };
    let header_row = lines.line(header.position());
    let header: Vec<String> = header.iter().map(str::to_string).collect();
    let map = map_header(&header, &COLUMNS, None, header_row)?;
    let mut rows = Vec::new();
    for record in records {
        match record {
            Ok(record) => {
                let row = lines.line(record.position());
                if let Some(raw) = raw_row(None, row, &map, record.iter().map(str::to_string)) {
                    rows.push(raw);
                }
            }
            Err(e) => errors.push(CensusError::new(
                Location {
                    sheet: None,
                    row: lines.line(e.position()),
                    column: None,
                },
                ErrorKind::Unreadable,
                format!("unreadable CSV: {e}"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// The text of a workbook cell: integral numbers without a decimal part (codes and counts).
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => {
            format!("{f:.0}")
        }
        other => other.to_string(),
    }
}

/// Reads one sheet: header row first, then data rows, each tagged with its record kind.
fn sheet_rows(
    workbook: &mut Xlsx<std::io::BufReader<std::fs::File>>,
    wanted: &str,
    required: &[&str],
    record: &str,
) -> Result<Vec<RawRow>, Vec<CensusError>> {
    let Some(name) = workbook
        .sheet_names()
        .into_iter()
        .find(|n| n.trim().eq_ignore_ascii_case(wanted))
    else {
        return Err(vec![CensusError::unreadable(
            Some(wanted),
            format!("the workbook has no sheet {wanted}"),
        )]);
    };
    let range = workbook.worksheet_range(&name).map_err(|e| {
        vec![CensusError::unreadable(
            Some(wanted),
            format!("cannot read sheet {wanted}: {e}"),
        )]
    })?;
    let Some((first_row, _)) = range.start() else {
        return Err(vec![CensusError::unreadable(
            Some(wanted),
            format!("sheet {wanted} is empty: expected a header row"),
        )]);
    };
    let first_row = usize::try_from(first_row).unwrap_or(0) + 1;
    let mut rows = range.rows().enumerate();
    let Some((_, header)) = rows.next() else {
        return Err(vec![CensusError::unreadable(
            Some(wanted),
            format!("sheet {wanted} is empty: expected a header row"),
        )]);
    };
    let header: Vec<String> = header.iter().map(cell_text).collect();
    // The record column is implied by the sheet; map it to nothing if present.
    let map = map_header(&header, required, Some(wanted), first_row)?;
    let record_index = column_index("record");
    Ok(rows
        .filter_map(|(i, cells)| {
            let mut raw = raw_row(
                Some(wanted),
                first_row + i,
                &map,
                cells.iter().map(cell_text),
            )?;
            raw.cells[record_index] = Some(record.to_string());
            Some(raw)
        })
        .collect())
}

/// The rows of a census workbook: the `entities` sheet, then the `users` sheet.
pub(crate) fn xlsx_rows(path: &Path) -> Result<Vec<RawRow>, Vec<CensusError>> {
    let mut workbook: Xlsx<_> = open_workbook(path).map_err(|e| {
        vec![CensusError::unreadable(
            None,
            format!("cannot read {} as an XLSX workbook: {e}", path.display()),
        )]
    })?;
    let entities = sheet_rows(&mut workbook, ENTITIES_SHEET, &ENTITY_COLUMNS, "entity");
    let users = sheet_rows(&mut workbook, USERS_SHEET, &USER_COLUMNS, "user");
    match (entities, users) {
        (Ok(mut entities), Ok(users)) => {
            entities.extend(users);
            Ok(entities)
        }
        (Err(mut a), Err(b)) => {
            a.extend(b);
            Err(a)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}
