//! A streaming CSV reader with exactly the behaviour of the Python handler's reader (CPython's
//! `csv.reader(strict=True)`, excel dialect, fed one LF-terminated physical line at a time).
//!
//! The `csv` crate is lenient where CPython's strict reader reports an error (text after a
//! closing quote, a bare CR inside an unquoted cell, an unterminated quoted cell at end of
//! file, a cell over 131072 characters), and design.md requires both implementations to agree on
//! every error code; so this module is a direct state machine over bytes (decisions P10-P13 of
//! contract/decisions.md):
//!
//! - input is split on LF into physical lines; a line or a row longer than 1 MiB (its bytes,
//!   line breaks included) is MALFORMED_ROW and reading resumes on the next line;
//! - a UTF-8 BOM at the very start is skipped;
//! - a row whose bytes are not UTF-8 is INVALID_ENCODING (checked before the CSV errors);
//! - after an unreadable row, reading resumes on the next physical line;
//! - empty lines (or lines of only CR) are skipped; a row's line is the physical line (1-based,
//!   counting LF bytes) where it starts.
//!
//! Memory stays flat: at most one row (bounded by 1 MiB) is held besides the read buffer.

use std::io::{self, BufRead};

/// Longest row (and physical line), in bytes including line breaks.
pub const MAX_ROW_BYTES: usize = 1 << 20;
/// CPython's default `csv.field_size_limit()`, in characters.
pub const FIELD_LIMIT: usize = 131_072;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What reading one row gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvRow {
    /// The row's cells (valid UTF-8).
    Cells { line: u64, cells: Vec<String> },
    /// The row is longer than 1 MiB.
    TooLong { line: u64 },
    /// The row's bytes are not UTF-8.
    InvalidEncoding { line: u64 },
    /// The row breaks the dialect (decision P10); why, in the contract's words.
    Unreadable { line: u64, reason: Unreadable },
}

/// Why a row cannot be read (decisions P10, P12); its text is the contract's (P25).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// Something other than `,` or the line end follows a closing quote.
    #[error("a closing quote must be followed by ',' or the line end")]
    TextAfterClosingQuote,
    /// The file ends inside a quoted cell.
    #[error("a quoted cell is not closed at the end of the file")]
    UnclosedQuote,
    /// A CR not followed by the line end, outside quotes.
    #[error("a bare CR inside an unquoted cell")]
    BareCr,
    /// A cell longer than [`FIELD_LIMIT`] characters.
    #[error("a cell longer than {FIELD_LIMIT} characters")]
    CellTooLong,
}

#[cfg(test)]
impl CsvRow {
    /// The physical line (1-based) where the row starts.
    fn line(&self) -> u64 {
        match self {
            CsvRow::Cells { line, .. }
            | CsvRow::TooLong { line }
            | CsvRow::InvalidEncoding { line }
            | CsvRow::Unreadable { line, .. } => *line,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuotedField,
    QuoteInQuotedField,
    EatCrnl,
}

/// One physical line, or the fact that it was longer than the limit.
enum Line {
    Bytes(Vec<u8>),
    TooLong,
}

/// Reads CSV rows from a byte stream.
pub struct CsvReader<R: BufRead> {
    input: R,
    lines_read: u64,
    // Raw bytes consumed (BOM and dropped overlong lines included), and where the current row
    // began: the byte offsets of range boundaries (contract P33).
    bytes_read: u64,
    row_start_byte: u64,
    eof: bool,
    // The current row attempt.
    row_bytes: usize,
    row_invalid: bool,
    // CPython's parser state.
    state: State,
    fields: Vec<Vec<u8>>,
    field: Vec<u8>,
    field_chars: usize,
    line: Vec<u8>,
}

enum Step {
    Continue,
    Error(Unreadable),
}

impl<R: BufRead> CsvReader<R> {
    pub fn new(input: R) -> CsvReader<R> {
        Self::starting_at_line(input, 1)
    }

    /// A reader whose first physical line is line `first_line` (a range of a split file, P35:
    /// its first byte starts that line, so no BOM is looked for unless it is line 1).
    pub fn starting_at_line(input: R, first_line: u64) -> CsvReader<R> {
        CsvReader {
            input,
            lines_read: first_line.saturating_sub(1),
            bytes_read: 0,
            row_start_byte: 0,
            eof: false,
            row_bytes: 0,
            row_invalid: false,
            state: State::StartRecord,
            fields: Vec::new(),
            field: Vec::new(),
            field_chars: 0,
            line: Vec::with_capacity(256),
        }
    }

    /// The next physical line (LF kept), `None` at end of input.
    fn next_line(&mut self) -> io::Result<Option<Line>> {
        if self.eof {
            return Ok(None);
        }
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let mut too_long = false;
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                self.eof = true;
                break;
            }
            let (chunk, done) = match memchr::memchr(b'\n', buf) {
                Some(i) => (&buf[..=i], true),
                None => (buf, false),
            };
            let n = chunk.len();
            if !too_long {
                if line.len() + n > MAX_ROW_BYTES {
                    too_long = true;
                    line.clear();
                } else {
                    line.extend_from_slice(chunk);
                }
            }
            self.input.consume(n);
            self.bytes_read += n as u64;
            if done {
                break;
            }
        }
        if too_long {
            self.line = line;
            self.lines_read += 1;
            return Ok(Some(Line::TooLong));
        }
        if line.is_empty() {
            self.line = line;
            return Ok(None);
        }
        self.lines_read += 1;
        if self.lines_read == 1 && line.starts_with(BOM) {
            line.drain(..BOM.len());
        }
        Ok(Some(Line::Bytes(line)))
    }

    fn save_field(&mut self) {
        self.fields.push(std::mem::take(&mut self.field));
        self.field_chars = 0;
    }

    /// A delimiter or the end of the line closes the field (CPython's `parse_save_field`);
    /// the parser goes on in `next`.
    fn end_field(&mut self, next: State) -> Step {
        self.save_field();
        self.state = next;
        Step::Continue
    }

    fn add(&mut self, byte: u8, starts_char: bool) -> Step {
        if starts_char {
            if self.field_chars >= FIELD_LIMIT {
                return Step::Error(Unreadable::CellTooLong);
            }
            self.field_chars += 1;
        }
        self.field.push(byte);
        Step::Continue
    }

    /// CPython's `parse_process_char` for one byte (`None` = end of line).
    fn process(&mut self, c: Option<u8>, starts_char: bool) -> Step {
        let newline = matches!(c, Some(b'\n' | b'\r'));
        let end_state = if c.is_none() {
            State::StartRecord
        } else {
            State::EatCrnl
        };
        if self.state == State::StartRecord {
            if c.is_none() {
                return Step::Continue;
            }
            if newline {
                self.state = State::EatCrnl;
                return Step::Continue;
            }
            self.state = State::StartField;
        }
        match self.state {
            State::StartRecord => Step::Continue,
            State::StartField => match c {
                None | Some(b'\n' | b'\r') => self.end_field(end_state),
                Some(b'"') => {
                    self.state = State::InQuotedField;
                    Step::Continue
                }
                Some(b',') => self.end_field(State::StartField),
                Some(b) => {
                    self.state = State::InField;
                    self.add(b, starts_char)
                }
            },
            State::InField => match c {
                None | Some(b'\n' | b'\r') => self.end_field(end_state),
                Some(b',') => self.end_field(State::StartField),
                Some(b) => self.add(b, starts_char),
            },
            State::InQuotedField => match c {
                None => Step::Continue,
                Some(b'"') => {
                    self.state = State::QuoteInQuotedField;
                    Step::Continue
                }
                Some(b) => self.add(b, starts_char),
            },
            State::QuoteInQuotedField => match c {
                Some(b'"') => {
                    self.state = State::InQuotedField;
                    self.add(b'"', true)
                }
                Some(b',') => self.end_field(State::StartField),
                None | Some(b'\n' | b'\r') => self.end_field(end_state),
                Some(_) => Step::Error(Unreadable::TextAfterClosingQuote),
            },
            State::EatCrnl => match c {
                Some(b'\n' | b'\r') => Step::Continue,
                None => {
                    self.state = State::StartRecord;
                    Step::Continue
                }
                Some(_) => Step::Error(Unreadable::BareCr),
            },
        }
    }

    /// Feed one line to the parser; an error discards the rest of the line.
    fn feed(&mut self, line: &[u8]) -> Result<(), Unreadable> {
        let valid = std::str::from_utf8(line).is_ok();
        if valid {
            for &b in line {
                if let Step::Error(e) = self.process(Some(b), (b & 0xC0) != 0x80) {
                    return Err(e);
                }
            }
        } else {
            self.row_invalid = true;
            // Python decodes with surrogateescape: one character per undecodable byte.
            let mut starts = Vec::with_capacity(line.len());
            for chunk in line.utf8_chunks() {
                for b in chunk.valid().bytes() {
                    starts.push((b & 0xC0) != 0x80);
                }
                starts.extend(std::iter::repeat_n(true, chunk.invalid().len()));
            }
            for (&b, &s) in line.iter().zip(&starts) {
                if let Step::Error(e) = self.process(Some(b), s) {
                    return Err(e);
                }
            }
        }
        match self.process(None, false) {
            Step::Error(e) => Err(e),
            Step::Continue => Ok(()),
        }
    }

    /// CPython's `Reader.__next__`: `Ok(None)` at end of input, else one record attempt (an
    /// empty cell list for a blank line).
    fn read_record(&mut self) -> io::Result<Option<Result<Vec<Vec<u8>>, RowFailure>>> {
        self.state = State::StartRecord;
        self.fields.clear();
        self.field.clear();
        self.field_chars = 0;
        loop {
            let Some(line) = self.next_line()? else {
                if self.state == State::InQuotedField || !self.field.is_empty() {
                    self.state = State::StartRecord;
                    return Ok(Some(Err(RowFailure::Csv(Unreadable::UnclosedQuote))));
                }
                return Ok(None);
            };
            let bytes = match line {
                Line::TooLong => return Ok(Some(Err(RowFailure::TooLong))),
                Line::Bytes(bytes) => bytes,
            };
            self.row_bytes += bytes.len();
            if self.row_bytes > MAX_ROW_BYTES {
                self.line = bytes;
                return Ok(Some(Err(RowFailure::TooLong)));
            }
            let fed = self.feed(&bytes);
            self.line = bytes;
            if let Err(reason) = fed {
                return Ok(Some(Err(RowFailure::Csv(reason))));
            }
            if self.state == State::StartRecord {
                return Ok(Some(Ok(std::mem::take(&mut self.fields))));
            }
        }
    }

    /// Offset (from the reader's first byte) of the first line of the row `next_row` returned
    /// last: where the reader itself starts a row, never inside a quoted cell (P33).
    pub fn row_start_byte(&self) -> u64 {
        self.row_start_byte
    }

    /// The next non-blank row (or row error); `Ok(None)` at end of input.
    pub fn next_row(&mut self) -> io::Result<Option<CsvRow>> {
        loop {
            self.row_bytes = 0;
            self.row_invalid = false;
            self.row_start_byte = self.bytes_read;
            let line = self.lines_read + 1;
            let Some(attempt) = self.read_record()? else {
                return Ok(None);
            };
            return Ok(Some(match attempt {
                Err(RowFailure::TooLong) => CsvRow::TooLong { line },
                Err(RowFailure::Csv(_)) if self.row_invalid => CsvRow::InvalidEncoding { line },
                Err(RowFailure::Csv(reason)) => CsvRow::Unreadable { line, reason },
                Ok(cells) if cells.is_empty() => continue,
                Ok(_) if self.row_invalid => CsvRow::InvalidEncoding { line },
                Ok(cells) => {
                    let mut out = Vec::with_capacity(cells.len());
                    for cell in cells {
                        match String::from_utf8(cell) {
                            Ok(s) => out.push(s),
                            Err(_) => return Ok(Some(CsvRow::InvalidEncoding { line })),
                        }
                    }
                    CsvRow::Cells { line, cells: out }
                }
            }));
        }
    }
}

enum RowFailure {
    TooLong,
    Csv(Unreadable),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows(input: &[u8]) -> Vec<CsvRow> {
        let mut reader = CsvReader::new(input);
        let mut out = Vec::new();
        while let Some(row) = reader.next_row().unwrap() {
            out.push(row);
        }
        out
    }

    fn cells(line: u64, cells: &[&str]) -> CsvRow {
        CsvRow::Cells {
            line,
            cells: cells.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn unreadable(line: u64, reason: Unreadable) -> CsvRow {
        CsvRow::Unreadable { line, reason }
    }

    #[test]
    fn quoting_and_lines() {
        let got = rows(b"a,b\n\"x,1\",\"he said \"\"hi\"\"\"\n\"two\nlines\",z\r\nlast,\"\"");
        assert_eq!(
            got,
            vec![
                cells(1, &["a", "b"]),
                cells(2, &["x,1", "he said \"hi\""]),
                cells(3, &["two\nlines", "z"]),
                cells(5, &["last", ""]),
            ]
        );
    }

    #[test]
    fn bom_blank_lines_and_crlf() {
        let got = rows(b"\xEF\xBB\xBFh1,h2\r\n\r\n\n1,2\r\n\r\n");
        assert_eq!(got, vec![cells(1, &["h1", "h2"]), cells(4, &["1", "2"])]);
        // A BOM later in the file is data.
        let got = rows(b"h\n\xEF\xBB\xBFx\n");
        assert_eq!(got[1], cells(2, &["\u{feff}x"]));
    }

    #[test]
    fn unreadable_lines_resume_on_the_next() {
        let cases: [(&[u8], Vec<CsvRow>); 2] = [
            (
                b"a\n\"x\"y,1\nb\nc\rd\ne\n\"open\n",
                vec![
                    cells(1, &["a"]),
                    unreadable(2, Unreadable::TextAfterClosingQuote),
                    cells(3, &["b"]),
                    unreadable(4, Unreadable::BareCr),
                    cells(5, &["e"]),
                    unreadable(6, Unreadable::UnclosedQuote),
                ],
            ),
            (
                b"ok\ncaf\xE9\n\"x\xE2\x82\",\"unterminated\n",
                vec![
                    cells(1, &["ok"]),
                    CsvRow::InvalidEncoding { line: 2 },
                    CsvRow::InvalidEncoding { line: 3 },
                ],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(rows(input), expected, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn literal_quote_in_unquoted_cell_and_nul() {
        assert_eq!(rows(b"a\"b,c\0d\n"), vec![cells(1, &["a\"b", "c\0d"])]);
    }

    #[test]
    fn field_limit_and_row_limit() {
        let mut big = vec![b'x'; FIELD_LIMIT];
        big.push(b'\n');
        assert!(matches!(rows(&big)[0], CsvRow::Cells { .. }));
        let mut over = vec![b'x'; FIELD_LIMIT + 1];
        over.extend_from_slice(b"\nnext\n");
        let got = rows(&over);
        assert_eq!(got[0], unreadable(1, Unreadable::CellTooLong));
        assert_eq!(got[1], cells(2, &["next"]));
        // A multi-byte character counts once.
        let mut wide = "é".repeat(FIELD_LIMIT).into_bytes();
        wide.push(b'\n');
        assert!(matches!(rows(&wide)[0], CsvRow::Cells { .. }));

        // A row over 1 MiB across many lines (quoted cells with line breaks).
        let mut long = Vec::new();
        for _ in 0..=(MAX_ROW_BYTES / 5) {
            long.extend_from_slice(b"\"x\n\",");
        }
        long.extend_from_slice(b"\"end\"\n");
        let got = rows(&long);
        assert_eq!(got[0], CsvRow::TooLong { line: 1 });

        let mut one_line = vec![b'y'; MAX_ROW_BYTES + 10];
        one_line.extend_from_slice(b"\nz\n");
        assert_eq!(
            rows(&one_line),
            vec![CsvRow::TooLong { line: 1 }, cells(2, &["z"])]
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_lines_increase(input in proptest::collection::vec(
            prop_oneof![Just(b'a'), Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(0xE9u8), Just(0xC3u8), Just(0xA9u8)],
            0..300,
        )) {
            let mut last = 0;
            for row in rows(&input) {
                prop_assert!(row.line() > last);
                last = row.line();
            }
        }

        #[test]
        fn simple_rows_round_trip(values in proptest::collection::vec(
            proptest::collection::vec("[a-z0-9 ,\"\n]{0,8}", 1..5), 1..20)) {
            let mut text = String::new();
            for row in &values {
                let quoted: Vec<String> = row
                    .iter()
                    .map(|v| format!("\"{}\"", v.replace('"', "\"\"")))
                    .collect();
                text.push_str(&quoted.join(","));
                text.push('\n');
            }
            let got = rows(text.as_bytes());
            prop_assert_eq!(got.len(), values.len());
            for (row, want) in got.iter().zip(&values) {
                match row {
                    CsvRow::Cells { cells, .. } => prop_assert_eq!(cells, want),
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
    }
}
