//! Tokio tests of large files in ranges (P33 to P35) over the in-memory fakes: the split, its
//! status update and messages, ranged reads, each range's cursor and resume, and the outcome
//! of a split file against the same file unsplit (the Python twin:
//! tests/unit/test_processor_ranges.py).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use crate::edges::Item;
use crate::fakes::FakeAws;
use crate::handlers::{handle_s3_event, handle_sqs_event};
use crate::process::{Config, Deadline};
use crate::process_tests::{
    ample_time, config, csv, failures, invalid_row, no_time, object, sqs_record, BUCKET, DLQ, KEY,
    QUEUE,
};

/// Row `i`: every 7th with a line break and a comma in a quoted merchant_id (its row spans two
/// lines), every 250th with an unknown currency.
fn range_row(i: usize) -> String {
    if i.is_multiple_of(250) {
        return invalid_row(i);
    }
    let merchant = if i.is_multiple_of(7) {
        format!("\"M\n{i},x\"")
    } else {
        format!("M{i}")
    };
    format!("T-{i:05},ACC{i},{i}.50,EUR,CREDIT,2024-04-01T00:00:00Z,{merchant},")
}

/// 3350 rows, about 210 kB: three ranges at this step, the first two of more than one batch.
const ROWS: usize = 3350;
const STEP: u64 = 80_000;

fn big_file() -> String {
    csv((1..=ROWS).map(range_row))
}

fn split_config(range_split_bytes: u64) -> Config {
    Config {
        range_split_bytes,
        ..config()
    }
}

/// What a file left behind: stored (transaction_id, source_line), record errors by line.
type Outcome = (BTreeSet<(String, String)>, Vec<(u64, String)>);

fn outcome(aws: &FakeAws) -> Outcome {
    let stored = aws
        .state()
        .items
        .values()
        .map(|item| (text(item, "transaction_id"), text(item, "source_line")))
        .collect();
    let mut errors: Vec<(u64, String)> = aws
        .messages(DLQ)
        .iter()
        .filter(|m| m["kind"] == "record_error")
        .map(|m| {
            let line = m["source"]["line"].as_u64().unwrap_or(0);
            (line, m["error_code"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    errors.sort();
    (stored, errors)
}

fn text(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s) | AttributeValue::N(s)) => s.clone(),
        _ => String::new(),
    }
}

/// Deliver every main-queue message, one invocation each (ranges side by side), until the
/// queue is empty; returns the number of rounds.
async fn drain(aws: &FakeAws, cfg: &Config, time: fn() -> Deadline) -> usize {
    let mut taken = 0;
    let mut rounds = 0;
    loop {
        let pending: Vec<String> = aws.bodies(QUEUE).split_off(taken);
        if pending.is_empty() {
            return rounds;
        }
        taken += pending.len();
        rounds += 1;
        for (index, body) in pending.iter().enumerate() {
            let records = [sqs_record(&format!("m-{rounds}-{index}"), body)];
            let response = handle_sqs_event(aws, cfg, &records, &time()).await;
            assert!(failures(&response).is_empty(), "{body}");
        }
    }
}

async fn s3_event(aws: &FakeAws, cfg: &Config) -> Value {
    s3_event_on(aws, cfg, KEY).await
}

/// The S3 event of `key` with ample time; the response's one file.
async fn s3_event_on(aws: &FakeAws, cfg: &Config, key: &str) -> Value {
    let response = handle_s3_event(aws, cfg, &[object(key)], &ample_time())
        .await
        .unwrap();
    response["files"][0].clone()
}

/// What `data` under `key` leaves behind processed whole, never split: the oracle of a split.
async fn unsplit_outcome(key: &str, data: &str) -> Outcome {
    let whole = FakeAws::with_object(BUCKET, key, data);
    s3_event_on(&whole, &config(), key).await;
    outcome(&whole)
}

/// The clock of a drain: resuming after every batch, or ample time.
fn clock(resuming: bool) -> fn() -> Deadline {
    if resuming {
        no_time
    } else {
        ample_time
    }
}

fn n_value(update: &crate::edges::ItemUpdate, name: &str) -> Option<u64> {
    update.values.get(name)?.as_n().ok()?.parse().ok()
}

#[tokio::test]
async fn a_split_file_ends_as_the_unsplit_file() {
    let data = big_file();
    let expected = unsplit_outcome(KEY, &data).await;
    assert_eq!(expected.0.len(), ROWS - ROWS / 250);
    for resuming in [false, true] {
        let time = clock(resuming);
        let aws = FakeAws::with_object(BUCKET, KEY, &data);
        let cfg = split_config(STEP);
        let file = s3_event(&aws, &cfg).await;
        assert_eq!(
            (file["rows"].as_u64(), file["resume_line"].as_u64()),
            (Some(0), Some(0))
        );
        assert!(aws.state().items.is_empty(), "the splitter stores nothing");
        let messages = aws.messages(QUEUE);
        assert_eq!(messages.len(), 3);
        assert!(messages.iter().all(|m| m["start_line"] == m["range_line"]));
        assert_eq!(messages[0]["start_byte"], 0);
        assert_eq!(messages[2]["end_byte"], data.len());
        for pair in messages.windows(2) {
            assert_eq!(pair[0]["end_byte"], pair[1]["start_byte"]);
        }
        let rounds = drain(&aws, &cfg, time).await;
        assert_eq!(outcome(&aws), expected);
        // Resuming after every batch: each range's later batches go out as range messages.
        let resumed = aws.messages(QUEUE).split_off(3);
        assert_eq!((rounds > 1, resumed.is_empty()), (resuming, !resuming));
        assert!(resumed.iter().all(|m| m.get("range_line").is_some()));
        check_cursors(&aws, &messages);
    }
}

/// Each range counts its own batches: its cursor runs from its id, batch after batch without a
/// gap, to the line after its last row, and its last batch closes it (P28, P35).
fn check_cursors(aws: &FakeAws, messages: &[Value]) {
    let mut spans: BTreeMap<u64, Vec<(u64, u64, bool)>> = BTreeMap::new();
    for update in &aws.state().status_updates {
        if update.condition_expression.as_deref() != Some("cursors.#range = :from") {
            continue;
        }
        let range: u64 = update.names["#range"].parse().unwrap();
        let closes = update.update_expression.contains("ranges_open :minus_one");
        let span = (
            n_value(update, ":from").unwrap(),
            n_value(update, ":to").unwrap(),
            closes,
        );
        spans.entry(range).or_default().push(span);
    }
    let ids: Vec<u64> = messages
        .iter()
        .map(|m| m["range_line"].as_u64().unwrap())
        .collect();
    assert_eq!(spans.keys().copied().collect::<Vec<_>>(), ids);
    for (index, (range, batches)) in spans.iter().enumerate() {
        assert_eq!(batches[0].0, *range);
        for pair in batches.windows(2) {
            assert_eq!(pair[0].1, pair[1].0);
        }
        assert_eq!(batches.iter().filter(|b| b.2).count(), 1);
        assert!(batches.last().unwrap().2);
        if let Some(next) = ids.get(index + 1) {
            // The last row of a range may span lines: its cursor ends at or before the next id.
            assert!(batches.last().unwrap().1 <= *next);
        }
    }
}

#[tokio::test]
async fn the_split_is_one_conditional_update_before_any_message() {
    let (aws, _) = split_big_file().await;
    let messages = aws.messages(QUEUE);
    let updates = aws.state().status_updates.clone();
    assert_eq!(updates.len(), 2, "open and split");
    let split = &updates[1];
    assert_eq!(
        split.condition_expression.as_deref(),
        Some("cursors.#r0 = :zero AND ranges_open = :one AND attribute_not_exists(cursors.#r1)")
    );
    assert!(split.old_item_on_condition_failure);
    assert_eq!(n_value(split, ":ranges"), Some(3));
    for (index, message) in messages.iter().enumerate().skip(1) {
        let line = message["range_line"].as_u64().unwrap();
        assert_eq!(split.names[&format!("#r{index}")], line.to_string());
        assert_eq!(n_value(split, &format!(":l{index}")), Some(line));
        assert!(split
            .update_expression
            .contains(&format!("cursors.#r{index} = :l{index}")));
    }
    assert_eq!(split.names["#r0"], "0");
    assert!(split.update_expression.contains("ranges_open = :ranges"));
}

/// The big file's S3 event with ranges of STEP bytes: split, its range messages on the queue.
async fn split_big_file() -> (FakeAws, Config) {
    let aws = FakeAws::with_object(BUCKET, KEY, &big_file());
    let cfg = split_config(STEP);
    s3_event(&aws, &cfg).await;
    (aws, cfg)
}

/// The split's conditional update is refused: the status item already holds cursors `ids`
/// (a split made before, or an unsplit run's cursor 0).
fn refuse_split(aws: &FakeAws, ids: &[u64]) {
    let cursors = ids
        .iter()
        .map(|id| (id.to_string(), AttributeValue::N(id.to_string())))
        .collect::<HashMap<_, _>>();
    let item = HashMap::from([("cursors".to_owned(), AttributeValue::M(cursors))]);
    let refusal = ("attribute_not_exists(cursors.#r1)".to_owned(), item);
    aws.state().refused_status_updates.push(refusal);
}

#[tokio::test]
async fn a_split_made_before_sends_its_messages_again() {
    let (aws, cfg) = split_big_file().await;
    let first = aws.bodies(QUEUE);
    let ids: Vec<u64> = aws
        .messages(QUEUE)
        .iter()
        .map(|m| m["range_line"].as_u64().unwrap())
        .collect();
    // The event again, after the split was recorded: the same messages, nothing else (P34).
    refuse_split(&aws, &ids);
    let file = s3_event(&aws, &cfg).await;
    assert_eq!(file["resume_line"], 0);
    assert_eq!(aws.bodies(QUEUE), [first.clone(), first].concat());
    assert!(aws.state().items.is_empty());
}

#[tokio::test]
async fn a_file_whose_unsplit_run_began_is_processed_unsplit() {
    let aws = FakeAws::with_object(BUCKET, KEY, &big_file());
    refuse_split(&aws, &[0]);
    let file = s3_event(&aws, &split_config(STEP)).await;
    assert_eq!(file["rows"], ROWS);
    assert!(file["resume_line"].is_null());
    assert!(aws.bodies(QUEUE).is_empty());
    assert_eq!(
        aws.state().gets,
        [None, None],
        "read once to split, once to process"
    );
    assert_eq!(aws.state().items.len(), ROWS - ROWS / 250);
}

#[tokio::test]
async fn a_file_split_otherwise_before_is_left_to_its_messages() {
    let aws = FakeAws::with_object(BUCKET, KEY, &big_file());
    refuse_split(&aws, &[0, 5]);
    let file = s3_event(&aws, &split_config(STEP)).await;
    assert_eq!(file["rows"], 0);
    assert!(aws.bodies(QUEUE).is_empty() && aws.bodies(DLQ).is_empty());
    assert!(aws.state().items.is_empty());
}

#[tokio::test]
async fn a_range_is_read_with_ranged_gets_and_counted_from_its_id() {
    let (aws, cfg) = split_big_file().await;
    let messages = aws.messages(QUEUE);
    let second = &messages[1];
    let (start, end) = (
        second["start_byte"].as_u64().unwrap(),
        second["end_byte"].as_u64().unwrap(),
    );
    aws.state().gets.clear();
    let body = aws.bodies(QUEUE)[1].clone();
    let response = handle_sqs_event(&aws, &cfg, &[sqs_record("m-1", &body)], &ample_time()).await;
    assert!(failures(&response).is_empty());
    // The range's bytes, then the header from the object's start.
    assert_eq!(aws.state().gets, [Some((start, end)), Some((0, start))]);
    let first_line = second["range_line"].as_u64().unwrap();
    let lines: BTreeSet<u64> = aws
        .state()
        .items
        .values()
        .map(|item| text(item, "source_line").parse().unwrap())
        .collect();
    assert_eq!(
        lines.first(),
        Some(&first_line),
        "the range's first row keeps its line"
    );
    let data = big_file();
    let physical = data[..usize::try_from(start).unwrap()]
        .matches('\n')
        .count()
        + 1;
    assert_eq!(first_line, physical as u64);
}

#[tokio::test]
async fn a_deferred_range_stays_a_range() {
    let (aws, cfg) = split_big_file().await;
    let bodies = aws.bodies(QUEUE);
    let records = [sqs_record("m-0", &bodies[0]), sqs_record("m-1", &bodies[1])];
    let response = handle_sqs_event(&aws, &cfg, &records, &no_time()).await;
    assert!(failures(&response).is_empty());
    let ranges = aws.messages(QUEUE);
    let sent = aws.messages(QUEUE).split_off(bodies.len());
    assert_eq!(
        sent.len(),
        2,
        "range 0 resumes after a batch; range 1 is deferred"
    );
    assert_eq!(sent[0]["range_line"], 0);
    assert!(sent[0]["start_line"].as_u64() > Some(1000));
    assert_eq!(sent[1], ranges[1], "deferred from its start");
}

#[tokio::test]
async fn a_file_just_over_the_threshold_may_be_one_range() {
    // No row starts at or after the step: one range, "0", no split update (P33, P34).
    let data = csv((1..=3).map(range_row));
    let aws = FakeAws::with_object(BUCKET, KEY, &data);
    let cfg = split_config(data.len() as u64 - 1);
    s3_event(&aws, &cfg).await;
    assert_eq!(aws.state().status_updates.len(), 1, "open only");
    let messages = aws.messages(QUEUE);
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (
            &messages[0]["range_line"],
            &messages[0]["start_byte"],
            &messages[0]["end_byte"]
        ),
        (&Value::from(0), &Value::from(0), &Value::from(data.len()))
    );
    drain(&aws, &cfg, ample_time).await;
    assert_eq!(aws.state().items.len(), 3);
    assert_eq!(aws.state().gets, [None, Some((0, data.len() as u64))]);
}

#[tokio::test]
async fn a_split_file_error_is_reported_as_unsplit() {
    let data = format!("transaction_id,nope\n{}\n", "x,y\n".repeat(50));
    let aws = FakeAws::with_object(BUCKET, KEY, &data);
    let file = s3_event(&aws, &split_config(10)).await;
    assert_eq!(file["file_error"], "INVALID_HEADER");
    assert!(aws.bodies(QUEUE).is_empty());
    assert_eq!(aws.messages(DLQ)[0]["kind"], "file_error");
}

#[tokio::test]
async fn a_range_message_with_a_bad_field_is_forwarded_to_the_dlq() {
    let aws = FakeAws::with_object(BUCKET, KEY, &big_file());
    let body = r#"{"kind":"resume_file","bucket":"uploads","key":"in/f.csv","version_id":null,"start_line":9,"range_line":9,"start_byte":500}"#;
    let response =
        handle_sqs_event(&aws, &config(), &[sqs_record("m-1", body)], &ample_time()).await;
    assert!(failures(&response).is_empty());
    assert_eq!(aws.bodies(DLQ), [body]);
    assert!(aws.state().gets.is_empty());
}

const JSON_KEY: &str = "in/f.json";

/// 2500 elements in the `{"transactions": [...]}` form: strings with brackets,
/// commas and escaped quotes, every 250th record with an unknown currency, every 600th element
/// not an object (P33a).
fn big_json() -> String {
    let elements: Vec<String> = (0..2500)
        .map(|i: usize| {
            if i % 600 == 599 {
                return format!("[\"T-{i:05}\"]");
            }
            let currency = if i.is_multiple_of(250) { "XYZ" } else { "EUR" };
            format!(
                "{{\"transaction_id\": \"T-{i:05}\", \"account_id\": \"ACC{i}\", \"amount\": {i}.5, \
                 \"currency\": \"{currency}\", \"transaction_type\": \"CREDIT\", \
                 \"timestamp\": \"2024-04-01T00:00:00Z\", \"merchant_id\": \"M\\\"],[{{{i}\"}}"
            )
        })
        .collect();
    format!("{{\"transactions\": [\n{}\n]}}\n", elements.join(",\n"))
}

#[tokio::test]
async fn a_split_json_file_ends_as_the_unsplit_file() {
    let data = big_json();
    let expected = unsplit_outcome(JSON_KEY, &data).await;
    assert_eq!(expected.0.len(), 2500 - 10 - 4);
    for resuming in [false, true] {
        let time = clock(resuming);
        let aws = FakeAws::with_object(BUCKET, JSON_KEY, &data);
        // Two ranges of about 1250 elements: more than a batch each.
        let cfg = split_config(data.len() as u64 / 2);
        let file = s3_event_on(&aws, &cfg, JSON_KEY).await;
        assert_eq!(file["resume_line"].as_u64(), Some(0));
        assert!(aws.state().items.is_empty(), "the splitter stores nothing");
        let messages = aws.messages(QUEUE);
        assert_eq!(messages.len(), 2);
        // Range 0 starts at element 0 (after the prefix), the last ends at the array's ']'.
        assert_eq!(
            messages[0]["start_byte"],
            data.find("{\"transaction_id").unwrap()
        );
        assert_eq!(messages[1]["end_byte"], data.rfind(']').unwrap());
        for pair in messages.windows(2) {
            assert_eq!(pair[0]["end_byte"], pair[1]["start_byte"]);
        }
        let rounds = drain(&aws, &cfg, time).await;
        assert_eq!(outcome(&aws), expected);
        assert_eq!(rounds > 1, resuming);
        check_cursors(&aws, &messages);
    }
}

#[tokio::test]
async fn a_malformed_json_over_the_threshold_is_reported_as_unsplit() {
    let data = big_json().replace("\"T-01200\", \"account_id\"", "\"T-01200\" \"account_id\"");
    let whole = FakeAws::with_object(BUCKET, JSON_KEY, &data);
    let unsplit = s3_event_on(&whole, &config(), JSON_KEY).await;
    assert_eq!(unsplit["file_error"], "MALFORMED_FILE");
    let aws = FakeAws::with_object(BUCKET, JSON_KEY, &data);
    let file = s3_event_on(&aws, &split_config(1000), JSON_KEY).await;
    assert_eq!(file["file_error"], "MALFORMED_FILE");
    assert!(aws.bodies(QUEUE).is_empty() && aws.state().items.is_empty());
    let message = |a: &FakeAws| a.messages(DLQ)[0]["error_message"].clone();
    assert_eq!(message(&aws), message(&whole));
    // Read twice: once by the split's scan, once whole.
    assert_eq!(aws.state().gets, [None, None]);
}

#[tokio::test]
async fn a_file_to_split_that_cannot_be_read_is_one_file_error_and_no_range() {
    // Over the step, so the split reads it first (P33); the header lacks columns, so the split
    // finds a file error instead of ranges: reported once, nothing queued or stored.
    let text = format!("transaction_id,amount\n{}", "T-1,1.50\n".repeat(20));
    let aws = FakeAws::with_object(BUCKET, KEY, &text);
    let file = s3_event(&aws, &split_config(16)).await;
    let dlq = aws.messages(DLQ);
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    assert_eq!(dlq[0]["kind"], "file_error");
    assert_eq!(dlq[0]["error_code"], file["file_error"]);
    assert_eq!(file["file_error"], "INVALID_HEADER", "{file}");
    assert!(aws.messages(QUEUE).is_empty());
    assert!(aws.state().puts.is_empty());
}
