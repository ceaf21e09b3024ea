//! Per-file status (decisions P26 to P31): one item per object version in the status table,
//! changed only by conditional UpdateItem, so that every invocation working on a file (first
//! run, resumes, re-runs of a killed invocation) adds each row exactly once. The twin of the
//! status section of lib/processor_function.py: same expressions, byte-identical items.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use txn_core::{iso_ms, truncate_chars, ErrorCode, FileError, ObjectVersion, SourceInfo};

use crate::edges::{Item, ItemUpdate, StatusTable, UpdateItemError};
use crate::error::ProcessError;
use crate::process::Config;
use crate::{now_ms, PROCESSOR};

/// The id of the range that covers the whole file, and of a split file's first range (P28, P33).
pub const STATUS_RANGE: &str = "0";
const RECEIVED: &str = "received";
/// The state of a file being counted (P28), also set by its split (P34).
pub(crate) const PROCESSING: &str = "processing";
const DONE: &str = "done";
const FAILED: &str = "failed";

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The item's key; an unversioned object is version "null", as S3 names it (P26).
pub fn status_key(object: &ObjectVersion) -> Item {
    HashMap::from([
        ("source_key".to_owned(), s(&object.key)),
        (
            "source_version_id".to_owned(),
            s(object.version().unwrap_or("null")),
        ),
    ])
}

/// `state` and `stored` are reserved words in DynamoDB expressions.
fn reserved_names() -> HashMap<String, String> {
    HashMap::from([
        ("#state".to_owned(), "state".to_owned()),
        ("#stored".to_owned(), "stored".to_owned()),
    ])
}

/// The attributes a creating update sets only when the item is new, each with the placeholder
/// of its first value, in the order of the expression (P26).
const FIRST_VALUES: [(&str, &str); 9] = [
    ("first_activity", ":now"),
    ("activity_day", ":day"),
    ("rows_seen", ":zero"),
    ("#stored", ":zero"),
    ("duplicates", ":zero"),
    ("retries_pending", ":zero"),
    ("record_errors", ":no_errors"),
    ("cursors", ":cursors"),
    ("ranges_open", ":one"),
];

/// SET clauses every creating update shares: the item's attributes when it is new (P26).
fn common(now: i64, bucket: &str) -> (Vec<String>, Item) {
    let mut clauses: Vec<String> = [
        "source_bucket = :bucket",
        "processor = :processor",
        "last_activity = :now",
    ]
    .map(String::from)
    .into();
    clauses.extend(
        FIRST_VALUES
            .iter()
            .map(|(name, first)| format!("{name} = if_not_exists({name}, {first})")),
    );
    let stamp = iso_ms(now);
    let day = stamp.get(..10).unwrap_or_default().to_owned();
    let values = HashMap::from([
        (":bucket".to_owned(), s(bucket)),
        (":processor".to_owned(), s(PROCESSOR)),
        (":now".to_owned(), s(&stamp)),
        (":day".to_owned(), AttributeValue::S(day)),
        (":zero".to_owned(), n(0)),
        (":one".to_owned(), n(1)),
        (":no_errors".to_owned(), AttributeValue::M(HashMap::new())),
        (
            ":cursors".to_owned(),
            AttributeValue::M(HashMap::from([(STATUS_RANGE.to_owned(), n(0))])),
        ),
    ]);
    (clauses, values)
}

/// A creating update of `source`'s item: SET `clauses` (those of `common` and the caller's).
fn creating_update(source: &SourceInfo, clauses: &[String], values: Item) -> ItemUpdate {
    ItemUpdate {
        key: status_key(&source.object),
        update_expression: format!("SET {}", clauses.join(", ")),
        names: reserved_names(),
        values,
        ..ItemUpdate::default()
    }
}

/// One UpdateItem; `Ok(false)` when its condition failed (the update was made before: P29).
async fn update(
    table: &impl StatusTable,
    cfg: &Config,
    update: ItemUpdate,
) -> Result<bool, ProcessError> {
    let Some(name) = cfg.file_status_table.as_deref() else {
        return Ok(true);
    };
    match table.update_item(name, update).await {
        Ok(()) => Ok(true),
        Err(UpdateItemError::ConditionFailed { .. }) => Ok(false),
        Err(e @ UpdateItemError::Failed { .. }) => Err(ProcessError::StatusUpdate(e)),
    }
}

/// The object was taken: create the item as "received", or touch it (P27).
pub async fn status_open(
    table: &impl StatusTable,
    cfg: &Config,
    source: &SourceInfo,
) -> Result<(), ProcessError> {
    let (mut clauses, mut values) = common(now_ms(), &source.object.bucket);
    clauses.push("#state = if_not_exists(#state, :received)".to_owned());
    values.insert(":received".to_owned(), s(RECEIVED));
    update(table, cfg, creating_update(source, &clauses, values))
        .await
        .map(|_| ())
}

/// A file error: state "failed" with file_error, unless the version is done already (P30).
pub async fn status_failed(
    table: &impl StatusTable,
    cfg: &Config,
    source: &SourceInfo,
    error: &FileError,
) -> Result<(), ProcessError> {
    let (mut clauses, mut values) = common(now_ms(), &source.object.bucket);
    clauses.push("#state = :failed".to_owned());
    clauses.push("file_error = :file_error".to_owned());
    values.insert(":failed".to_owned(), s(FAILED));
    values.insert(":done".to_owned(), s(DONE));
    values.insert(
        ":file_error".to_owned(),
        AttributeValue::M(HashMap::from([
            ("error_code".to_owned(), s(error.code.as_str())),
            (
                "error_message".to_owned(),
                s(truncate_chars(&error.message, 1024)),
            ),
        ])),
    );
    update(
        table,
        cfg,
        ItemUpdate {
            condition_expression: Some("attribute_not_exists(#state) OR #state <> :done".into()),
            ..creating_update(source, &clauses, values)
        },
    )
    .await
    .map(|_| ())
}

/// What one batch adds to its file's status (P28).
#[derive(Debug, Default, Clone)]
pub struct BatchStatus {
    pub rows: u64,
    pub stored: u64,
    pub duplicates: u64,
    /// Record errors by code (sorted, so that placeholders are numbered alike).
    pub record_errors: BTreeMap<&'static str, u64>,
    /// Lines of the rows sent as retry_record.
    pub retry_lines: Vec<u64>,
    /// Lines of its rows that ended here (stored, duplicate, DUPLICATE_CONFLICT): a re-read
    /// resolves those of them still pending from an earlier count (P32).
    pub settled: Vec<(u64, RetryResolution)>,
}

/// Where one batch sits in its range: the cursor it expects and the one it leaves (P28).
#[derive(Debug, Clone, Copy)]
pub struct BatchSpan {
    /// The range's id: the line of its first row, 0 for an unsplit file (P33).
    pub range: u64,
    pub from: u64,
    pub to: u64,
    pub end_of_range: bool,
}

/// Add one batch to the status, once: only while the range's cursor is `span.from` (P28).
/// `Ok(false)`: the batch was counted before (a re-run re-read it, P29).
pub async fn status_batch(
    table: &impl StatusTable,
    cfg: &Config,
    source: &SourceInfo,
    counted: &BatchStatus,
    span: BatchSpan,
) -> Result<bool, ProcessError> {
    let mut names = reserved_names();
    names.insert("#range".to_owned(), span.range.to_string());
    let mut values = HashMap::from([
        (":processing".to_owned(), s(PROCESSING)),
        (":now".to_owned(), s(&iso_ms(now_ms()))),
        (":processor".to_owned(), s(PROCESSOR)),
        (":from".to_owned(), n(span.from)),
        (":to".to_owned(), n(span.to)),
        (":rows".to_owned(), n(counted.rows)),
        (":stored".to_owned(), n(counted.stored)),
        (":duplicates".to_owned(), n(counted.duplicates)),
        (":retries".to_owned(), n(counted.retry_lines.len())),
    ]);
    let mut adds = vec![
        "rows_seen :rows".to_owned(),
        "#stored :stored".to_owned(),
        "duplicates :duplicates".to_owned(),
        "retries_pending :retries".to_owned(),
    ];
    for (index, (code, count)) in counted.record_errors.iter().enumerate() {
        names.insert(format!("#e{index}"), (*code).to_owned());
        values.insert(format!(":e{index}"), n(count));
        adds.push(format!("record_errors.#e{index} :e{index}"));
    }
    if !counted.retry_lines.is_empty() {
        values.insert(
            ":retry_lines".to_owned(),
            AttributeValue::Ns(counted.retry_lines.iter().map(u64::to_string).collect()),
        );
        adds.push("pending_retry_lines :retry_lines".to_owned());
    }
    if span.end_of_range {
        values.insert(":minus_one".to_owned(), n(-1));
        adds.push("ranges_open :minus_one".to_owned());
    }
    let Some(name) = cfg.file_status_table.as_deref() else {
        return Ok(true);
    };
    let request = ItemUpdate {
        key: status_key(&source.object),
        update_expression: format!(
            "SET #state = :processing, last_activity = :now, processor = :processor, \
             cursors.#range = :to ADD {}",
            adds.join(", ")
        ),
        condition_expression: Some("cursors.#range = :from".into()),
        names,
        values,
        old_item_on_condition_failure: true,
    };
    match table.update_item(name, request).await {
        Ok(()) => Ok(true),
        Err(UpdateItemError::ConditionFailed { old }) => {
            status_reread_resolved(table, cfg, source, old.as_ref(), &counted.settled).await?;
            Ok(false)
        }
        Err(e @ UpdateItemError::Failed { .. }) => Err(ProcessError::StatusUpdate(e)),
    }
}

/// A batch counted before was read again (a replay's resume_file, a re-run, an S3 event
/// again): each of its rows that the earlier count left pending (pending_retry_lines of the
/// item as it was, ALL_OLD) and that this re-read stored, found duplicate or DUPLICATE_CONFLICT
/// is resolved as its retry_record would be, once (P29's conditional UpdateItem; P32).
async fn status_reread_resolved(
    table: &impl StatusTable,
    cfg: &Config,
    source: &SourceInfo,
    old: Option<&Item>,
    settled: &[(u64, RetryResolution)],
) -> Result<(), ProcessError> {
    let pending: BTreeSet<u64> = old
        .and_then(|item| item.get("pending_retry_lines"))
        .and_then(|set| set.as_ns().ok())
        .map(|lines| lines.iter().filter_map(|l| l.parse().ok()).collect())
        .unwrap_or_default();
    let mut settled = settled.to_vec();
    settled.sort_by_key(|(line, _)| *line);
    for (line, resolution) in settled {
        if pending.contains(&line) {
            // A concurrent retry_record of the same line may win: contains() lets one move it.
            status_retry_resolved(table, cfg, source, line, resolution).await?;
        }
    }
    Ok(())
}

/// "done" once every range reached its end and no retry is pending (P28); idempotent.
pub async fn status_finish(
    table: &impl StatusTable,
    cfg: &Config,
    object: &ObjectVersion,
) -> Result<(), ProcessError> {
    update(
        table,
        cfg,
        ItemUpdate {
            key: status_key(object),
            update_expression: "SET #state = :done, last_activity = :now".into(),
            condition_expression: Some(
                "#state = :processing AND ranges_open = :zero AND retries_pending = :zero".into(),
            ),
            names: HashMap::from([("#state".to_owned(), "state".to_owned())]),
            values: HashMap::from([
                (":done".to_owned(), s(DONE)),
                (":processing".to_owned(), s(PROCESSING)),
                (":now".to_owned(), s(&iso_ms(now_ms()))),
                (":zero".to_owned(), n(0)),
            ]),
            ..ItemUpdate::default()
        },
    )
    .await
    .map(|_| ())
}

/// The cursor of the range holding `line` (ranges are keyed by their first line: P28).
fn range_cursor(item: &Item, line: u64) -> Option<u64> {
    let cursors = item.get("cursors")?.as_m().ok()?;
    let start = cursors
        .keys()
        .filter_map(|k| {
            k.parse::<u64>()
                .ok()
                .filter(|_| k.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|start| *start <= line)
        .max()?;
    cursors.get(&start.to_string())?.as_n().ok()?.parse().ok()
}

/// How a pending retry_record ended on the retry path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryResolution {
    Stored,
    Duplicate,
    Conflict,
}

/// A pending retry_record ended: move its row from retries_pending to its outcome, once (P29).
/// `Ok(false)`: its batch is not counted yet, so the message must come back later.
pub async fn status_retry_resolved(
    table: &impl StatusTable,
    cfg: &Config,
    source: &SourceInfo,
    line: u64,
    resolution: RetryResolution,
) -> Result<bool, ProcessError> {
    let Some(name) = cfg.file_status_table.as_deref() else {
        return Ok(true);
    };
    // Only the names the expression uses (DynamoDB refuses unused ones).
    let mut names = HashMap::new();
    let counter = match resolution {
        RetryResolution::Stored => {
            names.insert("#stored".to_owned(), "stored".to_owned());
            "#stored"
        }
        RetryResolution::Duplicate => "duplicates",
        RetryResolution::Conflict => {
            names.insert(
                "#code".to_owned(),
                ErrorCode::DuplicateConflict.as_str().to_owned(),
            );
            "record_errors.#code"
        }
    };
    let request = ItemUpdate {
        key: status_key(&source.object),
        update_expression: format!(
            "SET last_activity = :now, processor = :processor ADD retries_pending :minus_one, \
             {counter} :one DELETE pending_retry_lines :line_set"
        ),
        condition_expression: Some("contains(pending_retry_lines, :line)".into()),
        names,
        values: HashMap::from([
            (":now".to_owned(), s(&iso_ms(now_ms()))),
            (":processor".to_owned(), s(PROCESSOR)),
            (":minus_one".to_owned(), n(-1)),
            (":one".to_owned(), n(1)),
            (":line".to_owned(), n(line)),
            (
                ":line_set".to_owned(),
                AttributeValue::Ns(vec![line.to_string()]),
            ),
        ]),
        old_item_on_condition_failure: true,
    };
    match table.update_item(name, request).await {
        Ok(()) => {}
        Err(UpdateItemError::ConditionFailed { old }) => {
            // Not pending: resolved before, or never pending (a re-run stored it), once the
            // batch holding the line is counted; before that, its batch update is yet to come.
            let cursor = old.as_ref().and_then(|item| range_cursor(item, line));
            return Ok(cursor.is_none_or(|c| c > line));
        }
        Err(e @ UpdateItemError::Failed { .. }) => return Err(ProcessError::StatusUpdate(e)),
    }
    status_finish(table, cfg, &source.object).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_cursor_picks_the_range_of_the_line() {
        let cursors = HashMap::from([("0".to_owned(), n(1001)), ("5000".to_owned(), n(5002))]);
        let item = HashMap::from([("cursors".to_owned(), AttributeValue::M(cursors))]);
        assert_eq!(range_cursor(&item, 7), Some(1001));
        assert_eq!(range_cursor(&item, 5001), Some(5002));
        assert_eq!(range_cursor(&HashMap::new(), 7), None);
    }

    #[test]
    fn unversioned_key_is_null() {
        let key = status_key(&ObjectVersion::new("b", "in/a.csv", None));
        assert_eq!(key.get("source_version_id"), Some(&s("null")));
    }
}
