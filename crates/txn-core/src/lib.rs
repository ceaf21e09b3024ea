//! The transaction record, its validation and the file and message formats shared by the Rust
//! Lambdas (design.md sections 2 to 5). No AWS here: everything is pure and unit-tested.
//!
//! Behaviour is identical to the Python handlers (lib/processor_function.py,
//! lib/dlq_processor_function.py); both follow the decisions in contract/decisions.md, which the
//! references P<n> and D<n> in this crate cite, and the currency table is
//! contract/currencies.json itself (included at build time).
//!
//! The public surface is curated, as in the `csv` crate: every module is private, and what the
//! two Lambdas use is re-exported at the crate root (below, grouped by job); the readers'
//! machinery (the CSV state machine, amounts, currencies, timestamps, URL decoding) is not.

#![deny(missing_docs)]

mod amount;
mod config;
mod csv;
mod currency;
mod dlq;
mod error;
mod events;
mod files;
mod json;
mod json_ranges;
mod messages;
mod object;
mod pyjson;
mod ranges;
mod record;
mod timestamp;
mod urlcode;

// The configuration each Lambda reads from its environment once, at start.
pub use config::{
    ConfigError, DlqProcessorConfig, FromEnvironment, MetricsConfig, ProcessorConfig,
};
// Records, their fields and the codes of what is wrong with them.
pub use error::{ErrorCode, FileError, RecordError};
pub use object::ObjectVersion;
pub use record::{status_shard, truncate_chars, Field, Transaction};
pub use timestamp::iso_ms;
// Reading files: whole, or one range of a split file.
pub use files::{
    json_rows, open_csv, open_csv_range, parse_json_document, CsvRows, Format, OpenError, Row,
    RowValues,
};
pub use json_ranges::{json_range_bounds, json_range_rows, JsonSplit};
pub use ranges::{csv_range_bounds, plan_ranges, range_step, FileRange, MAX_RANGES};
// Events in, messages out.
pub use events::{is_sqs_event, parse_queue_message, s3_event_refs, ObjectRef, QueueWork, S3Refs};
pub use messages::{
    file_error_message, masked_record, range_message, record_error_message, resume_file_message,
    resume_message, retry_record_message, transaction_values, MessageTooLarge, SourceInfo,
    StringMap, TransactionJson, SQS_MAX_BYTES,
};
// The errors table's rows, from dead-letter messages.
pub use dlq::{interpret_message, sqs_record_parts, Attr, ErrorRecord, SqsMessage};
// JSON as both implementations read and write it.
pub use json::{parse as parse_json, JsonError, JsonValue};
pub use pyjson::ascii_json;

use sha2::{Digest, Sha256};

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Lower-case hex SHA-256 of a text's UTF-8 bytes.
pub(crate) fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }
}
