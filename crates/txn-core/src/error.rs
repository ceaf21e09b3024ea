//! Error codes (design.md section 3) and the errors the parsers report.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Every error code, record level and file level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    // record level
    /// A required field is absent or empty.
    MissingField,
    /// A value breaks its field's syntax (pattern, date, number syntax, JSON type).
    InvalidFormat,
    /// A value is out of range or not one of the allowed values.
    InvalidValue,
    /// The currency is not in contract/currencies.json.
    UnknownCurrency,
    /// The amount has more fraction digits than the currency's minor unit.
    PrecisionExceeded,
    /// A JSON record has a key that is not a field.
    UnknownField,
    /// A CSV row cannot be read, or has the wrong number of cells.
    MalformedRow,
    /// A CSV row or header, or a JSON document, is not UTF-8.
    InvalidEncoding,
    /// The key is already stored with a different record_hash.
    DuplicateConflict,
    // file level
    /// No bytes, a header and no rows, or an empty array.
    EmptyFile,
    /// Not parseable as CSV/JSON, the wrong top-level JSON shape, or nested too deeply.
    MalformedFile,
    /// The CSV header misses a required column, or has an unknown or duplicate one.
    InvalidHeader,
    /// The object is larger than MAX_FILE_BYTES.
    FileTooLarge,
    /// The object (version) does not exist.
    ObjectNotFound,
}

impl ErrorCode {
    /// The code as written in messages and the errors table.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingField => "MISSING_FIELD",
            ErrorCode::InvalidFormat => "INVALID_FORMAT",
            ErrorCode::InvalidValue => "INVALID_VALUE",
            ErrorCode::UnknownCurrency => "UNKNOWN_CURRENCY",
            ErrorCode::PrecisionExceeded => "PRECISION_EXCEEDED",
            ErrorCode::UnknownField => "UNKNOWN_FIELD",
            ErrorCode::MalformedRow => "MALFORMED_ROW",
            ErrorCode::InvalidEncoding => "INVALID_ENCODING",
            ErrorCode::DuplicateConflict => "DUPLICATE_CONFLICT",
            ErrorCode::EmptyFile => "EMPTY_FILE",
            ErrorCode::MalformedFile => "MALFORMED_FILE",
            ErrorCode::InvalidHeader => "INVALID_HEADER",
            ErrorCode::FileTooLarge => "FILE_TOO_LARGE",
            ErrorCode::ObjectNotFound => "OBJECT_NOT_FOUND",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one record (row / array element) is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code}: {message}")]
pub struct RecordError {
    /// The record-level code.
    pub code: ErrorCode,
    /// The field the error is about (`None` for a row that could not be read at all).
    pub field: Option<String>,
    /// The message text (decision P25), naming the field.
    pub message: String,
}

/// Why a whole file is rejected (no record of it is stored).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code}: {message}")]
pub struct FileError {
    /// The file-level code.
    pub code: ErrorCode,
    /// The message text (decision P25), naming the part of the file at fault.
    pub message: String,
}

impl FileError {
    /// A file error with its code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> FileError {
        FileError {
            code,
            message: message.into(),
        }
    }
}
