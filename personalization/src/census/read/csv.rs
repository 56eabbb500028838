//! The CSV reader: encoding and delimiter sniffed, editor line numbers, every size bounded.

use std::borrow::Cow;

use super::{map_header, mapped_row, RowSink};
use crate::census::limits::{
    self, refusal, CellBudget, MAX_COLUMNS, MAX_FILE_BYTES, MAX_LINE_BYTES, MAX_ROWS,
};
use crate::census::{CensusError, ErrorKind, Location, COLUMNS};

/// Windows-1252 code points for the bytes 0x80–0x9F (the rest is Latin-1).
const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

/// Decodes a CSV file: UTF-8 (BOM optional), UTF-16 with a BOM, else Windows-1252 (the encoding of
/// a CSV saved by an Italian Excel). Valid UTF-8 is borrowed, not copied.
pub(crate) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest);
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
        return Cow::Owned(utf16(rest, true));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return Cow::Owned(utf16(rest, false));
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(
            bytes
                .iter()
                .map(|&b| match b {
                    0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)],
                    _ => char::from(b),
                })
                .collect(),
        ),
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
    /// Indexes the lines, refusing a text of more than [`MAX_ROWS`] lines or with a line longer
    /// than [`MAX_LINE_BYTES`].
    fn new(text: &'a str) -> Result<Self, CensusError> {
        let text = text.as_bytes();
        let mut starts = vec![0];
        let mut i = 0;
        let push = |starts: &mut Vec<usize>, next: usize| {
            let line = starts.len();
            let start = starts.last().copied().unwrap_or(0);
            if next - start > MAX_LINE_BYTES + 2 {
                return Err(refusal(
                    at_row(line),
                    format!(
                        "a line may have at most {MAX_LINE_BYTES} bytes, this one has {}",
                        next - start
                    ),
                ));
            }
            if line > MAX_ROWS {
                return Err(refusal(
                    at_row(line),
                    format!("a census may have at most {MAX_ROWS} lines"),
                ));
            }
            starts.push(next);
            Ok(())
        };
        while i < text.len() {
            match text[i] {
                b'\r' if text.get(i + 1) == Some(&b'\n') => {
                    push(&mut starts, i + 2)?;
                    i += 2;
                    continue;
                }
                b'\r' | b'\n' => push(&mut starts, i + 1)?,
                _ => {}
            }
            i += 1;
        }
        let last = starts.last().copied().unwrap_or(0);
        if text.len() - last > MAX_LINE_BYTES {
            return Err(refusal(
                at_row(starts.len()),
                format!(
                    "a line may have at most {MAX_LINE_BYTES} bytes, this one has {}",
                    text.len() - last
                ),
            ));
        }
        if last < text.len() && starts.len() > MAX_ROWS {
            return Err(refusal(
                at_row(starts.len()),
                format!("a census may have at most {MAX_ROWS} lines"),
            ));
        }
        Ok(Lines { text, starts })
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

fn at_row(row: usize) -> Location {
    Location {
        sheet: None,
        row,
        column: None,
    }
}

/// The name a location gives a cell in column `index` (0-based): its census column, else its
/// header, else its number.
fn column_name(header: &[String], map: &[Option<usize>], index: usize) -> String {
    match map.get(index).copied().flatten() {
        Some(c) => COLUMNS[c].to_string(),
        None => match header.get(index).map(|h| h.trim()) {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => (index + 1).to_string(),
        },
    }
}

/// Checks a record against the column and cell limits.
fn check_record(
    record: &csv::StringRecord,
    row: usize,
    header: &[String],
    map: &[Option<usize>],
    budget: &mut CellBudget,
) -> Result<(), CensusError> {
    if record.len() > MAX_COLUMNS {
        return Err(refusal(
            at_row(row),
            format!(
                "a census row may have at most {MAX_COLUMNS} columns, this one has {}",
                record.len()
            ),
        ));
    }
    for (index, cell) in record.iter().enumerate() {
        if cell.is_empty() {
            continue;
        }
        budget.take(cell.len(), || Location {
            sheet: None,
            row,
            column: Some(column_name(header, map, index)),
        })?;
    }
    Ok(())
}

fn unreadable_at(row: usize, e: &csv::Error) -> CensusError {
    CensusError::new(
        at_row(row),
        ErrorKind::Unreadable,
        format!("unreadable CSV: {e}"),
    )
}

/// Reads a CSV census (every column, the `record` column saying which kind) into the sink.
/// Errors of the file itself (encoding, structure, limits) are returned; the sink's rows are then
/// to be discarded.
pub(super) fn rows(bytes: &[u8], sink: &mut impl RowSink) -> Result<(), Vec<CensusError>> {
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        return Err(vec![refusal(
            at_row(0),
            format!(
                "a census file may have at most {MAX_FILE_BYTES} bytes, this one has {}",
                bytes.len()
            ),
        )]);
    }
    let text = decode(bytes);
    let lines = Lines::new(&text).map_err(|e| vec![e])?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .delimiter(sniff_delimiter(&text))
        .from_reader(text.as_bytes());
    let mut errors = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut budget = CellBudget::default();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => {
                return Err(vec![CensusError::unreadable(
                    None,
                    "the file is empty: expected a header row",
                )])
            }
            Err(e) => errors.push(unreadable_at(lines.line(e.position()), &e)),
            Ok(true) => {
                if !record.iter().all(|c| c.trim().is_empty()) {
                    break;
                }
            }
        }
    }
    let header_row = lines.line(record.position());
    check_record(&record, header_row, &[], &[], &mut budget).map_err(|e| vec![e])?;
    let header: Vec<String> = record.iter().map(str::to_string).collect();
    let map = map_header(
        header.iter().map(String::as_str),
        &COLUMNS,
        None,
        header_row,
    )?;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let row = lines.line(record.position());
                check_record(&record, row, &header, &map, &mut budget).map_err(|e| vec![e])?;
                if let Some(row) = mapped_row(None, row, &map, record.iter()) {
                    sink.row(&row);
                }
            }
            Err(e) => errors.push(unreadable_at(lines.line(e.position()), &e)),
        }
        if errors.len() > limits::MAX_LISTED_ERRORS {
            break;
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
