//! Large files in ranges (contract/decisions.md P33 to P35): the S3 event's invocation streams
//! a large CSV or JSON object once to find its row- or element-aligned byte ranges, records
//! them in the file status with one UpdateItem, and sends one range message per range to the
//! main queue, whose invocations process the ranges side by side, each with its own cursor and
//! resume. The twin of the ranges section of lib/processor_function.py: same expressions, same
//! messages.

use std::collections::{BTreeSet, HashMap};
use std::io::BufReader;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;
use txn_core::{
    csv_range_bounds, iso_ms, json_range_bounds, json_range_rows, open_csv, open_csv_range,
    plan_ranges, range_message, range_step, ErrorCode, FileError, FileRange, Format, ObjectRef,
    OpenError, SourceInfo,
};

use crate::edges::{Edges, GetObjectError, UpdateItemError};
use crate::error::ProcessError;
use crate::process::{
    finish, open_object, report_file_error, run_rows, Config, Deadline, FileResult, OpenedRows,
};
use crate::rows::{chunk_rows, read_failed, start_csv, Chunk, READ_BUFFER_BYTES};
use crate::status::{status_key, PROCESSING, STATUS_RANGE};
use crate::writes::send_messages;
use crate::{now_ms, PROCESSOR};

/// What the split's UpdateItem found (P34).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SplitOutcome {
    /// This call recorded the split.
    Split,
    /// The same split was recorded before (a re-run, a killed splitter): send its messages again.
    Again,
    /// An unsplit run of this version began before: go on unsplit.
    Unsplit,
    /// Another split was recorded (RANGE_SPLIT_BYTES changed): its own messages carry it.
    Other,
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Record the ranges in the file status, once (P34): cursors.<id> = id for every range but
/// "0", ranges_open = the number of ranges, only while nothing is counted and nothing split.
async fn status_split(
    aws: &impl Edges,
    cfg: &Config,
    source: &SourceInfo,
    ranges: &[FileRange],
) -> Result<SplitOutcome, ProcessError> {
    let Some(table) = cfg.file_status_table.as_deref() else {
        return Ok(SplitOutcome::Split);
    };
    if ranges.len() < 2 {
        return Ok(SplitOutcome::Split); // one range: its cursor is the unsplit file's "0"
    }
    let mut names = HashMap::from([
        ("#state".to_owned(), "state".to_owned()),
        ("#r0".to_owned(), STATUS_RANGE.to_owned()),
    ]);
    let mut values = HashMap::from([
        (
            ":processing".to_owned(),
            AttributeValue::S(PROCESSING.to_owned()),
        ),
        (":now".to_owned(), AttributeValue::S(iso_ms(now_ms()))),
        (
            ":processor".to_owned(),
            AttributeValue::S(PROCESSOR.to_owned()),
        ),
        (":zero".to_owned(), n(0)),
        (":one".to_owned(), n(1)),
        (":ranges".to_owned(), n(ranges.len())),
    ]);
    let mut clauses: Vec<String> = [
        "#state = :processing",
        "last_activity = :now",
        "processor = :processor",
        "ranges_open = :ranges",
    ]
    .map(String::from)
    .into();
    for (index, range) in ranges.iter().enumerate().skip(1) {
        names.insert(format!("#r{index}"), range.line.to_string());
        values.insert(format!(":l{index}"), n(range.line));
        clauses.push(format!("cursors.#r{index} = :l{index}"));
    }
    let update = crate::edges::ItemUpdate {
        key: status_key(&source.object),
        update_expression: format!("SET {}", clauses.join(", ")),
        condition_expression: Some(
            "cursors.#r0 = :zero AND ranges_open = :one AND attribute_not_exists(cursors.#r1)"
                .into(),
        ),
        names,
        values,
        old_item_on_condition_failure: true,
    };
    let old = match aws.update_item(table, update).await {
        Ok(()) => return Ok(SplitOutcome::Split),
        Err(UpdateItemError::ConditionFailed { old }) => old.unwrap_or_default(),
        Err(e @ UpdateItemError::Failed { .. }) => return Err(ProcessError::StatusUpdate(e)),
    };
    let recorded: BTreeSet<String> = old
        .get("cursors")
        .and_then(|cursors| cursors.as_m().ok())
        .map(|cursors| cursors.keys().cloned().collect())
        .unwrap_or_default();
    let planned: BTreeSet<String> = ranges.iter().map(|r| r.line.to_string()).collect();
    Ok(if recorded == planned {
        SplitOutcome::Again
    } else if recorded.iter().all(|id| id == STATUS_RANGE) {
        SplitOutcome::Unsplit
    } else {
        SplitOutcome::Other
    })
}

/// What one read of a large object found (P33).
enum Found {
    /// Its ranges.
    Ranges(Vec<FileRange>),
    /// A file error, for the caller to report.
    FileError(FileError),
    /// A JSON document that is not the simple shape that is split: the unsplit path reads it.
    NotSplit,
}

/// The ranges of a large object, `step` bytes apart, from one read of `body` (P33); it only
/// reads, so a file error goes back to the caller to report.
async fn find_ranges(
    body: ByteStream,
    format: Format,
    step: u64,
    content_length: u64,
) -> Result<Found, ProcessError> {
    let reader = SyncIoBridge::new(body.into_async_read());
    let input = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
    if format == Format::Json {
        let split = tokio::task::spawn_blocking(move || json_range_bounds(input, step))
            .await
            .map_err(|_| ProcessError::ReaderStopped)?
            .map_err(read_failed)?;
        return Ok(match split {
            Some(s) => Found::Ranges(plan_ranges(&s.bounds, s.first_byte, s.end_byte)),
            None => Found::NotSplit,
        });
    }
    let bounds = tokio::task::spawn_blocking(move || csv_range_bounds(input, step))
        .await
        .map_err(|_| ProcessError::ReaderStopped)?;
    match bounds {
        Ok(bounds) => Ok(Found::Ranges(plan_ranges(&bounds, 0, content_length))),
        Err(OpenError::File(error)) => Ok(Found::FileError(error)),
        Err(OpenError::Io(e)) => Err(read_failed(e)),
    }
}

/// The object read again for the unsplit path; `None` when it is gone (reported).
async fn reread(
    aws: &impl Edges,
    cfg: &Config,
    source: &SourceInfo,
    result: &mut FileResult,
) -> Result<Option<ByteStream>, ProcessError> {
    match aws.get_object(&source.object, None).await {
        Ok(opened) => Ok(Some(opened.body)),
        Err(GetObjectError::NotFound) => {
            let error = FileError::new(
                ErrorCode::ObjectNotFound,
                "file: object (version) not found",
            );
            report_file_error(aws, cfg, source, &error, result).await?;
            Ok(None)
        }
        Err(retryable) => Err(retryable.into()),
    }
}

/// Split a large object into ranges and queue them (P33 to P35), reading `body` once.
/// `Ok(None)`: done here (split, or a file error reported); `Ok(Some(body))`: the caller
/// processes it unsplit from this fresh read (an unsplit run of this version began before, or
/// a JSON document is not the simple shape that is split).
pub(crate) async fn split_object(
    aws: &impl Edges,
    cfg: &Config,
    source: &SourceInfo,
    body: ByteStream,
    format: Format,
    content_length: u64,
    result: &mut FileResult,
) -> Result<Option<ByteStream>, ProcessError> {
    let step = range_step(cfg.range_split_bytes, content_length);
    let ranges = match find_ranges(body, format, step, content_length).await? {
        Found::FileError(error) => {
            report_file_error(aws, cfg, source, &error, result).await?;
            return Ok(None);
        }
        Found::NotSplit => return reread(aws, cfg, source, result).await,
        Found::Ranges(ranges) => ranges,
    };
    let outcome = status_split(aws, cfg, source, &ranges).await?;
    let object = &source.object;
    match outcome {
        SplitOutcome::Unsplit => return reread(aws, cfg, source, result).await,
        SplitOutcome::Other => {
            tracing::warn!(
                bucket = %object.bucket,
                key = %object.key,
                version_id = object.version(),
                "file split differently before; its range messages carry it"
            );
            return Ok(None);
        }
        SplitOutcome::Split | SplitOutcome::Again => {}
    }
    let bodies: Vec<String> = ranges
        .iter()
        .map(|r| range_message(object, r, r.line))
        .collect();
    send_messages(aws, &cfg.queue_url, &bodies).await?;
    tracing::info!(
        bucket = %object.bucket,
        key = %object.key,
        version_id = object.version(),
        ranges = ranges.len(),
        again = outcome == SplitOutcome::Again,
        "file split into ranges"
    );
    result.resume_line = Some(0); // nothing processed here: every row is in a queued range
    Ok(None)
}

/// Process one range of a split file from `start_line` on (P35): the header from the object's
/// start, the rows from the range's bytes (ranged GetObjects), lines counted from its id.
pub(crate) async fn process_range(
    aws: &impl Edges,
    cfg: &Config,
    target: &ObjectRef,
    range: &FileRange,
    start_line: u64,
    deadline: &Deadline,
) -> Result<FileResult, ProcessError> {
    let started = Instant::now();
    let mut result = FileResult::of(target);
    let bytes = Some((range.start_byte, range.end_byte));
    let Some((opened, source)) = open_object(aws, cfg, target, bytes, &mut result).await? else {
        return Ok(finish(cfg, result, started));
    };
    let rows = SyncIoBridge::new(opened.body.into_async_read());
    let (tx, rx) = mpsc::channel::<Result<Chunk, ProcessError>>(2);
    let opening = if Format::from_key(&target.object.key) == Some(Format::Json) {
        // The range starts at an element: no header; the elements stream, one at a time.
        let (first_byte, first_index) = (range.start_byte, range.line);
        Ok(tokio::task::spawn_blocking(move || {
            let input = BufReader::with_capacity(READ_BUFFER_BYTES, rows);
            let elements = json_range_rows(input, first_byte, first_index);
            chunk_rows(elements.map(|r| r.map_err(read_failed)), start_line, &tx);
        }))
    } else if range.line == 0 {
        let open = move || open_csv(BufReader::with_capacity(READ_BUFFER_BYTES, rows));
        start_csv(open, start_line, tx).await
    } else {
        // The header is in range 0: read from the object's start until it is parsed.
        let header_bytes = Some((0, range.start_byte));
        let header = match aws.get_object(&source.object, header_bytes).await {
            Ok(header) => SyncIoBridge::new(header.body.into_async_read()),
            Err(GetObjectError::NotFound) => {
                let error = FileError::new(
                    ErrorCode::ObjectNotFound,
                    "file: object (version) not found",
                );
                report_file_error(aws, cfg, &source, &error, &mut result).await?;
                return Ok(finish(cfg, result, started));
            }
            Err(retryable) => return Err(retryable.into()),
        };
        let first_line = range.line;
        let open = move || {
            let input = BufReader::with_capacity(READ_BUFFER_BYTES, rows);
            open_csv_range(BufReader::new(header), input, first_line)
        };
        start_csv(open, start_line, tx).await
    };
    let rows = OpenedRows {
        opening,
        chunks: rx,
        start_line,
    };
    let range = Some(range);
    run_rows(aws, cfg, &source, range, rows, deadline, result, started).await
}

#[cfg(test)]
#[path = "ranges_tests.rs"]
mod tests;
