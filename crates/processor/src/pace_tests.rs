//! Tokio tests of writes that yield to throttling (P37) over the in-memory fakes: throttled
//! writes wait and are stored, the limit follows a table that serves fewer writes, and a write
//! throttled past its retries or into the safety margin becomes a retry_record.

use serde_json::json;

use crate::fakes::FakeAws;
use crate::handlers::handle_sqs_event;
use crate::pace::WriteBackoff;
use crate::process::Deadline;
use crate::process_tests::{
    ample_time, config, csv, failures, no_time, process_file, retry_body, row, sqs_record, BUCKET,
    DLQ, KEY, QUEUE, TS,
};

fn throttle(aws: &FakeAws, ids: &[&str], times: u32) {
    let mut state = aws.state();
    for id in ids {
        state.throttled_puts.insert((*id).to_owned(), times);
    }
}

#[tokio::test]
async fn throttled_writes_wait_and_are_stored() {
    let aws = FakeAws::with_object(BUCKET, KEY, &csv((1..=4).map(row)));
    throttle(&aws, &["T-00001", "T-00002", "T-00003", "T-00004"], 3);
    let deadline = ample_time();
    let file = process_file(&aws, &deadline).await;
    assert_eq!((&file["stored"], &file["retried"]), (&json!(4), &json!(0)));
    assert!(aws.messages(QUEUE).is_empty() && aws.messages(DLQ).is_empty());
    assert_eq!(aws.state().puts.len(), 4 * 4);
    let pace = deadline.write_pace();
    assert_eq!((pace.throttled, pace.retried, pace.gave_up), (12, 12, 0));
}

#[tokio::test]
async fn sixty_four_writers_yield_to_a_table_that_serves_two() {
    let aws = FakeAws::with_object(BUCKET, KEY, &csv((1..=300).map(row)));
    aws.state().put_capacity = Some(2);
    let deadline = ample_time();
    let file = process_file(&aws, &deadline).await;
    assert_eq!(
        (&file["stored"], &file["retried"]),
        (&json!(300), &json!(0))
    );
    assert!(aws.messages(QUEUE).is_empty());
    assert_eq!(aws.state().items.len(), 300);
    let pace = deadline.write_pace();
    assert_eq!(aws.state().throttles, pace.throttled);
    assert!(pace.throttled > 0 && pace.retried == pace.throttled && pace.gave_up == 0);
    assert!(pace.lowest <= 2, "{pace:?}");
}

#[tokio::test]
async fn throttled_past_its_retries_a_record_becomes_a_retry_record() {
    let aws = FakeAws::with_object(BUCKET, KEY, &csv((1..=2).map(row)));
    throttle(&aws, &["T-00001", "T-00002"], 3);
    let deadline = ample_time().with_backoff(WriteBackoff {
        base_ms: 1,
        cap_ms: 1,
        retries: 2,
    });
    let file = process_file(&aws, &deadline).await;
    assert_eq!((&file["stored"], &file["retried"]), (&json!(0), &json!(2)));
    assert_eq!(aws.state().puts.len(), 2 * 3); // the first attempt and two retries
    let codes: Vec<_> = aws
        .messages(QUEUE)
        .iter()
        .map(|m| m["error"]["code"].clone())
        .collect();
    assert_eq!(codes, vec![json!("ThrottlingException"); 2]);
    assert_eq!(deadline.write_pace().gave_up, 2);
}

#[tokio::test]
async fn a_throttled_write_never_waits_into_the_safety_margin() {
    let aws = FakeAws::with_object(BUCKET, KEY, &csv((1..=1).map(row)));
    throttle(&aws, &["T-00001"], 1);
    // The deadline has passed: no wait fits, the throttled write goes to the queue at once.
    let file = process_file(&aws, &no_time()).await;
    assert_eq!((&file["stored"], &file["retried"]), (&json!(0), &json!(1)));
    assert_eq!(aws.puts_of("T-00001"), 1);
    assert_eq!(aws.messages(QUEUE)[0]["kind"], "retry_record");
}

#[tokio::test]
async fn throttles_keep_the_first_record_of_a_key_in_file_order() {
    let first = "T-00001,ACC1,1,EUR,CREDIT,2024-04-01T00:00:00Z,,".to_owned();
    let second = "T-00001,ACC1,2,EUR,CREDIT,2024-04-01T00:00:00Z,,".to_owned();
    let aws = FakeAws::with_object(BUCKET, KEY, &csv([first, second]));
    throttle(&aws, &["T-00001"], 5);
    let file = process_file(&aws, &ample_time()).await;
    assert_eq!(
        (&file["stored"], &file["invalid"], &file["retried"]),
        (&json!(1), &json!(1), &json!(0))
    );
    assert_eq!(aws.item_attr("T-00001", TS, "amount").as_deref(), Some("1"));
    assert_eq!(
        aws.item_attr("T-00001", TS, "source_line").as_deref(),
        Some("2")
    );
    assert_eq!(aws.messages(DLQ)[0]["error_code"], "DUPLICATE_CONFLICT");
}

#[tokio::test]
async fn a_throttled_retry_record_waits_and_is_stored() {
    let aws = FakeAws::default();
    throttle(&aws, &["R-1"], 2);
    let records = [sqs_record("m-1", &retry_body("R-1", "5"))];
    let deadline: Deadline = ample_time();
    let response = handle_sqs_event(&aws, &config(), &records, &deadline).await;
    assert!(failures(&response).is_empty());
    assert!(aws.item_attr("R-1", TS, "amount").is_some());
    assert_eq!(aws.puts_of("R-1"), 3);
}
