//! DLQ processor Lambda (`provided.al2023`, arm64): the Rust twin of
//! lib/dlq_processor_function.py. Every message of the batch becomes one row (or more) of the
//! errors table, written with `attribute_not_exists(error_id)` so that redeliveries never make
//! a second row; the response lists only the messages that could not be stored (design.md
//! sections 4, 5 and 8; decisions D1-D10). What to store is decided by `txn_core::dlq`.

use std::collections::HashMap;
use std::future::Future;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::Value;
use txn_core::{interpret_message, parse_json, Attr, FromEnvironment, JsonValue, SqsMessage};

/// The function's configuration, read from its environment once, in `main`.
use txn_core::DlqProcessorConfig as Config;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn to_attribute(value: Attr) -> AttributeValue {
    match value {
        Attr::S(s) => AttributeValue::S(s),
        Attr::N(n) => AttributeValue::N(n),
        Attr::Bool(b) => AttributeValue::Bool(b),
        Attr::M(pairs) => AttributeValue::M(
            pairs
                .into_iter()
                .map(|(k, v)| (k, AttributeValue::S(v)))
                .collect(),
        ),
    }
}

/// Why a row could not be stored (the message is then delivered again). The text is what the
/// log line's `reason` says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum StoreError {
    /// DynamoDB refused the write: `code` is its error code.
    #[error("{code}")]
    Service { code: String },
    /// No answer from DynamoDB (timeout, network, credentials), after the SDK's retries.
    #[error("SdkError")]
    Sdk,
}

/// How a row ended up in the errors table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// Written now.
    New,
    /// Already there: a redelivery of a message stored before.
    Replay,
}

/// The one call the DLQ processor makes: PutItem with `attribute_not_exists(error_id)`.
/// Implemented by the SDK client, and by an in-memory table in the tests.
trait ErrorTable {
    fn put_new_row(
        &self,
        table: &str,
        item: HashMap<String, AttributeValue>,
    ) -> impl Future<Output = Result<Stored, StoreError>> + Send;
}

impl ErrorTable for aws_sdk_dynamodb::Client {
    async fn put_new_row(
        &self,
        table: &str,
        item: HashMap<String, AttributeValue>,
    ) -> Result<Stored, StoreError> {
        match self
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(error_id)")
            .send()
            .await
        {
            Ok(_) => Ok(Stored::New),
            Err(err) => match err.as_service_error().and_then(|e| e.code()) {
                Some("ConditionalCheckFailedException") => Ok(Stored::Replay),
                Some(code) => Err(StoreError::Service {
                    code: code.to_owned(),
                }),
                None => Err(StoreError::Sdk),
            },
        }
    }
}

fn emit_metrics(cfg: &Config, stored: u64) {
    let stored = i64::try_from(stored).unwrap_or(i64::MAX);
    let line = cfg
        .metrics
        .emf_line(now_ms(), &[("ErrorsStored", stored, "Count")]);
    println!("{line}");
}

async fn handler(
    dynamodb: &aws_sdk_dynamodb::Client,
    cfg: &Config,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Value, lambda_runtime::Error> {
    let (payload, context) = event.into_parts();
    let current = now_ms();
    let event = parse_json(payload.get()).unwrap_or(JsonValue::Null);
    let response = store_batch(dynamodb, cfg, &event, &context.request_id, current).await;
    Ok(serde_json::to_value(response)?)
}

/// Store every message of an SQS batch; the response names the messages to deliver again.
async fn store_batch(
    table: &impl ErrorTable,
    cfg: &Config,
    event: &JsonValue,
    request_id: &str,
    current: i64,
) -> SqsBatchResponse {
    let expires_at = current / 1000 + cfg.retention_days * 86_400;
    let records = match event.get("Records") {
        Some(JsonValue::Array(records)) => records.as_slice(),
        _ => &[],
    };
    let mut response = SqsBatchResponse::default();
    let (mut stored, mut replays) = (0u64, 0u64);
    for record in records {
        let message = SqsMessage::from_record(record);
        let rows = interpret_message(&message, current);
        let mut failed = false;
        for row in rows {
            let item: HashMap<String, AttributeValue> = row
                .to_item(&message, expires_at)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), to_attribute(v)))
                .collect();
            match table.put_new_row(&cfg.table_name, item).await {
                Ok(Stored::New) => stored += 1,
                Ok(Stored::Replay) => replays += 1,
                Err(e) => {
                    tracing::error!(
                        request_id = %request_id,
                        message_id = %message.message_id,
                        reason = %e,
                        "error could not be stored"
                    );
                    failed = true;
                    break;
                }
            }
            tracing::info!(
                request_id = %request_id,
                message_id = %message.message_id,
                error_id = %row.error_id,
                error_code = %row.error_code,
                error_type = row.error_type,
                bucket = row.source.as_ref().map(|s| s.bucket.as_str()),
                key = row.source.as_ref().map(|s| s.key.as_str()),
                line = row.source_line.as_deref(),
                "error stored"
            );
        }
        if failed {
            response.add_failure(message.message_id.clone());
        }
    }
    tracing::info!(
        request_id = %request_id,
        messages = records.len(),
        stored,
        replays,
        failed = response.batch_item_failures.len(),
        "batch done"
    );
    emit_metrics(cfg, stored);
    response
}

/// mimalloc instead of glibc's malloc: the SDK allocates a lot per request, and glibc's
/// allocator took about a fifth of the processor's CPU time in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_setup::init_json_logging();
    // Read once per execution environment, before the first message: a missing or invalid
    // variable ends the init with an error that names it.
    let cfg = Config::from_env().inspect_err(|error| {
        tracing::error!(%error, "configuration");
    })?;
    let cfg = &cfg;
    let dynamodb = aws_sdk_dynamodb::Client::new(&lambda_setup::sdk_config().await);
    let dynamodb = &dynamodb;
    lambda_runtime::run(service_fn(move |event| handler(dynamodb, cfg, event))).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use txn_core::MetricsConfig;

    #[test]
    fn attributes_map_to_dynamodb_types() {
        assert_eq!(
            to_attribute(Attr::N("5".into())),
            AttributeValue::N("5".into())
        );
        assert_eq!(to_attribute(Attr::Bool(true)), AttributeValue::Bool(true));
        let map = to_attribute(Attr::M(vec![("account_id".into(), "****1234".into())]));
        let AttributeValue::M(map) = map else {
            panic!("not a map")
        };
        assert_eq!(
            map.get("account_id"),
            Some(&AttributeValue::S("****1234".into()))
        );
    }

    #[test]
    fn every_message_gives_a_complete_item() {
        let record = parse_json(
            r#"{"messageId":"m-1","body":"not json","attributes":{"SentTimestamp":"17","ApproximateReceiveCount":"2"}}"#,
        )
        .unwrap();
        let message = SqsMessage::from_record(&record);
        let rows = interpret_message(&message, 99);
        let item: HashMap<String, AttributeValue> = rows[0]
            .to_item(&message, 1000)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), to_attribute(v)))
            .collect();
        for key in [
            "error_id",
            "timestamp",
            "detected_at",
            "error_code",
            "error_type",
            "error_message",
            "retryable",
            "sqs_message_id",
            "receive_count",
            "expires_at",
        ] {
            assert!(item.contains_key(key), "{key}");
        }
        assert_eq!(item.get("timestamp"), Some(&AttributeValue::N("17".into())));
        assert!(!item.contains_key("transaction_id"));
    }

    /// An in-memory errors table: rows by error_id; writes for one SQS message id fail.
    #[derive(Default)]
    struct FakeTable {
        rows: std::sync::Mutex<HashMap<String, HashMap<String, AttributeValue>>>,
        failing_message_id: Option<String>,
    }

    impl FakeTable {
        fn rows(&self) -> Vec<HashMap<String, AttributeValue>> {
            self.rows.lock().unwrap().values().cloned().collect()
        }
    }

    impl ErrorTable for FakeTable {
        async fn put_new_row(
            &self,
            _table: &str,
            item: HashMap<String, AttributeValue>,
        ) -> Result<Stored, StoreError> {
            let message_id = item.get("sqs_message_id").and_then(|v| v.as_s().ok());
            if message_id.is_some() && message_id == self.failing_message_id.as_ref() {
                return Err(StoreError::Service {
                    code: "ProvisionedThroughputExceededException".into(),
                });
            }
            let Some(AttributeValue::S(error_id)) = item.get("error_id").cloned() else {
                panic!("no error_id")
            };
            let mut rows = self.rows.lock().unwrap();
            if rows.contains_key(&error_id) {
                return Ok(Stored::Replay);
            }
            rows.insert(error_id, item);
            Ok(Stored::New)
        }
    }

    fn config() -> Config {
        Config {
            table_name: "errors".into(),
            metrics: MetricsConfig {
                environment: "test".into(),
                namespace: "TransactionPipeline".into(),
            },
            retention_days: 365,
        }
    }

    fn batch(messages: &[(&str, &str)]) -> JsonValue {
        let records: Vec<Value> = messages
            .iter()
            .map(|(id, body)| {
                json!({"messageId": id, "body": body, "eventSource": "aws:sqs",
                       "attributes": {"SentTimestamp": "1700000000000", "ApproximateReceiveCount": "1"}})
            })
            .collect();
        parse_json(&json!({ "Records": records }).to_string()).unwrap()
    }

    fn failures(response: &SqsBatchResponse) -> Vec<String> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect()
    }

    #[tokio::test]
    async fn every_message_becomes_an_error_row() {
        let table = FakeTable::default();
        let event = batch(&[("m-1", "not json"), ("m-2", "{}")]);
        let response = store_batch(&table, &config(), &event, "req", 1_700_000_000_000).await;
        assert!(failures(&response).is_empty());
        let rows = table.rows();
        assert_eq!(rows.len(), 2);
        let expires = AttributeValue::N((1_700_000_000 + 365 * 86_400).to_string());
        assert!(rows.iter().all(|r| r.get("expires_at") == Some(&expires)));
    }

    #[tokio::test]
    async fn a_redelivered_message_makes_no_second_row() {
        let table = FakeTable::default();
        let event = batch(&[("m-1", "not json")]);
        store_batch(&table, &config(), &event, "req", 1_700_000_000_000).await;
        let again = store_batch(&table, &config(), &event, "req", 1_700_000_100_000).await;
        assert!(failures(&again).is_empty());
        assert_eq!(table.rows().len(), 1);
    }

    #[tokio::test]
    async fn only_the_message_that_could_not_be_stored_fails() {
        let table = FakeTable {
            failing_message_id: Some("m-bad".into()),
            ..FakeTable::default()
        };
        let event = batch(&[("m-1", "not json"), ("m-bad", "not json"), ("m-3", "[]")]);
        let response = store_batch(&table, &config(), &event, "req", 1_700_000_000_000).await;
        assert_eq!(failures(&response), vec!["m-bad".to_owned()]);
        let mut stored: Vec<String> = table
            .rows()
            .iter()
            .filter_map(|r| r.get("sqs_message_id")?.as_s().ok().cloned())
            .collect();
        stored.sort();
        assert_eq!(stored, vec!["m-1".to_owned(), "m-3".to_owned()]);
    }

    #[test]
    fn store_error_texts_are_the_logged_reasons() {
        let service = StoreError::Service {
            code: "ValidationException".into(),
        };
        assert_eq!(service.to_string(), "ValidationException");
        assert_eq!(StoreError::Sdk.to_string(), "SdkError");
    }
}
