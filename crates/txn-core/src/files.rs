//! Reading input files into rows: CSV as a stream (row by row), JSON as one document
//! (decisions P10-P15 of contract/decisions.md).
//!
//! Both readers yield [`Row`]s: the source line, the input values (for error messages) and,
//! for a row that could not be read, its error. File errors (design.md section 3) are reported
//! before the first row, so that no record of a bad file is ever stored.

use std::io::{self, BufRead};
use std::sync::Arc;

use crate::csv::{CsvReader, CsvRow};
use crate::error::{ErrorCode, FileError, RecordError};
use crate::json::{self, JsonValue, ParseOptions, MAX_DEPTH, RECURSION_LIMIT};
use crate::messages::{masked_record, StringMap, ECHO_MAX_KEY_CHARS};
use crate::record::{trim, truncate_chars, validate, Field, InputRecord, Transaction};

/// The kind of an input file, from its key's suffix (decision P15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A `.csv` key.
    Csv,
    /// A `.json` key.
    Json,
}

impl Format {
    /// `.csv` or `.json`, case-insensitive.
    pub fn from_key(key: &str) -> Option<Format> {
        let lower = key.to_lowercase();
        if lower.ends_with(".csv") {
            Some(Format::Csv)
        } else if lower.ends_with(".json") {
            Some(Format::Json)
        } else {
            None
        }
    }
}

/// The input values of a row, as read.
#[derive(Debug, Clone, PartialEq)]
pub enum RowValues {
    /// A CSV row: the header's (trimmed) names and the row's raw cells.
    Csv {
        /// The header's names.
        names: Arc<Vec<String>>,
        /// The row's cells, one per name.
        cells: Vec<String>,
    },
    /// A JSON object's key/value pairs.
    Json(Vec<(String, JsonValue)>),
}

impl RowValues {
    /// The values as the validator sees them.
    pub(crate) fn input(&self) -> InputRecord {
        let mut input = InputRecord::default();
        match self {
            RowValues::Csv { names, cells } => {
                for (name, cell) in names.iter().zip(cells) {
                    if let Some(field) = Field::from_name(name) {
                        input.set_text(field, cell);
                    }
                }
            }
            RowValues::Json(pairs) => {
                for (key, value) in pairs {
                    match Field::from_name(key) {
                        Some(field) => match value {
                            JsonValue::Null => input.clear(field),
                            JsonValue::String(s) | JsonValue::Number(s) => input.set_text(field, s),
                            other => input.set_wrong_type(field, other.type_name()),
                        },
                        None => input.add_unknown(key),
                    }
                }
            }
        }
        input
    }

    /// The values as key/value pairs (CSV cells as strings).
    pub fn pairs(&self) -> Vec<(String, JsonValue)> {
        match self {
            RowValues::Csv { names, cells } => names
                .iter()
                .zip(cells)
                .map(|(n, c)| (n.clone(), JsonValue::String(c.clone())))
                .collect(),
            RowValues::Json(pairs) => pairs.clone(),
        }
    }

    /// The masked record for the errors path (decision P20).
    pub fn masked(&self) -> StringMap {
        masked_record(&self.pairs())
    }

    /// The transaction_id to label an error with (decision P19).
    pub fn transaction_id_hint(&self) -> Option<String> {
        self.input().transaction_id_hint()
    }
}

/// One input record as read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// CSV: 1-based physical line where the row starts; JSON: 0-based index in the array.
    pub line: u64,
    /// `None` for a row that could not be read (its error is in `error`).
    pub values: Option<RowValues>,
    /// The row-level error, when the row could not be read (then `values` may be `None`).
    pub error: Option<RecordError>,
}

impl Row {
    fn failed(line: u64, code: ErrorCode, message: String) -> Row {
        Row {
            line,
            values: None,
            error: Some(RecordError {
                code,
                field: None,
                message,
            }),
        }
    }

    /// Validate the row: its read error, or what the record's rules make of its values.
    pub fn validate(&self) -> Result<Transaction, RecordError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match &self.values {
            Some(values) => validate(&values.input()),
            None => validate(&InputRecord::default()),
        }
    }
}

// --------------------------------------------------------------------------------------------
// CSV

/// A CSV file being read row by row.
pub struct CsvRows<R: BufRead> {
    reader: CsvReader<R>,
    names: Arc<Vec<String>>,
}

/// A name in a message: a JSON string literal, as the Python handler writes it (decision P25).
fn quoted(name: &str) -> String {
    serde_json::Value::String(name.to_owned()).to_string()
}

/// INVALID_HEADER for an unknown, empty or duplicate name, or a missing column (P13).
fn check_header(names: &[String]) -> Result<(), FileError> {
    let mut seen: Vec<&str> = Vec::with_capacity(names.len());
    for name in names {
        let shown = truncate_chars(name, ECHO_MAX_KEY_CHARS);
        if Field::from_name(name).is_none() {
            return Err(FileError::new(
                ErrorCode::InvalidHeader,
                format!("header: unknown column {}", quoted(shown)),
            ));
        }
        if seen.contains(&name.as_str()) {
            return Err(FileError::new(
                ErrorCode::InvalidHeader,
                format!("header: duplicate column {}", quoted(shown)),
            ));
        }
        seen.push(name);
    }
    for field in Field::ALL.into_iter().filter(|f| f.required()) {
        if !seen.contains(&field.name()) {
            return Err(FileError::new(
                ErrorCode::InvalidHeader,
                format!("header: missing required column {}", quoted(field.name())),
            ));
        }
    }
    Ok(())
}

/// Why a file could not be opened: a file error, or an I/O error of the stream (retryable).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    /// The file is rejected (a file error message).
    File(#[from] FileError),
    #[error("reading the object failed: {0}")]
    /// The stream failed (retryable).
    Io(#[from] io::Error),
}

/// Read and check the header; the rows follow lazily (never all in memory).
pub fn open_csv<R: BufRead>(input: R) -> Result<CsvRows<R>, OpenError> {
    let mut reader = CsvReader::new(input);
    let names = read_header(&mut reader)?;
    Ok(CsvRows {
        reader,
        names: Arc::new(names),
    })
}

/// The rows of one range of a split file that does not hold the header (contract P35): the
/// header is read from `header` (the object from its start), the rows from `input` (the range's
/// bytes), whose first line is line `first_line`.
pub fn open_csv_range<H: BufRead, R: BufRead>(
    header: H,
    input: R,
    first_line: u64,
) -> Result<CsvRows<R>, OpenError> {
    let names = read_header(&mut CsvReader::new(header))?;
    Ok(CsvRows {
        reader: CsvReader::starting_at_line(input, first_line),
        names: Arc::new(names),
    })
}

/// The checked header names (P13), or the header's file error.
fn read_header<R: BufRead>(reader: &mut CsvReader<R>) -> Result<Vec<String>, OpenError> {
    let header = match reader.next_row()? {
        None => return Err(FileError::new(ErrorCode::EmptyFile, "file: no header row").into()),
        Some(CsvRow::Cells { cells, .. }) => cells,
        Some(CsvRow::TooLong { .. }) => {
            return Err(
                FileError::new(ErrorCode::MalformedFile, "header: longer than 1 MiB").into(),
            )
        }
        Some(CsvRow::InvalidEncoding { .. }) => {
            return Err(FileError::new(
                ErrorCode::InvalidEncoding,
                "header: bytes are not valid UTF-8",
            )
            .into())
        }
        Some(CsvRow::Unreadable { reason, .. }) => {
            return Err(FileError::new(
                ErrorCode::MalformedFile,
                format!("header: unreadable CSV, {reason}"),
            )
            .into())
        }
    };
    let names: Vec<String> = header.iter().map(|n| trim(n).to_owned()).collect();
    check_header(&names)?;
    Ok(names)
}

impl<R: BufRead> CsvRows<R> {
    /// The header's column names (trimmed).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Byte offset (from the stream's start) where the row last returned begins (P33).
    pub fn row_start_byte(&self) -> u64 {
        self.reader.row_start_byte()
    }

    /// The next row; `Ok(None)` at end of file; `Err` only for I/O errors of the stream.
    pub fn next_row(&mut self) -> io::Result<Option<Row>> {
        let width = self.names.len();
        Ok(self.reader.next_row()?.map(|row| match row {
            CsvRow::TooLong { line } => Row::failed(
                line,
                ErrorCode::MalformedRow,
                "row: longer than 1 MiB".to_owned(),
            ),
            CsvRow::InvalidEncoding { line } => Row::failed(
                line,
                ErrorCode::InvalidEncoding,
                "row: bytes are not valid UTF-8".to_owned(),
            ),
            CsvRow::Unreadable { line, reason } => Row::failed(
                line,
                ErrorCode::MalformedRow,
                format!("row: unreadable CSV, {reason}"),
            ),
            CsvRow::Cells { line, cells } if cells.len() != width => Row::failed(
                line,
                ErrorCode::MalformedRow,
                format!("row: {} cells where the header has {width}", cells.len()),
            ),
            CsvRow::Cells { line, cells } => Row {
                line,
                values: Some(RowValues::Csv {
                    names: Arc::clone(&self.names),
                    cells,
                }),
                error: None,
            },
        }))
    }
}

impl<R: BufRead> Iterator for CsvRows<R> {
    type Item = io::Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_row().transpose()
    }
}

// --------------------------------------------------------------------------------------------
// JSON

const FILE_PARSE: ParseOptions = ParseOptions {
    reject_constants: true,
    recursion_limit: RECURSION_LIMIT,
};

fn too_deep() -> FileError {
    FileError::new(
        ErrorCode::MalformedFile,
        format!("file: JSON nested deeper than {MAX_DEPTH} levels"),
    )
}

/// The records of a JSON file, or its file error (decision P14).
pub fn parse_json_document(data: &[u8]) -> Result<Vec<JsonValue>, FileError> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let text = std::str::from_utf8(data)
        .map_err(|_| FileError::new(ErrorCode::InvalidEncoding, "file: not valid UTF-8"))?;
    if trim(text).is_empty() {
        return Err(FileError::new(
            ErrorCode::EmptyFile,
            "file: no JSON content",
        ));
    }
    let parsed = match json::parse_with(text, FILE_PARSE) {
        Ok(parsed) => parsed,
        Err(json::JsonError::TooDeep) => return Err(too_deep()),
        Err(json::JsonError::Syntax { line, column, .. }) => {
            return Err(FileError::new(
                ErrorCode::MalformedFile,
                format!("file: not valid JSON at line {line}, column {column}"),
            ));
        }
        Err(constant @ json::JsonError::Constant(_)) => {
            return Err(FileError::new(
                ErrorCode::MalformedFile,
                format!("file: not valid JSON ({constant})"),
            ));
        }
    };
    if json::value_depth(&parsed.value) > MAX_DEPTH {
        return Err(too_deep());
    }
    if parsed.lone_surrogate {
        return Err(FileError::new(
            ErrorCode::MalformedFile,
            "file: JSON string escapes a lone UTF-16 surrogate",
        ));
    }
    let records = match parsed.value {
        JsonValue::Array(items) => items,
        JsonValue::Object(mut pairs) if pairs.len() == 1 && pairs[0].0 == "transactions" => {
            match pairs.pop() {
                Some((_, JsonValue::Array(items))) => items,
                _ => return Err(top_level_error()),
            }
        }
        _ => return Err(top_level_error()),
    };
    if records.is_empty() {
        return Err(FileError::new(ErrorCode::EmptyFile, "file: no records"));
    }
    Ok(records)
}

fn top_level_error() -> FileError {
    FileError::new(
        ErrorCode::MalformedFile,
        "file: top level must be an array or {\"transactions\": [...]}",
    )
}

/// One JSON array element as a row.
pub(crate) fn json_row(index: u64, value: JsonValue) -> Row {
    match value {
        JsonValue::Object(pairs) => Row {
            line: index,
            values: Some(RowValues::Json(pairs)),
            error: None,
        },
        _ => Row::failed(
            index,
            ErrorCode::InvalidFormat,
            "record: must be a JSON object".to_owned(),
        ),
    }
}

/// The rows of a parsed JSON file.
pub fn json_rows(records: Vec<JsonValue>) -> impl Iterator<Item = Row> {
    records
        .into_iter()
        .enumerate()
        .map(|(i, v)| json_row(i as u64, v))
}

#[cfg(test)]
mod tests;
