//! Tokio tests of the orchestration (crate::handlers, crate::process, crate::writes) over the in-memory fakes:
//! batches, resume, retries, and the S3, SQS and unknown event paths.

use serde_json::{json, Value};
use txn_core::{
    parse_json, resume_file_message, retry_record_message, JsonValue, MetricsConfig, ObjectRef,
    ObjectVersion, SourceInfo, Transaction,
};

use crate::edges::GetObjectError;
use crate::error::ProcessError;
use crate::fakes::FakeAws;
use crate::handlers::{handle_event, handle_s3_event, handle_sqs_event};
use crate::pace::WriteBackoff;
use crate::process::{Config, Deadline};
use crate::{now_ms, PROCESSOR};

pub(crate) const BUCKET: &str = "uploads";
pub(crate) const KEY: &str = "in/f.csv";
pub(crate) const QUEUE: &str = "main-queue";
pub(crate) const DLQ: &str = "dlq";
pub(crate) const HEADER: &str =
    "transaction_id,account_id,amount,currency,transaction_type,timestamp,merchant_id,description";
/// 2024-04-01T00:00:00Z in epoch milliseconds.
pub(crate) const TS: &str = "1711929600000";

pub(crate) fn config() -> Config {
    Config {
        table_name: "transactions".into(),
        queue_url: QUEUE.into(),
        dlq_url: DLQ.into(),
        metrics: MetricsConfig {
            environment: "test".into(),
            namespace: "TransactionPipeline".into(),
        },
        max_file_bytes: 1 << 20,
        time_safety_margin_ms: 30_000,
        status_index_shards: 16,
        range_split_bytes: 0,
        file_status_table: Some("file-status".into()),
    }
}

/// A deadline an hour away: never reached. A throttled write waits at most a millisecond.
pub(crate) fn ample_time() -> Deadline {
    Deadline::new(u64::try_from(now_ms()).unwrap() + 3_600_000, 30_000).with_backoff(WriteBackoff {
        base_ms: 1,
        cap_ms: 1,
        retries: 64,
    })
}

/// A deadline already passed: the first batch runs, nothing after it.
pub(crate) fn no_time() -> Deadline {
    Deadline::new(0, 30_000)
}

/// Data row `i` (1-based), on CSV line `i + 1`.
pub(crate) fn row(i: usize) -> String {
    format!("T-{i:05},ACC{i},{i}.50,EUR,CREDIT,2024-04-01T00:00:00Z,,")
}

/// An unknown currency: UNKNOWN_CURRENCY.
pub(crate) fn invalid_row(i: usize) -> String {
    format!("T-{i:05},ACC{i},{i}.50,XYZ,CREDIT,2024-04-01T00:00:00Z,,")
}

pub(crate) fn csv(rows: impl IntoIterator<Item = String>) -> String {
    let mut text = format!("{HEADER}\n");
    for r in rows {
        text.push_str(&r);
        text.push('\n');
    }
    text
}

pub(crate) fn object(key: &str) -> ObjectRef {
    ObjectRef {
        object: ObjectVersion::new(BUCKET, key, None),
        event_time: None,
        range: None,
    }
}

/// The resume_file of the unversioned object `key` in BUCKET from `line`.
fn resume_body(key: &str, line: u64) -> String {
    resume_file_message(&ObjectVersion::new(BUCKET, key, None), line)
}

pub(crate) fn sqs_record(message_id: &str, body: &str) -> JsonValue {
    let record = json!({"messageId": message_id, "eventSource": "aws:sqs", "body": body});
    parse_json(&record.to_string()).unwrap()
}

pub(crate) fn failures(response: &Value) -> Vec<&str> {
    response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect()
}

fn lines(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m["source"]["line"].as_u64().unwrap())
        .collect()
}

pub(crate) async fn process_file(aws: &FakeAws, deadline: &Deadline) -> Value {
    let response = handle_s3_event(aws, &config(), &[object(KEY)], deadline)
        .await
        .unwrap();
    response["files"][0].clone()
}

#[tokio::test]
async fn a_large_file_runs_in_batches_of_1000_rows() {
    let invalid = [4, 6, 1499, 2399];
    let rows = (1..=2500).map(|i| {
        if invalid.contains(&i) {
            invalid_row(i)
        } else {
            row(i)
        }
    });
    let aws = FakeAws::with_object(BUCKET, KEY, &csv(rows));
    let file = process_file(&aws, &ample_time()).await;
    assert_eq!(file["rows"], 2500);
    assert_eq!(file["stored"], 2496);
    assert_eq!(file["invalid"], 4);
    assert_eq!(file["resume_line"], Value::Null);
    // Each batch's invalid records are sent when the batch ends: 2, then 1, then 1.
    assert_eq!(aws.state().send_calls, vec![2, 1, 1]);
    let dlq = aws.messages(DLQ);
    assert_eq!(lines(&dlq), vec![5, 7, 1500, 2400]);
    assert!(dlq.iter().all(|m| m["error_code"] == "UNKNOWN_CURRENCY"));
    assert_eq!(aws.state().items.len(), 2496);
    assert!(aws.messages(QUEUE).is_empty());
}

#[tokio::test]
async fn records_sharing_a_key_in_one_batch_are_written_in_file_order() {
    // P17: line 2 is stored, line 3 (other content) conflicts, line 4 (same content) is a
    // duplicate, whatever the order in which the 64 writes in flight would finish.
    let rows = [
        "D-1,ACC1,10.00,EUR,CREDIT,2024-04-01T00:00:00Z,,".to_owned(),
        "D-1,ACC1,99.00,EUR,CREDIT,2024-04-01T00:00:00Z,,".to_owned(),
        "D-1,ACC1,10.00,EUR,CREDIT,2024-04-01T00:00:00Z,,".to_owned(),
        "D-2,ACC1,10.00,EUR,CREDIT,2024-04-01T00:00:00Z,,".to_owned(),
    ];
    let aws = FakeAws::with_object(BUCKET, KEY, &csv(rows));
    let file = process_file(&aws, &ample_time()).await;
    assert_eq!(
        (&file["stored"], &file["duplicates"], &file["invalid"]),
        (&json!(2), &json!(1), &json!(1))
    );
    let d1_lines: Vec<String> = aws
        .state()
        .puts
        .iter()
        .filter(|(id, _)| id == "D-1")
        .map(|(_, line)| line.clone())
        .collect();
    assert_eq!(d1_lines, vec!["2", "3", "4"]);
    assert_eq!(
        aws.item_attr("D-1", TS, "source_line").as_deref(),
        Some("2")
    );
    let dlq = aws.messages(DLQ);
    assert_eq!(lines(&dlq), vec![3]);
    assert_eq!(dlq[0]["error_code"], "DUPLICATE_CONFLICT");
    assert_eq!(dlq[0]["transaction_id"], "D-1");
}

#[tokio::test]
async fn time_running_out_sends_resume_file_at_the_next_batch() {
    let aws = FakeAws::with_object(BUCKET, KEY, &csv((1..=2500).map(row)));
    let file = process_file(&aws, &no_time()).await;
    // The first batch (lines 2 to 1001) is written; the file continues at line 1002.
    assert_eq!(file["stored"], 1000);
    assert_eq!(file["resume_line"], 1002);
    assert_eq!(aws.bodies(QUEUE), vec![resume_body(KEY, 1002)]);
    let stored_lines: Vec<u64> = aws
        .state()
        .puts
        .iter()
        .map(|(_, line)| line.parse().unwrap())
        .collect();
    assert_eq!(stored_lines.iter().min(), Some(&2));
    assert_eq!(stored_lines.iter().max(), Some(&1001));

    // The resume_file message continues from line 1002: every row is then stored once.
    let body = aws.bodies(QUEUE).remove(0);
    let response = handle_sqs_event(
        &aws,
        &config(),
        &[sqs_record("m-resume", &body)],
        &ample_time(),
    )
    .await;
    assert!(failures(&response).is_empty());
    let state = aws.state();
    assert_eq!(state.items.len(), 2500);
    assert_eq!(state.puts.len(), 2500, "no row written twice");
    let resumed: Vec<u64> = state.puts[1000..]
        .iter()
        .map(|(_, line)| line.parse().unwrap())
        .collect();
    assert_eq!(resumed.iter().min(), Some(&1002));
    assert_eq!(resumed.iter().max(), Some(&2501));
}

#[tokio::test]
async fn a_file_not_started_in_time_is_deferred_from_its_start() {
    // P21: the first file uses up the time; the second is handed on whole.
    let aws = FakeAws::with_object(BUCKET, KEY, &csv((1..=3).map(row)));
    aws.put_object(BUCKET, "in/g.csv", &csv((10..=12).map(row)));
    let response = handle_s3_event(
        &aws,
        &config(),
        &[object(KEY), object("in/g.csv")],
        &no_time(),
    )
    .await
    .unwrap();
    assert_eq!(response["files"][0]["stored"], 3);
    assert_eq!(response["files"][1]["stored"], 0);
    assert_eq!(response["files"][1]["resume_line"], 0);
    assert_eq!(aws.bodies(QUEUE), vec![resume_body("in/g.csv", 0)]);
}

#[tokio::test]
async fn a_failing_write_becomes_a_retry_record() {
    let aws = FakeAws::with_object(BUCKET, KEY, &csv((1..=3).map(row)));
    aws.state().failing_puts.insert("T-00002".into());
    let file = process_file(&aws, &ample_time()).await;
    assert_eq!((&file["stored"], &file["retried"]), (&json!(2), &json!(1)));
    let retries = aws.messages(QUEUE);
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0]["kind"], "retry_record");
    assert_eq!(retries[0]["record"]["transaction_id"], "T-00002");
    assert_eq!(retries[0]["source"]["line"], 3);
    assert_eq!(
        retries[0]["error"]["code"],
        "ProvisionedThroughputExceededException"
    );
    assert!(aws.messages(DLQ).is_empty());
}

#[tokio::test]
async fn a_stored_record_is_a_duplicate_and_other_content_a_conflict() {
    let aws = FakeAws::with_object(BUCKET, KEY, &csv((1..=3).map(row)));
    process_file(&aws, &ample_time()).await;
    // The same file again: the condition fails, ALL_OLD has the same record_hash.
    let again = process_file(&aws, &ample_time()).await;
    assert_eq!(
        (&again["stored"], &again["duplicates"]),
        (&json!(0), &json!(3))
    );
    assert!(aws.messages(DLQ).is_empty());
    // Another amount under a stored key: DUPLICATE_CONFLICT, kept in the DLQ.
    aws.put_object(
        BUCKET,
        KEY,
        &csv(["T-00001,ACC1,7.00,EUR,CREDIT,2024-04-01T00:00:00Z,,".to_owned()]),
    );
    let conflict = process_file(&aws, &ample_time()).await;
    assert_eq!(conflict["invalid"], 1);
    let dlq = aws.messages(DLQ);
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0]["error_code"], "DUPLICATE_CONFLICT");
    assert_eq!(
        aws.item_attr("T-00001", TS, "amount").as_deref(),
        Some("1.5")
    );
}

#[tokio::test]
async fn a_failed_condition_without_the_stored_item_is_retried() {
    let aws = FakeAws::with_object(BUCKET, KEY, &csv((1..=1).map(row)));
    process_file(&aws, &ample_time()).await;
    aws.state().omit_old_item = true;
    let again = process_file(&aws, &ample_time()).await;
    assert_eq!(again["retried"], 1);
    // Not a throttle: this run sent it once (two PutItems in all, with the first run's), never
    // again by the processor (P37): a retry_record at once.
    assert_eq!(aws.puts_of("T-00001"), 2);
    let retries = aws.messages(QUEUE);
    assert_eq!(
        retries[0]["error"]["code"],
        "ConditionalCheckFailedException"
    );
    assert_eq!(
        retries[0]["error"]["message"],
        "stored item not returned for comparison"
    );
}

#[tokio::test]
async fn failed_batch_entries_are_sent_again() {
    let rows = (1..=3).map(invalid_row);
    let aws = FakeAws::with_object(BUCKET, KEY, &csv(rows));
    aws.state().entry_failures.push_back(1);
    let file = process_file(&aws, &ample_time()).await;
    assert_eq!(file["invalid"], 3);
    // The first call loses its first entry; the second call sends only that one.
    assert_eq!(aws.state().send_calls, vec![3, 1]);
    let mut sent = lines(&aws.messages(DLQ));
    sent.sort_unstable();
    assert_eq!(sent, vec![2, 3, 4]);
}

#[tokio::test]
async fn messages_that_stay_unsent_fail_the_invocation() {
    let aws = FakeAws::with_object(BUCKET, KEY, &csv([invalid_row(1)]));
    aws.state().call_failures = 4;
    let error = handle_s3_event(&aws, &config(), &[object(KEY)], &ample_time())
        .await
        .unwrap_err();
    assert!(matches!(error, ProcessError::Unsent { unsent: 1, .. }));
    assert_eq!(
        error.to_string(),
        "SendMessageBatch left 1 message(s) unsent: RequestThrottled"
    );
    assert!(error.retryable());
    assert_eq!(aws.state().send_calls.len(), 4);
}

#[tokio::test]
async fn a_missing_object_is_a_file_error() {
    let aws = FakeAws::default();
    let file = process_file(&aws, &ample_time()).await;
    assert_eq!(file["file_error"], "OBJECT_NOT_FOUND");
    let dlq = aws.messages(DLQ);
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0]["kind"], "file_error");
    assert_eq!(dlq[0]["error_code"], "OBJECT_NOT_FOUND");
}

#[tokio::test]
async fn another_get_object_failure_fails_the_invocation() {
    let aws = FakeAws::with_object(BUCKET, KEY, &csv([row(1)]));
    aws.state().get_failure = Some(GetObjectError::Failed {
        code: "SlowDown".into(),
    });
    let error = handle_s3_event(&aws, &config(), &[object(KEY)], &ample_time())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "GetObject failed: SlowDown");
    assert!(error.retryable());
    assert!(aws.state().sent.is_empty());
    assert!(aws.state().puts.is_empty());
}

#[tokio::test]
async fn a_file_over_the_size_limit_is_a_file_error() {
    let aws = FakeAws::with_object(BUCKET, KEY, &csv((1..=3).map(row)));
    let cfg = Config {
        max_file_bytes: 10,
        ..config()
    };
    let response = handle_s3_event(&aws, &cfg, &[object(KEY)], &ample_time())
        .await
        .unwrap();
    assert_eq!(response["files"][0]["file_error"], "FILE_TOO_LARGE");
    assert!(aws.state().puts.is_empty());
}

#[tokio::test]
async fn a_json_file_is_written_by_array_index() {
    let doc = json!([
        {"transaction_id": "J-1", "account_id": "ACC1", "amount": "1.25", "currency": "EUR",
         "transaction_type": "DEBIT", "timestamp": "2024-04-01T00:00:00Z"},
        {"transaction_id": "J-2", "account_id": "ACC1", "amount": "1.25", "currency": "EURO",
         "transaction_type": "DEBIT", "timestamp": "2024-04-01T00:00:00Z"},
    ]);
    let aws = FakeAws::with_object(BUCKET, "in/f.json", &doc.to_string());
    let response = handle_s3_event(&aws, &config(), &[object("in/f.json")], &ample_time())
        .await
        .unwrap();
    assert_eq!(response["files"][0]["stored"], 1);
    assert_eq!(
        aws.item_attr("J-1", TS, "source_line").as_deref(),
        Some("0")
    );
    assert_eq!(lines(&aws.messages(DLQ)), vec![1]);
}

pub(crate) fn retry_body(transaction_id: &str, amount: &str) -> String {
    let tx = Transaction {
        transaction_id: transaction_id.into(),
        account_id: "ACC9".into(),
        amount: amount.into(),
        currency: "EUR".into(),
        transaction_type: "CREDIT".into(),
        timestamp: 1_711_929_600_000,
        merchant_id: None,
        description: None,
    };
    let source = SourceInfo {
        object: ObjectVersion::new(BUCKET, KEY, None),
        last_modified: None,
    };
    retry_record_message(&tx, &source, 7, "InternalServerError", "", 1, PROCESSOR).unwrap()
}

#[tokio::test]
async fn a_queue_batch_handles_each_kind_of_message() {
    let aws = FakeAws::with_object(BUCKET, KEY, &csv((1..=2).map(row)));
    let records = [
        sqs_record("m-retry", &retry_body("R-1", "5")),
        sqs_record("m-resume", &resume_body(KEY, 0)),
        sqs_record("m-unknown", "not a message"),
    ];
    let response = handle_sqs_event(&aws, &config(), &records, &ample_time()).await;
    assert!(failures(&response).is_empty());
    assert_eq!(
        aws.item_attr("R-1", TS, "source_line").as_deref(),
        Some("7")
    );
    assert_eq!(aws.state().items.len(), 3);
    // The unknown body travels to the DLQ unchanged (UNKNOWN_FORMAT there).
    assert_eq!(aws.bodies(DLQ), vec!["not a message".to_owned()]);
}

#[tokio::test]
async fn only_the_failed_messages_are_redelivered() {
    let aws = FakeAws::with_object(BUCKET, KEY, &csv((1..=2).map(row)));
    aws.state().failing_puts.insert("R-1".into());
    aws.state().get_failure = Some(GetObjectError::Failed {
        code: "InternalError".into(),
    });
    let records = [
        sqs_record("m-retry", &retry_body("R-1", "5")),
        sqs_record("m-retry-ok", &retry_body("R-2", "5")),
        sqs_record("m-resume", &resume_body(KEY, 0)),
        sqs_record("m-unknown", "not a message"),
    ];
    let response = handle_sqs_event(&aws, &config(), &records, &ample_time()).await;
    assert_eq!(failures(&response), vec!["m-retry", "m-resume"]);
    assert!(aws.item_attr("R-2", TS, "amount").is_some());
    assert_eq!(aws.bodies(DLQ), vec!["not a message".to_owned()]);
    // A retried write that keeps failing is redelivered, not sent again as a new message.
    assert!(aws.bodies(QUEUE).is_empty());
}

#[tokio::test]
async fn a_retried_record_with_other_content_is_a_conflict() {
    let aws = FakeAws::default();
    let first = [sqs_record("m-1", &retry_body("R-1", "5"))];
    handle_sqs_event(&aws, &config(), &first, &ample_time()).await;
    let second = [sqs_record("m-2", &retry_body("R-1", "6"))];
    let response = handle_sqs_event(&aws, &config(), &second, &ample_time()).await;
    assert!(failures(&response).is_empty());
    let dlq = aws.messages(DLQ);
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0]["error_code"], "DUPLICATE_CONFLICT");
    assert_eq!(dlq[0]["source"]["line"], 7);
}

#[tokio::test]
async fn an_unknown_event_is_forwarded_to_the_dlq() {
    let aws = FakeAws::default();
    let event = parse_json(r#"{"hello": "w\u00f6rld", "n": [1.50]}"#).unwrap();
    let response = handle_event(&aws, &config(), &event, &ample_time())
        .await
        .unwrap();
    assert_eq!(response, json!({"forwarded": true}));
    // Compact ASCII JSON (decision Q1), as the Python processor writes it.
    assert_eq!(
        aws.bodies(DLQ),
        vec![r#"{"hello":"w\u00f6rld","n":[1.5]}"#.to_owned()]
    );
}

#[tokio::test]
async fn file_status_is_opened_counted_per_batch_and_finished() {
    // 1001 rows: two batches, one invalid row in the second (P26 to P28).
    let rows = (1..=1001).map(|i| if i == 1001 { invalid_row(i) } else { row(i) });
    let aws = FakeAws::with_object(BUCKET, KEY, &csv(rows));
    handle_s3_event(&aws, &config(), &[object(KEY)], &ample_time())
        .await
        .unwrap();
    let updates = aws.state().status_updates.clone();
    assert_eq!(updates.len(), 4, "open, two batches, finish");
    let values = |i: usize, name: &str| {
        updates
            .get(i)
            .and_then(|u| u.values.get(name))
            .and_then(|v| v.as_n().ok())
            .cloned()
    };
    assert!(updates[0]
        .update_expression
        .contains("if_not_exists(#state, :received)"));
    // Batch 1: lines 2..=1001, cursor 0 -> 1002; batch 2: line 1002, cursor 1002 -> 1003.
    assert_eq!(values(1, ":from").as_deref(), Some("0"));
    assert_eq!(values(1, ":to").as_deref(), Some("1002"));
    assert_eq!(values(1, ":rows").as_deref(), Some("1000"));
    assert!(!updates[1].update_expression.contains("ranges_open"));
    assert_eq!(values(2, ":from").as_deref(), Some("1002"));
    assert_eq!(values(2, ":to").as_deref(), Some("1003"));
    assert_eq!(values(2, ":e0").as_deref(), Some("1"));
    assert_eq!(
        updates[2].names.get("#e0").map(String::as_str),
        Some("UNKNOWN_CURRENCY")
    );
    assert!(updates[2]
        .update_expression
        .contains("ranges_open :minus_one"));
    assert_eq!(
        updates[1].condition_expression.as_deref(),
        Some("cursors.#range = :from")
    );
    assert!(updates[3]
        .update_expression
        .starts_with("SET #state = :done"));
}
