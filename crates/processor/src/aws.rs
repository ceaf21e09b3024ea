//! The AWS calls of the processor: GetObject, conditional PutItem, SendMessageBatch.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures_util::stream::{self, StreamExt};
use txn_core::messages::{SourceInfo, SQS_MAX_BYTES};
use txn_core::Transaction;

use crate::{TransientError, PROCESSOR};

/// SendMessageBatch's entry limit.
const SQS_BATCH_ENTRIES: usize = 10;
/// Attempts per SendMessageBatch (each also retried by the SDK), as the Python handler.
const SEND_ATTEMPTS: u32 = 4;
/// Conditional PutItem calls in flight.
pub const WRITES_IN_FLIGHT: usize = 64;

/// The three clients, built once per execution environment.
pub struct Aws {
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl Aws {
    pub async fn from_env() -> Aws {
        // Standard retry mode with 5 attempts, as the Python handler's botocore config.
        let config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .load()
            .await;
        // With an endpoint override, address buckets by path, as boto3 does for a custom
        // endpoint_url (virtual-host names do not resolve for such endpoints).
        let path_style = std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(path_style)
            .build();
        // Small JSON requests and responses: stalled-stream protection (a throughput monitor on
        // every body) costs CPU on each of the many calls and protects nothing here. It stays
        // on for S3, whose body is the file.
        let dynamodb_config = aws_sdk_dynamodb::config::Builder::from(&config)
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .build();
        let sqs_config = aws_sdk_sqs::config::Builder::from(&config)
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .build();
        Aws {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb_config),
            sqs: aws_sdk_sqs::Client::from_conf(sqs_config),
        }
    }

    /// GetObject; `Ok(None)` when the object (version) does not exist (P16).
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<GetObjectOutput>, TransientError> {
        let mut request = self.s3.get_object().bucket(bucket).key(key);
        if let Some(v) = version_id {
            request = request.version_id(v);
        }
        match request.send().await {
            Ok(out) => Ok(Some(out)),
            Err(err) => {
                let status = err.raw_response().map(|r| r.status().as_u16());
                let code = err
                    .as_service_error()
                    .and_then(|e| e.code())
                    .map(str::to_owned);
                let not_found =
                    matches!(err.as_service_error(), Some(GetObjectError::NoSuchKey(_)))
                        || matches!(
                            code.as_deref(),
                            Some("NoSuchKey" | "NoSuchVersion" | "NotFound" | "404")
                        )
                        || status == Some(404)
                        || (version_id.is_some() && code.as_deref() == Some("InvalidArgument"));
                if not_found {
                    Ok(None)
                } else {
                    Err(TransientError(format!(
                        "GetObject failed: {}",
                        code.unwrap_or_else(|| error_kind(&err))
                    )))
                }
            }
        }
    }

    /// SendMessageBatch in batches of 10; retry every Failed entry; fail if any stays unsent.
    pub async fn send_messages(
        &self,
        queue_url: &str,
        bodies: &[String],
    ) -> Result<(), TransientError> {
        for batch in message_batches(bodies) {
            let mut pending: Vec<(String, &String)> = batch
                .iter()
                .enumerate()
                .map(|(i, b)| (i.to_string(), *b))
                .collect();
            let mut problem = String::new();
            for attempt in 0..SEND_ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                let entries: Vec<SendMessageBatchRequestEntry> = pending
                    .iter()
                    .filter_map(|(id, body)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(id)
                            .message_body(body.as_str())
                            .build()
                            .ok()
                    })
                    .collect();
                let response = match self
                    .sqs
                    .send_message_batch()
                    .queue_url(queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(r) => r,
                    Err(err) => {
                        problem = err
                            .as_service_error()
                            .and_then(|e| e.code())
                            .map_or_else(|| error_kind(&err), str::to_owned);
                        continue;
                    }
                };
                if let Some(first) = response.failed().first() {
                    problem = first.code().to_owned();
                }
                let succeeded: Vec<&str> = response.successful().iter().map(|s| s.id()).collect();
                pending.retain(|(id, _)| !succeeded.contains(&id.as_str()));
                if pending.is_empty() {
                    break;
                }
            }
            if !pending.is_empty() {
                return Err(TransientError(format!(
                    "SendMessageBatch left {} message(s) unsent: {problem}",
                    pending.len()
                )));
            }
        }
        Ok(())
    }

    /// Conditional writes, at most [`WRITES_IN_FLIGHT`] at a time; items sharing a key are
    /// written in file order, wave after wave (P17).
    pub async fn write_items(
        &self,
        table: &str,
        items: Vec<HashMap<String, AttributeValue>>,
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
        let mut items: Vec<Option<HashMap<String, AttributeValue>>> =
            items.into_iter().map(Some).collect();
        for wave in waves {
            let calls: Vec<(usize, HashMap<String, AttributeValue>)> = wave
                .into_iter()
                .filter_map(|i| {
                    items
                        .get_mut(i)
                        .and_then(Option::take)
                        .map(|item| (i, item))
                })
                .collect();
            let results: Vec<(usize, WriteOutcome)> = stream::iter(calls)
                .map(|(i, item)| async move { (i, self.put_transaction(table, item).await) })
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

    /// Conditional PutItem; on a failed condition compare record_hash with the stored item.
    async fn put_transaction(
        &self,
        table: &str,
        item: HashMap<String, AttributeValue>,
    ) -> WriteOutcome {
        let record_hash = attr_s(&item, "record_hash");
        let result = self
            .dynamodb
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(transaction_id)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return WriteOutcome::Stored,
            Err(err) => err,
        };
        if let Some(PutItemError::ConditionalCheckFailedException(e)) = err.as_service_error() {
            let old_hash = e
                .item()
                .and_then(|old| old.get("record_hash"))
                .and_then(|v| v.as_s().ok());
            return match old_hash {
                None => WriteOutcome::failed(
                    "ConditionalCheckFailedException",
                    "stored item not returned for comparison",
                ),
                Some(h) if *h == record_hash => WriteOutcome::Duplicate,
                Some(_) => WriteOutcome::Conflict,
            };
        }
        match err.as_service_error() {
            Some(service) => WriteOutcome::failed(
                service.code().unwrap_or("ClientError"),
                service.message().unwrap_or(""),
            ),
            None => WriteOutcome::failed(&error_kind(&err), &err.to_string()),
        }
    }
}

/// What became of one conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Stored,
    Duplicate,
    Conflict,
    Failed { code: String, message: String },
}

impl WriteOutcome {
    fn failed(code: &str, message: &str) -> WriteOutcome {
        WriteOutcome::Failed {
            code: code.to_owned(),
            message: txn_core::record::truncate_chars(message, 1024).to_owned(),
        }
    }
}

/// A short name for an SDK error that carries no service error code (like botocore's
/// exception class names).
fn error_kind<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String {
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::ConstructionFailure(_) => "ConstructionFailure",
        SdkError::TimeoutError(_) => "TimeoutError",
        SdkError::DispatchFailure(_) => "DispatchFailure",
        SdkError::ResponseError(_) => "ResponseError",
        SdkError::ServiceError(_) => "ClientError",
        _ => "SdkError",
    }
    .to_owned()
}

fn attr_s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn attr_n(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .cloned()
        .unwrap_or_default()
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

/// The DynamoDB item of a transaction (design.md section 2).
pub fn build_item(
    tx: &Transaction,
    source: &SourceInfo,
    line: u64,
    ingested_at: i64,
) -> HashMap<String, AttributeValue> {
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
    item.insert("status".into(), s("PROCESSED"));
    item.insert("source_bucket".into(), s(&source.bucket));
    item.insert("source_key".into(), s(&source.key));
    if let Some(v) = source.version_id.as_deref().filter(|v| !v.is_empty()) {
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
            bucket: "b".into(),
            key: "k".into(),
            version_id: None,
            last_modified: None,
        };
        let item = build_item(&tx, &source, 2, 9);
        assert_eq!(item.get("amount"), Some(&AttributeValue::N("1.5".into())));
        assert!(!item.contains_key("merchant_id"));
        assert!(!item.contains_key("source_version_id"));
        assert_eq!(
            item.get("processor"),
            Some(&AttributeValue::S(PROCESSOR.into()))
        );
        assert_eq!(item.len(), 14);
    }
}
