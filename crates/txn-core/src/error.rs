//! Error codes (design.md section 3) and the errors the parsers report.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Every error code, record level and file level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    // record level
    MissingField,
    InvalidFormat,
    InvalidValue,
    UnknownCurrency,
    PrecisionExceeded,
    UnknownField,
    MalformedRow,
    InvalidEncoding,
    DuplicateConflict,
    // file level
    EmptyFile,
    MalformedFile,
    InvalidHeader,
    FileTooLarge,
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
    pub code: ErrorCode,
    /// The field the error is about (`None` for a row that could not be read at all).
    pub field: Option<String>,
    pub message: String,
}

/// Why a whole file is rejected (no record of it is stored).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code}: {message}")]
pub struct FileError {
    pub code: ErrorCode,
    pub message: String,
}

impl FileError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> FileError {
        FileError {
            code,
            message: message.into(),
        }
    }
}

/// Reading the input failed (an I/O error of the underlying stream): retryable, not a
/// property of the file.
#[derive(Debug, Error)]
pub enum ReadError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("reading the object failed: {0}")]
    Io(#[from] std::io::Error),
}
