//! txnctl's edges: one small trait per group of AWS calls (the two tables, the queues), so that
//! the commands can be tested with in-memory fakes, as the aws-lambda-rust-runtime examples do
//! (examples/basic-s3-thumbnail); `crate::aws` implements them with the SDK clients.

use serde::Serialize;

use crate::error::CliError;
use crate::model::{Item, RowKey};
use crate::replay::ReplayRow;

/// Reads of the status and errors tables, and the replay mark on an errors row.
pub trait Tables {
    /// Every version's status record of one object key (Query on the table's hash key).
    async fn file_versions(&self, key: &str) -> Result<Vec<Item>, CliError>;
    /// Status records whose first activity is on `day` (YYYY-MM-DD) at or after `since`
    /// (Query on activity_day-index).
    async fn files_on_day(&self, day: &str, since: &str) -> Result<Vec<Item>, CliError>;
    /// Errors rows of one object key (Query on source_key-index).
    async fn errors_of_file(&self, key: &str) -> Result<Vec<Item>, CliError>;
    /// Errors rows of one transaction (Query on transaction_id-index).
    async fn errors_of_transaction(&self, id: &str) -> Result<Vec<Item>, CliError>;
    /// One page of the errors rows with retryable = true (Scan with a filter), and where the
    /// next page starts.
    async fn retryable_errors_page(
        &self,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), CliError>;
    /// Sets replayed_at = `at` on the row if it still has the replayed_at it was read with (none,
    /// or the one `--include-replayed` sends again). Ok(false) when the condition failed:
    /// someone else marked it first.
    async fn mark_replayed(&self, row: &ReplayRow, at: &str) -> Result<bool, CliError>;
    /// Removes the mark this run set (condition: replayed_at = `at`), after a failed send.
    async fn unmark_replayed(&self, row: &RowKey, at: &str) -> Result<(), CliError>;
}

/// How many messages a queue holds (SQS's approximate counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct QueueDepth {
    pub visible: i64,
    pub in_flight: i64,
    pub delayed: i64,
}

/// The age of a queue's oldest message, or why it is unknown.
#[derive(Debug, Clone, PartialEq)]
pub enum OldestAge {
    Seconds(f64),
    Unknown(String),
}

/// The queue calls: attributes, the CloudWatch age metric, and sending a replay message.
pub trait Queues {
    async fn depth(&self, url: &str) -> Result<QueueDepth, CliError>;
    async fn oldest_age(&self, queue_name: &str) -> OldestAge;
    async fn send(&self, url: &str, body: &str) -> Result<(), CliError>;
}
