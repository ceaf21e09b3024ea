//! The transaction record, its validation and the file and message formats shared by the Rust
//! Lambdas (design.md sections 2 to 5). No AWS here: everything is pure and unit-tested.
//!
//! Behaviour is identical to the Python handlers (lib/processor_function.py,
//! lib/dlq_processor_function.py), including the "Decisions beyond design.md" listed at the top
//! of each module; the references P1..P24 and D1..D10 in this crate point there.

pub mod amount;
pub mod csv;
pub mod currency;
pub mod dlq;
pub mod error;
pub mod events;
pub mod files;
pub mod json;
pub mod messages;
pub mod pyjson;
pub mod record;
pub mod timestamp;
pub mod urlcode;

pub use error::{ErrorCode, FileError, RecordError};
pub use record::{Field, Transaction};

use sha2::{Digest, Sha256};

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Lower-case hex SHA-256 of a text's UTF-8 bytes.
pub fn sha256_hex(text: &str) -> String {
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
