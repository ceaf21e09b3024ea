//! Bulk use of the edges: messages sent in SendMessageBatch batches with retries, items written
//! with conditional PutItem in waves (P17), and the DynamoDB item of a transaction.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::stream::{self, StreamExt};
use txn_core::{status_shard, SourceInfo, Transaction, SQS_MAX_BYTES};

use crate::edges::{Item, MessageQueue, PutItemError, TransactionTable};
use crate::error::ProcessError;
use crate::pace::is_throttle;
use crate::process::Deadline;
use crate::PROCESSOR;

/// The status of every stored item (design.md section 2).
const STATUS_PROCESSED: &str = "PROCESSED";
/// SendMessageBatch's entry limit.
const SQS_BATCH_ENTRIES: usize = 10;
/// Attempts per SendMessageBatch (each also retried by the SDK), as the Python handler.
const SEND_ATTEMPTS: u32 = 4;
/// Conditional PutItem calls in flight at most: the ceiling of the write limiter (P37).
pub const WRITES_IN_FLIGHT: usize = 64;

/// SendMessageBatch in batches of 10; retry every Failed entry; fail if any stays unsent.
pub async fn send_messages(
    queue: &impl MessageQueue,
    queue_url: &str,
    bodies: &[String],
) -> Result<(), ProcessError> {
    for batch in message_batches(bodies) {
        let mut pending: Vec<(String, &str)> = batch
            .iter()
            .enumerate()
            .map(|(i, b)| (i.to_string(), b.as_str()))
            .collect();
        let mut problem = String::new();
        for attempt in 0..SEND_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let report = match queue.send_message_batch(queue_url, &pending).await {
                Ok(report) => report,
                Err(err) => {
                    problem = err.code;
                    continue;
                }
            };
            if let Some((_, code)) = report.failed.first() {
                problem.clone_from(code);
            }
            pending.retain(|(id, _)| !report.successful.contains(id));
            if pending.is_empty() {
                break;
            }
        }
        if !pending.is_empty() {
            return Err(ProcessError::Unsent {
                unsent: pending.len(),
                code: problem,
            });
        }
    }
    Ok(())
}

/// Batches of at most 10 bodies and 256 KiB.
fn message_batches(bodies: &[String]) -> Vec<Vec<&String>> {
    let mut batches = Vec::new();
    let mut batch: Vec<&String> = Vec::new();
    let mut size = 0;
    for body in bodies {
        if !batch.is_empty()
            && (batch.len() == SQS_BATCH_ENTRIES || size + body.len() > SQS_MAX_BYTES)
        {
            batches.push(std::mem::take(&mut batch));
            size = 0;
        }
        size += body.len();
        batch.push(body);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// What became of one conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Stored,
    /// The same record (same record_hash) is stored already.
    Duplicate,
    /// Another record with the same key is stored (DUPLICATE_CONFLICT).
    Conflict,
    /// Not stored; a retry_record message carries it.
    Failed {
        code: String,
        message: String,
    },
}

impl WriteOutcome {
    fn failed(code: &str, message: &str) -> WriteOutcome {
        WriteOutcome::Failed {
            code: code.to_owned(),
            message: txn_core::truncate_chars(message, 1024).to_owned(),
        }
    }
}

/// Conditional writes, at most [`WRITES_IN_FLIGHT`] at a time and fewer while the table
/// throttles (P37); items sharing a key are written in file order, wave after wave (P17).
pub async fn write_items(
    table: &impl TransactionTable,
    table_name: &str,
    items: Vec<Item>,
    deadline: &Deadline,
) -> Vec<WriteOutcome> {
    let mut waves: Vec<Vec<usize>> = Vec::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let key = (attr_s(item, "transaction_id"), attr_n(item, "timestamp"));
        let wave = seen.entry(key).or_insert(0);
        if *wave == waves.len() {
            waves.push(Vec::new());
        }
        if let Some(w) = waves.get_mut(*wave) {
            w.push(index);
        }
        *wave += 1;
    }
    let mut outcomes: Vec<WriteOutcome> = vec![WriteOutcome::failed("", ""); items.len()];
    let mut items: Vec<Option<Item>> = items.into_iter().map(Some).collect();
    for wave in waves {
        let calls: Vec<(usize, Item)> = wave
            .into_iter()
            .filter_map(|i| {
                items
                    .get_mut(i)
                    .and_then(Option::take)
                    .map(|item| (i, item))
            })
            .collect();
        let results: Vec<(usize, WriteOutcome)> =
            stream::iter(calls)
                .map(|(i, item)| async move {
                    (i, put_yielding(table, table_name, item, deadline).await)
                })
                .buffer_unordered(WRITES_IN_FLIGHT)
                .collect()
                .await;
        for (i, outcome) in results {
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = outcome;
            }
        }
    }
    outcomes
}

/// [`put_transaction`] within the invocation's limit of writes in flight. A throttled write
/// waits (backoff), holding its slot, and is sent again while the record has retries left and
/// the invocation has time beyond its margin; then it is reported failed, a retry_record (P37,
/// P18).
async fn put_yielding(
    table: &impl TransactionTable,
    table_name: &str,
    item: Item,
    deadline: &Deadline,
) -> WriteOutcome {
    let mut retry = 0;
    let mut permit = deadline.writes.acquire().await;
    loop {
        // A copy per attempt: the SDK takes the item, and a throttled one is sent again.
        let outcome = put_transaction(table, table_name, item.clone()).await;
        let throttled = matches!(&outcome, WriteOutcome::Failed { code, .. } if is_throttle(code));
        if !throttled {
            permit.answered();
            return outcome;
        }
        let wait_ms = deadline.backoff.delay_ms(retry);
        let retried = retry < deadline.backoff.retries && deadline.can_wait(wait_ms);
        permit.throttled(retried);
        if !retried {
            permit.release();
            return outcome;
        }
        retry += 1;
        tokio::time::sleep(Duration::from_secs_f64(wait_ms / 1000.0)).await;
    }
}

/// Conditional PutItem; on a failed condition compare record_hash with the stored item.
async fn put_transaction(
    table: &impl TransactionTable,
    table_name: &str,
    item: Item,
) -> WriteOutcome {
    let record_hash = attr_s(&item, "record_hash");
    match table.put_new_item(table_name, item).await {
        Ok(()) => WriteOutcome::Stored,
        Err(PutItemError::ConditionFailed { stored_hash: None }) => WriteOutcome::failed(
            "ConditionalCheckFailedException",
            "stored item not returned for comparison",
        ),
        Err(PutItemError::ConditionFailed {
            stored_hash: Some(hash),
        }) if hash == record_hash => WriteOutcome::Duplicate,
        Err(PutItemError::ConditionFailed { .. }) => WriteOutcome::Conflict,
        Err(PutItemError::Failed { code, message }) => WriteOutcome::failed(&code, &message),
    }
}

fn attr_s(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn attr_n(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .cloned()
        .unwrap_or_default()
}

/// The DynamoDB item of a transaction (design.md section 2).
pub fn build_item(
    tx: &Transaction,
    source: &SourceInfo,
    line: u64,
    ingested_at: i64,
    shards: u64,
) -> Item {
    let mut item = HashMap::with_capacity(16);
    let s = |v: &str| AttributeValue::S(v.to_owned());
    item.insert("transaction_id".into(), s(&tx.transaction_id));
    item.insert("account_id".into(), s(&tx.account_id));
    item.insert("amount".into(), AttributeValue::N(tx.amount.clone()));
    item.insert("currency".into(), s(&tx.currency));
    item.insert("transaction_type".into(), s(&tx.transaction_type));
    item.insert(
        "timestamp".into(),
        AttributeValue::N(tx.timestamp.to_string()),
    );
    if let Some(m) = &tx.merchant_id {
        item.insert("merchant_id".into(), s(m));
    }
    if let Some(d) = &tx.description {
        item.insert("description".into(), s(d));
    }
    item.insert("status".into(), s(STATUS_PROCESSED));
    item.insert(
        "status_shard".into(),
        s(&status_shard(STATUS_PROCESSED, &tx.transaction_id, shards)),
    );
    item.insert("source_bucket".into(), s(&source.object.bucket));
    item.insert("source_key".into(), s(&source.object.key));
    if let Some(v) = source.object.version() {
        item.insert("source_version_id".into(), s(v));
    }
    item.insert("source_line".into(), AttributeValue::N(line.to_string()));
    item.insert(
        "ingested_at".into(),
        AttributeValue::N(ingested_at.to_string()),
    );
    item.insert("processor".into(), s(PROCESSOR));
    item.insert("record_hash".into(), s(&tx.record_hash()));
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use txn_core::ObjectVersion;

    #[test]
    fn batches_by_count_and_size() {
        let small: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        let sizes: Vec<usize> = message_batches(&small).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        let big: Vec<String> = (0..3).map(|_| "x".repeat(100_000)).collect();
        let sizes: Vec<usize> = message_batches(&big).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 1]);
    }

    #[test]
    fn item_attributes() {
        let tx = Transaction {
            transaction_id: "T".into(),
            account_id: "A".into(),
            amount: "1.5".into(),
            currency: "EUR".into(),
            transaction_type: "DEBIT".into(),
            timestamp: 1_704_067_200_000,
            merchant_id: None,
            description: Some("d".into()),
        };
        let source = SourceInfo {
            object: ObjectVersion::new("b", "k", None),
            last_modified: None,
        };
        let item = build_item(&tx, &source, 2, 9, 16);
        assert_eq!(item.get("amount"), Some(&AttributeValue::N("1.5".into())));
        assert!(!item.contains_key("merchant_id"));
        assert!(!item.contains_key("source_version_id"));
        assert_eq!(
            item.get("processor"),
            Some(&AttributeValue::S(PROCESSOR.into()))
        );
        assert_eq!(item.len(), 15);
        // The same shard as the Python handler's status_shard("PROCESSED", "T", 16).
        assert_eq!(
            item.get("status_shard"),
            Some(&AttributeValue::S("PROCESSED#12".into()))
        );
    }
}
