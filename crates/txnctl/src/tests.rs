//! Tests of the commands over in-memory fakes of `crate::edges`.

use std::cell::RefCell;
use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeZone, Utc};
use indicatif::ProgressBar;

use crate::commands::{self, days_between, parse_since, FileState};
use crate::edges::{OldestAge, QueueDepth, Queues, Tables};
use crate::error::CliError;
use crate::model::tests::{n, s};
use crate::model::{ErrorRow, Item, RowKey};
use crate::outputs::StackOutputs;
use crate::replay::{plan, ReplayRow};

#[derive(Default)]
struct FakeTables {
    status: Vec<Item>,
    errors: RefCell<Vec<Item>>,
    /// error_ids whose UpdateItem fails with something other than the condition.
    broken_updates: Vec<String>,
}

fn text_of(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// The items whose text attribute `name` is `value` (what a Query on its index returns).
fn having(items: &[Item], name: &str, value: &str) -> Vec<Item> {
    items
        .iter()
        .filter(|i| text_of(i, name).as_deref() == Some(value))
        .cloned()
        .collect()
}

impl Tables for FakeTables {
    async fn file_versions(&self, key: &str) -> Result<Vec<Item>, CliError> {
        Ok(having(&self.status, "source_key", key))
    }
    async fn files_on_day(&self, day: &str, since: &str) -> Result<Vec<Item>, CliError> {
        Ok(self
            .status
            .iter()
            .filter(|i| text_of(i, "activity_day").as_deref() == Some(day))
            .filter(|i| text_of(i, "first_activity").is_some_and(|f| f.as_str() >= since))
            .cloned()
            .collect())
    }
    async fn errors_of_file(&self, key: &str) -> Result<Vec<Item>, CliError> {
        Ok(having(&self.errors.borrow(), "source_key", key))
    }
    async fn errors_of_transaction(&self, id: &str) -> Result<Vec<Item>, CliError> {
        Ok(having(&self.errors.borrow(), "transaction_id", id))
    }
    async fn retryable_errors_page(
        &self,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), CliError> {
        // Two pages: the first row, then the rest, to exercise the paging loop.
        let all: Vec<Item> = self
            .errors
            .borrow()
            .iter()
            .filter(|i| matches!(i.get("retryable"), Some(AttributeValue::Bool(true))))
            .cloned()
            .collect();
        match start {
            None if all.len() > 1 => Ok((all[..1].to_vec(), Some(Item::new()))),
            None => Ok((all, None)),
            Some(_) => Ok((all[1..].to_vec(), None)),
        }
    }
    async fn mark_replayed(&self, row: &ReplayRow, at: &str) -> Result<bool, CliError> {
        if self.broken_updates.contains(&row.error_id) {
            return Err(CliError::AccessDenied {
                action: "dynamodb:UpdateItem".into(),
                resource: "table errors".into(),
                message: "denied".into(),
            });
        }
        let mut errors = self.errors.borrow_mut();
        let Some(item) = errors
            .iter_mut()
            .find(|i| text_of(i, "error_id").as_deref() == Some(row.error_id.as_str()))
        else {
            return Ok(false);
        };
        if text_of(item, "replayed_at") != row.replayed_at {
            return Ok(false);
        }
        item.insert("replayed_at".into(), s(at));
        Ok(true)
    }
    async fn unmark_replayed(&self, row: &RowKey, at: &str) -> Result<(), CliError> {
        let mut errors = self.errors.borrow_mut();
        if let Some(item) = errors.iter_mut().find(|i| {
            text_of(i, "error_id").as_deref() == Some(row.error_id.as_str())
                && text_of(i, "replayed_at").as_deref() == Some(at)
        }) {
            item.remove("replayed_at");
        }
        Ok(())
    }
}

#[derive(Default)]
struct FakeQueues {
    sent: RefCell<Vec<(String, String)>>,
    fail_sends: bool,
}

impl Queues for FakeQueues {
    async fn depth(&self, url: &str) -> Result<QueueDepth, CliError> {
        Ok(if url.ends_with("dlq") {
            QueueDepth {
                visible: 3,
                in_flight: 1,
                delayed: 0,
            }
        } else {
            QueueDepth::default()
        })
    }
    async fn oldest_age(&self, queue_name: &str) -> OldestAge {
        if queue_name == "dlq" {
            OldestAge::Seconds(42.0)
        } else {
            OldestAge::Unknown("no CloudWatch datapoint in the last 15 minutes".into())
        }
    }
    async fn send(&self, url: &str, body: &str) -> Result<(), CliError> {
        if self.fail_sends {
            return Err(CliError::Aws {
                action: "sqs:SendMessage".into(),
                resource: url.into(),
                code: "ServiceUnavailable".into(),
                message: "try later".into(),
            });
        }
        self.sent
            .borrow_mut()
            .push((url.to_owned(), body.to_owned()));
        Ok(())
    }
}

fn outputs() -> StackOutputs {
    StackOutputs {
        origin: "test".into(),
        file_status_table: Some("status".into()),
        errors_table: "errors".into(),
        main_queue_url: "https://sqs/1/main".into(),
        dlq_url: "https://sqs/1/dlq".into(),
        region: None,
    }
}

fn item(pairs: &[(&str, AttributeValue)]) -> Item {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn status_item(key: &str, version: &str, state: &str, first: &str) -> Item {
    item(&[
        ("source_bucket", s("bucket")),
        ("source_key", s(key)),
        ("source_version_id", s(version)),
        ("state", s(state)),
        ("rows_seen", n(3)),
        ("stored", n(2)),
        ("duplicates", n(0)),
        ("retries_pending", n(0)),
        (
            "record_errors",
            AttributeValue::M(HashMap::from([("INVALID_VALUE".into(), n(1))])),
        ),
        ("first_activity", s(first)),
        ("last_activity", s(first)),
        ("activity_day", s(&first[..10])),
    ])
}

fn error_item(id: &str, key: &str, version: &str, code: &str, line: Option<i64>) -> Item {
    let retryable = matches!(
        code,
        "RECORD_WRITE_FAILED" | "FILE_RESUME_FAILED" | "FILE_PROCESSING_FAILED"
    );
    let mut i = item(&[
        ("error_id", s(id)),
        ("timestamp", n(1_764_460_800_000)),
        ("error_code", s(code)),
        (
            "error_type",
            s(if retryable {
                "PROCESSING"
            } else {
                "VALIDATION"
            }),
        ),
        ("error_message", s("amount: must be positive")),
        ("retryable", AttributeValue::Bool(retryable)),
        ("source_bucket", s("bucket")),
        ("source_key", s(key)),
        ("source_version_id", s(version)),
        (
            "record",
            AttributeValue::M(HashMap::from([
                ("account_id".into(), s("****3000")),
                ("transaction_id".into(), s("T1")),
            ])),
        ),
    ]);
    if let Some(l) = line {
        i.insert("source_line".into(), n(l));
    }
    i
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A UTC instant of the fixtures' days.
fn utc(year: i32, month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, 0, 0)
        .single()
        .expect("time")
}

/// Four days of status records (a.csv in two versions, one of them failed, as is b.csv) and
/// the errors rows of a.csv's versions.
fn status_fixture() -> FakeTables {
    FakeTables {
        status: vec![
            status_item("old.csv", "v", "done", "2026-11-27T23:00:00.000Z"),
            status_item("a.csv", "v1", "done", "2026-11-29T10:00:00.000Z"),
            status_item("a.csv", "v2", "failed", "2026-11-30T10:00:00.000Z"),
            status_item("b.csv", "v", "failed", "2026-11-30T01:00:00.000Z"),
        ],
        errors: RefCell::new(vec![
            error_item("e3", "a.csv", "v2", "INVALID_VALUE", Some(9)),
            error_item("e2", "a.csv", "v2", "INVALID_VALUE", Some(4)),
            error_item("e1", "a.csv", "v2", "EMPTY_FIELD", Some(7)),
            error_item("e0", "a.csv", "v1", "INVALID_VALUE", Some(2)),
        ]),
        ..Default::default()
    }
}

#[test]
fn status_takes_the_latest_version_and_its_errors_by_code_and_line() {
    let tables = status_fixture();
    let report = block_on(commands::status(&tables, "a.csv", None)).expect("status");
    assert_eq!(report.file.source_version_id, "v2");
    assert_eq!(report.versions, ["v2", "v1"]);
    let order: Vec<&str> = report.errors.iter().map(|e| e.error_id.as_str()).collect();
    assert_eq!(order, ["e1", "e2", "e3"]);

    let older = block_on(commands::status(&tables, "a.csv", Some("v1"))).expect("status");
    assert_eq!(older.errors.len(), 1);

    let err = block_on(commands::status(&tables, "c.csv", None)).expect_err("unknown key");
    assert_eq!(err.exit_code(), 4);
    let err =
        block_on(commands::status(&tables, "a.csv", Some("v9"))).expect_err("unknown version");
    assert!(err.to_string().contains("known versions: v2, v1"), "{err}");
}

#[test]
fn files_reads_each_day_and_filters_by_state() {
    let tables = status_fixture();
    let now = utc(2026, 11, 30, 12);
    let since = parse_since("2d", now).expect("since");
    // By first activity: old.csv is before `since`, a.csv's two versions are two records.
    for (state, expected) in [
        (None, vec!["a.csv", "b.csv", "a.csv"]),
        (Some(FileState::Failed), vec!["b.csv", "a.csv"]),
    ] {
        let report = block_on(commands::files(
            &tables,
            since,
            now,
            state,
            &ProgressBar::hidden(),
        ))
        .expect("files");
        let keys: Vec<&str> = report.files.iter().map(|f| f.source_key.as_str()).collect();
        assert_eq!(keys, expected, "{state:?}");
    }
}

#[test]
fn since_accepts_dates_instants_and_durations() {
    let now = utc(2026, 11, 30, 12);
    assert_eq!(
        parse_since("2026-11-29", now).expect("date").to_rfc3339(),
        "2026-11-29T00:00:00+00:00"
    );
    assert_eq!(
        parse_since("2026-11-30T08:00:00+01:00", now)
            .expect("rfc3339")
            .to_rfc3339(),
        "2026-11-30T07:00:00+00:00"
    );
    assert_eq!(
        parse_since("90m", now).expect("duration").to_rfc3339(),
        "2026-11-30T10:30:00+00:00"
    );
    let err = parse_since("yesterday", now).expect_err("bad");
    assert_eq!(err.exit_code(), 2);
    let days = days_between(parse_since("2026-11-28", now).expect("date"), now).expect("days");
    assert_eq!(days, ["2026-11-28", "2026-11-29", "2026-11-30"]);
    assert!(days_between(parse_since("400d", now).expect("d"), now).is_err());
    assert!(days_between(utc(2026, 12, 1, 0), now).is_err());
}

#[test]
fn errors_by_file_or_transaction_filtered_by_code_show_masked_records() {
    let mut by_tx = error_item("e9", "b.csv", "v", "INVALID_VALUE", Some(3));
    by_tx.insert("transaction_id".into(), s("T1"));
    let mut leaky = error_item("e1", "a.csv", "v", "EMPTY_FIELD", Some(5));
    leaky.insert(
        "record".into(),
        AttributeValue::M(HashMap::from([
            ("account_id".into(), s("DE89370400440532013000")),
            ("description".into(), s("private")),
        ])),
    );
    let tables = FakeTables {
        errors: RefCell::new(vec![
            leaky,
            error_item("e2", "a.csv", "v", "INVALID_VALUE", Some(6)),
            by_tx,
        ]),
        ..Default::default()
    };
    let report = block_on(commands::errors(
        &tables,
        Some("a.csv"),
        None,
        Some("EMPTY_FIELD"),
    ))
    .expect("errors");
    assert_eq!(report.errors.len(), 1);
    let json = serde_json::to_string(&report).expect("json");
    assert!(json.contains("****3000") && !json.contains("DE8937") && !json.contains("private"));

    let report = block_on(commands::errors(&tables, None, Some("T1"), None)).expect("errors");
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].error_id, "e9");
    let report =
        block_on(commands::errors(&tables, Some("a.csv"), Some("T1"), None)).expect("both");
    assert!(report.errors.is_empty());
    let err = block_on(commands::errors(&tables, None, None, None)).expect_err("neither");
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn queues_report_depth_and_age_or_why_not() {
    let report = block_on(commands::queues(&FakeQueues::default(), &outputs())).expect("queues");
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["queues"][0]["queue"], "main");
    assert_eq!(
        json["queues"][0]["oldest_age_seconds"],
        serde_json::Value::Null
    );
    assert_eq!(json["queues"][1]["visible"], 3);
    assert_eq!(json["queues"][1]["in_flight"], 1);
    assert_eq!(json["queues"][1]["oldest_age_seconds"], 42.0);
}

fn replay_fixture() -> FakeTables {
    FakeTables {
        errors: RefCell::new(vec![
            error_item("w1", "a.csv", "v1", "RECORD_WRITE_FAILED", Some(12)),
            error_item("w2", "a.csv", "v1", "RECORD_WRITE_FAILED", Some(5)),
            error_item("r1", "a.csv", "v2", "FILE_RESUME_FAILED", Some(40)),
            error_item("p1", "b.json", "v1", "FILE_PROCESSING_FAILED", None),
            error_item("x1", "a.csv", "v1", "INVALID_VALUE", Some(7)),
        ]),
        ..Default::default()
    }
}

fn rows(tables: &FakeTables) -> Vec<ErrorRow> {
    tables
        .errors
        .borrow()
        .iter()
        .filter_map(ErrorRow::from_item)
        .collect()
}

/// `commands::replay` as the CLI runs it: every error code, the test stack, now, no progress bar.
fn run_replay(
    tables: &FakeTables,
    q: &FakeQueues,
    file: Option<&str>,
    include_replayed: bool,
    dry_run: bool,
) -> Result<commands::ReplayReport, CliError> {
    block_on(commands::replay(
        tables,
        q,
        &outputs(),
        file,
        None,
        include_replayed,
        dry_run,
        Utc::now(),
        &ProgressBar::hidden(),
    ))
}

#[test]
fn replay_plans_one_resume_file_per_version_from_the_smallest_line() {
    let tables = replay_fixture();
    let planned = plan(&rows(&tables), None, false);
    let bodies: Vec<String> = planned.messages.iter().map(|m| m.body_json()).collect();
    assert_eq!(
        bodies,
        [
            r#"{"kind":"resume_file","bucket":"bucket","key":"a.csv","version_id":"v1","start_line":5}"#,
            r#"{"kind":"resume_file","bucket":"bucket","key":"a.csv","version_id":"v2","start_line":40}"#,
            r#"{"kind":"resume_file","bucket":"bucket","key":"b.json","version_id":"v1","start_line":0}"#,
        ]
    );
    assert!(planned.skipped.is_empty());
    let only = plan(&rows(&tables), Some("FILE_RESUME_FAILED"), false);
    assert_eq!(only.messages.len(), 1);
    assert_eq!(only.messages[0].rows[0].error_id, "r1");
}

#[test]
fn replay_rows_without_a_source_are_skipped_with_a_reason() {
    let mut row = error_item("p9", "x", "v", "FILE_PROCESSING_FAILED", None);
    row.remove("source_bucket");
    let planned = plan(
        &ErrorRow::from_item(&row).into_iter().collect::<Vec<_>>(),
        None,
        false,
    );
    assert!(planned.messages.is_empty());
    assert!(planned.skipped[0].reason.contains("nothing to read again"));
}

#[test]
fn replay_dry_run_sends_and_marks_nothing() {
    let tables = replay_fixture();
    let q = FakeQueues::default();
    let report = run_replay(&tables, &q, None, false, true).expect("replay");
    assert_eq!(report.messages.len(), 3);
    assert!(report.messages.iter().all(|m| m.result == "would send"));
    assert!(q.sent.borrow().is_empty());
    assert!(rows(&tables).iter().all(|r| r.replayed_at.is_none()));
}

#[test]
fn replay_twice_sends_nothing_the_second_time() {
    let tables = replay_fixture();
    let q = FakeQueues::default();
    let first = run_replay(&tables, &q, Some("a.csv"), false, false).expect("replay");
    assert_eq!(first.sent, 2);
    assert_eq!(q.sent.borrow().len(), 2);
    assert!(q
        .sent
        .borrow()
        .iter()
        .all(|(url, _)| url == "https://sqs/1/main"));
    let second = run_replay(&tables, &q, Some("a.csv"), false, false).expect("replay");
    assert_eq!(second.sent, 0);
    assert_eq!(second.skipped.len(), 3);
    assert_eq!(q.sent.borrow().len(), 2);
    // After a crash between mark and send, --include-replayed sends again.
    let again = run_replay(&tables, &q, Some("a.csv"), true, false).expect("replay");
    assert_eq!(again.sent, 2);
}

#[test]
fn a_failed_send_unmarks_its_rows_and_reports_failure() {
    let tables = replay_fixture();
    let q = FakeQueues {
        fail_sends: true,
        ..Default::default()
    };
    let report = run_replay(&tables, &q, None, false, false).expect("replay");
    assert_eq!(report.failed, 3);
    assert_eq!(report.sent, 0);
    assert!(rows(&tables).iter().all(|r| r.replayed_at.is_none()));
}

#[test]
fn a_denied_mark_stops_the_replay_before_sending_and_leaves_no_row_marked() {
    let tables = FakeTables {
        broken_updates: vec!["w2".into()],
        ..replay_fixture()
    };
    let q = FakeQueues::default();
    let err = run_replay(&tables, &q, Some("a.csv"), false, false).expect_err("denied");
    assert_eq!(err.exit_code(), 5);
    assert!(q.sent.borrow().is_empty());
    assert!(rows(&tables).iter().all(|r| r.replayed_at.is_none()));
}
