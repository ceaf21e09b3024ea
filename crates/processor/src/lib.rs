//! Transaction processor Lambda (`provided.al2023`, arm64): the Rust twin of
//! lib/processor_function.py, with identical behaviour (design.md sections 2 to 6 and 8 and the
//! decisions of contract/decisions.md). The binary (`main.rs`) only wires the Lambda
//! runtime and the SDK clients to this library.
//!
//! - an S3 notification: every named object is read (CSV streamed row by row on a blocking
//!   thread, JSON whole), validated, and its records written with conditional PutItem (64 in
//!   flight, fewer while DynamoDB throttles, [`pace`]); invalid records go to the DLQ, writes
//!   that keep failing to the main queue;
//! - an SQS batch from the main queue: retry_record, resume_file and S3 events (from the
//!   function's dead_letter_config) are handled; the response lists only the failed messages;
//! - a CSV object over RANGE_SPLIT_BYTES is split into row-aligned ranges, recorded in the file
//!   status and queued as range messages, each processed with its own cursor ([`ranges`]);
//! - before every batch after the first, the remaining time is compared with
//!   TIME_SAFETY_MARGIN_MS and, when short, a resume_file message continues the file later.
//!
//! The AWS calls are behind the small traits of [`edges`] (implemented by [`aws::Aws`] with
//! the SDK, and by in-memory fakes in the tests); their failures are typed ([`error`]).

pub mod aws;
pub mod edges;
pub mod error;
pub mod handlers;
pub mod pace;
pub mod process;
pub mod ranges;
mod rows;
pub mod status;
pub mod writes;

#[cfg(test)]
mod fakes;
#[cfg(test)]
mod pace_tests;
#[cfg(test)]
mod process_tests;

/// What the `processor` attribute and messages say: `rust/<version>`.
pub const PROCESSOR: &str = concat!("rust/", env!("CARGO_PKG_VERSION"));

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
