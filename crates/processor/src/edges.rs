//! The processor's edges: one small trait per AWS call it makes (S3 GetObject, DynamoDB
//! conditional PutItem and UpdateItem, SQS SendMessageBatch) and the typed errors of those calls.
//!
//! The orchestration (`crate::handlers`, `crate::process`, `crate::writes`) sees only these traits, so that it can
//! be tested with in-memory fakes, as the aws-lambda-rust-runtime examples do
//! (examples/basic-s3-thumbnail); `crate::aws` implements them with the SDK clients.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use txn_core::ObjectVersion;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// What GetObject returned: the streamed body and the metadata the processor uses.
#[derive(Debug)]
pub struct FetchedObject {
    pub body: ByteStream,
    /// The version read (`None` for an unversioned bucket).
    pub version_id: Option<String>,
    /// Last-Modified in epoch milliseconds.
    pub last_modified_ms: Option<i64>,
    /// Content-Length in bytes (0 when not sent): of the range read, for a ranged GetObject.
    pub content_length: u64,
}

/// Why GetObject gave no object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetObjectError {
    /// The object or the named version does not exist (P16): a file error, never retried.
    #[error("GetObject failed: object (version) not found")]
    NotFound,
    /// Anything else (throttling, access, network), after the SDK's own retries: a later
    /// attempt may succeed. `code` is the service error code or the SDK error kind.
    #[error("GetObject failed: {code}")]
    Failed { code: String },
}

impl GetObjectError {
    /// Whether a later attempt can succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, GetObjectError::Failed { .. })
    }
}

/// Why a conditional PutItem (`attribute_not_exists(transaction_id)`) stored nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PutItemError {
    /// An item with this key is stored already; `stored_hash` is its record_hash as returned
    /// by ReturnValuesOnConditionCheckFailure=ALL_OLD (`None` when no item came back).
    #[error("ConditionalCheckFailedException")]
    ConditionFailed { stored_hash: Option<String> },
    /// Any other failure, after the SDK's own retries: `code` is the service error code or
    /// the SDK error kind, `message` the service's message.
    #[error("{code}: {message}")]
    Failed { code: String, message: String },
}

impl PutItemError {
    /// Whether writing the same item again can succeed: never after a failed condition.
    pub fn retryable(&self) -> bool {
        matches!(self, PutItemError::Failed { .. })
    }
}

/// A SendMessageBatch call that failed as a whole (every entry unsent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}")]
pub struct SendBatchError {
    /// The service error code or the SDK error kind.
    pub code: String,
}

/// The per-entry result of one SendMessageBatch call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendBatchReport {
    /// Ids of the entries that were sent.
    pub successful: Vec<String>,
    /// `(id, code)` of the entries that were not.
    pub failed: Vec<(String, String)>,
}

/// The bytes `[first, end)` of an object (`end` exclusive): a range of a split file (P35).
pub type ByteRange = (u64, u64);

/// S3 GetObject.
pub trait ObjectStore {
    /// Read an object (version), or only its bytes `byte_range` (a ranged GetObject).
    fn get_object(
        &self,
        object: &ObjectVersion,
        byte_range: Option<ByteRange>,
    ) -> impl Future<Output = Result<FetchedObject, GetObjectError>> + Send;
}

/// DynamoDB PutItem with `attribute_not_exists(transaction_id)` and ALL_OLD on a failed
/// condition.
pub trait TransactionTable {
    /// Store `item` unless an item with its key exists.
    fn put_new_item(
        &self,
        table: &str,
        item: Item,
    ) -> impl Future<Output = Result<(), PutItemError>> + Send;
}

/// SQS SendMessageBatch.
pub trait MessageQueue {
    /// One SendMessageBatch call with `(id, body)` entries (at most 10, at most 256 KiB).
    fn send_message_batch(
        &self,
        queue_url: &str,
        entries: &[(String, &str)],
    ) -> impl Future<Output = Result<SendBatchReport, SendBatchError>> + Send;
}

/// One UpdateItem of the file status table (decisions P26 to P31): expressions with their
/// placeholders.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemUpdate {
    pub key: Item,
    pub update_expression: String,
    pub condition_expression: Option<String>,
    pub names: HashMap<String, String>,
    pub values: Item,
    /// ReturnValuesOnConditionCheckFailure=ALL_OLD.
    pub old_item_on_condition_failure: bool,
}

/// Why an UpdateItem changed nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpdateItemError {
    /// The condition did not hold; `old` is the item when ALL_OLD was asked for and it exists.
    #[error("ConditionalCheckFailedException")]
    ConditionFailed { old: Option<Item> },
    /// Any other failure, after the SDK's own retries.
    #[error("UpdateItem (file status) failed: {code}")]
    Failed { code: String },
}

/// DynamoDB UpdateItem (the file status table).
pub trait StatusTable {
    fn update_item(
        &self,
        table: &str,
        update: ItemUpdate,
    ) -> impl Future<Output = Result<(), UpdateItemError>> + Send;
}

/// Everything the processor calls: implemented by `crate::aws::Aws` and by the test fakes.
pub trait Edges: ObjectStore + TransactionTable + StatusTable + MessageQueue + Sync {}

impl<T: ObjectStore + TransactionTable + StatusTable + MessageQueue + Sync> Edges for T {}
