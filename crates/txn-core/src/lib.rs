//! The transaction record, its validation and the file and message formats shared by the Rust
//! Lambdas (design.md sections 2 to 5). No AWS here: everything is pure and unit-tested.
//!
//! Behaviour is identical to the Python handlers (lib/processor_function.py,
//! lib/dlq_processor_function.py); both follow the decisions in contract/decisions.md, which the
//! references P<n> and D<n> in this crate cite, and the currency table is
//! contract/currencies.json itself (included at build time).
//!
//! The public surface is curated, as in the `csv` crate: the readers' machinery (the CSV state
//! machine, amounts, currencies, timestamps, URL decoding) lives in private modules, and the
//! public modules expose only what the two Lambdas use. The main types are also re-exported
//! at the crate root.

#![deny(missing_docs)]

mod amount;
mod csv;
mod currency;
mod object;
mod timestamp;
mod urlcode;

pub mod config;
pub mod dlq;
pub mod error;
pub mod events;
pub mod files;
pub mod json;
pub mod json_ranges;
pub mod messages;
pub mod pyjson;
pub mod ranges;
pub mod record;

pub use dlq::{interpret_message, Attr, SqsMessage};
pub use error::{ErrorCode, FileError, RecordError};
pub use events::{is_sqs_event, parse_queue_message, s3_event_refs, ObjectRef, QueueWork};
pub use files::{json_rows, open_csv, parse_json_document, Format, OpenError, Row};
pub use json::JsonValue;
pub use messages::SourceInfo;
pub use object::ObjectVersion;
pub use record::{Field, Transaction};
pub use timestamp::iso_ms;

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
