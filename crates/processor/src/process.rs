//! File processing: configuration, the invocation's deadline, a file's batches of rows (read by
//! `crate::rows`), writing and reporting each batch; a large file goes out in ranges
//! (`crate::ranges`). The event paths are in `crate::handlers`.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use txn_core::{
    file_error_message, json_rows, open_csv, parse_json_document, range_step, record_error_message,
    resume_message, retry_record_message, ErrorCode, FileError, FileRange, Format, ObjectRef,
    ObjectVersion, RecordError, Row, SourceInfo, Transaction,
};

use crate::edges::{Edges, FetchedObject, GetObjectError};
use crate::error::ProcessError;
use crate::pace::{PaceState, WriteBackoff, WriteLimiter};
use crate::ranges::{process_range, split_object};
use crate::rows::{chunk_rows, read_failed, start_csv, Chunk, Opening, READ_BUFFER_BYTES};
use crate::status::{
    status_batch, status_failed, status_finish, status_open, BatchSpan, BatchStatus,
    RetryResolution,
};
use crate::writes::{build_item, send_messages, write_items, WriteOutcome, WRITES_IN_FLIGHT};
use crate::{now_ms, PROCESSOR};

/// Rows per batch (validated, written and reported together).
pub const BATCH_ROWS: usize = 1000;

/// The function's configuration, read from its environment once, in `main`.
pub use txn_core::ProcessorConfig as Config;

/// The invocation's clock: it may stop work only after at least one batch was finished. It
/// also paces the invocation's writes (P37): their limit in flight and a throttled write's
/// backoff, which may not wait into the margin.
pub struct Deadline {
    deadline_ms: i64,
    margin_ms: i64,
    batches_done: AtomicU32,
    pub(crate) writes: WriteLimiter,
    pub(crate) backoff: WriteBackoff,
}

impl Deadline {
    pub fn new(deadline_ms: u64, margin_ms: i64) -> Deadline {
        Deadline {
            deadline_ms: i64::try_from(deadline_ms).unwrap_or(i64::MAX),
            margin_ms,
            batches_done: AtomicU32::new(0),
            writes: WriteLimiter::new(WRITES_IN_FLIGHT),
            backoff: WriteBackoff::default(),
        }
    }

    /// Another backoff for throttled writes (tests wait less).
    #[must_use]
    pub fn with_backoff(mut self, backoff: WriteBackoff) -> Deadline {
        self.backoff = backoff;
        self
    }

    /// Whether a throttled write may wait `wait_ms` and still end before the margin (P37).
    pub fn can_wait(&self, wait_ms: f64) -> bool {
        (self.remaining_ms() as f64) - wait_ms > self.margin_ms as f64
    }

    /// What the write limiter holds and counted.
    pub fn write_pace(&self) -> PaceState {
        self.writes.state()
    }

    pub fn batch_done(&self) {
        self.batches_done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn remaining_ms(&self) -> i64 {
        (self.deadline_ms - now_ms()).max(0)
    }

    pub fn expired(&self) -> bool {
        self.batches_done.load(Ordering::Relaxed) > 0 && self.remaining_ms() < self.margin_ms
    }
}

/// What became of records (of a file, a batch or a batch of retries): stored, already stored,
/// invalid (DUPLICATE_CONFLICT included), or sent to be retried.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecordCounts {
    pub stored: u64,
    pub duplicates: u64,
    pub invalid: u64,
    pub retried: u64,
}

impl std::ops::AddAssign for RecordCounts {
    fn add_assign(&mut self, other: RecordCounts) {
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        self.invalid += other.invalid;
        self.retried += other.retried;
    }
}

impl RecordCounts {
    /// The record counts every invocation reports, as `emit_metrics` values.
    pub(crate) fn metrics(&self) -> [(&'static str, i64, &'static str); 4] {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        [
            ("RecordsProcessed", n(self.stored), "Count"),
            ("RecordsInvalid", n(self.invalid), "Count"),
            ("RecordsDuplicate", n(self.duplicates), "Count"),
            ("RecordsRetried", n(self.retried), "Count"),
        ]
    }
}

/// What happened to one file.
#[derive(Debug, Default, Clone)]
pub struct FileResult {
    pub object: ObjectVersion,
    pub rows: u64,
    pub counts: RecordCounts,
    pub file_error: Option<ErrorCode>,
    pub resume_line: Option<u64>,
    pub elapsed_ms: i64,
}

impl FileResult {
    /// Nothing done yet to `target` (a whole file or a range of it).
    pub(crate) fn of(target: &ObjectRef) -> Self {
        Self {
            object: target.object.clone(),
            ..Self::default()
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "bucket": self.object.bucket,
            "key": self.object.key,
            "version_id": self.object.version_id,
            "rows": self.rows,
            "stored": self.counts.stored,
            "duplicates": self.counts.duplicates,
            "invalid": self.counts.invalid,
            "retried": self.counts.retried,
            "file_error": self.file_error.map(ErrorCode::as_str),
            "resume_line": self.resume_line,
        })
    }
}

/// What became of the records of one batch.
#[derive(Debug, Default, Clone)]
pub(crate) struct BatchCounts {
    pub(crate) records: RecordCounts,
    /// Record errors by code, for the file status.
    pub(crate) errors_by_code: BTreeMap<&'static str, u64>,
    /// Lines sent as retry_record, for the file status.
    pub(crate) retry_lines: Vec<u64>,
    /// Lines that ended in this batch, for a re-read's resolution of pending lines (P32).
    pub(crate) settled_lines: Vec<(u64, RetryResolution)>,
}

impl BatchCounts {
    fn add_error(&mut self, code: ErrorCode) {
        self.records.invalid += 1;
        *self.errors_by_code.entry(code.as_str()).or_insert(0) += 1;
    }
}

/// One CloudWatch Embedded Metric Format line.
pub fn emit_metrics(cfg: &Config, values: &[(&str, i64, &str)]) {
    println!("{}", cfg.metrics.emf_line(now_ms(), values));
}

/// The error of a record whose key is stored with other content.
pub(crate) fn duplicate_conflict() -> RecordError {
    RecordError {
        code: ErrorCode::DuplicateConflict,
        field: Some("transaction_id".to_owned()),
        message: "transaction_id: already stored with the same timestamp and different content"
            .to_owned(),
    }
}

/// Validate, write and report one batch; all its messages are sent before it returns.
async fn handle_batch(
    aws: &impl Edges,
    cfg: &Config,
    source: &SourceInfo,
    batch: &[Row],
    deadline: &Deadline,
) -> Result<BatchCounts, ProcessError> {
    let mut counts = BatchCounts::default();
    let timestamp = now_ms();
    let mut dlq_messages = Vec::new();
    let mut retry_messages = Vec::new();
    let mut valid: Vec<(&Row, Transaction)> = Vec::with_capacity(batch.len());
    for row in batch {
        match row.validate() {
            Ok(tx) => valid.push((row, tx)),
            Err(error) => {
                counts.add_error(error.code);
                let masked = row.values.as_ref().map(|v| v.masked());
                let hint = row.values.as_ref().and_then(|v| v.transaction_id_hint());
                dlq_messages.push(record_error_message(
                    &error,
                    source,
                    row.line,
                    masked.as_ref(),
                    hint.as_deref(),
                    timestamp,
                    PROCESSOR,
                ));
            }
        }
    }
    let items = valid
        .iter()
        .map(|(row, tx)| build_item(tx, source, row.line, timestamp, cfg.status_index_shards))
        .collect();
    let outcomes = write_items(aws, &cfg.table_name, items, deadline).await;
    for ((row, tx), outcome) in valid.iter().zip(outcomes) {
        match outcome {
            WriteOutcome::Stored => {
                counts.records.stored += 1;
                counts
                    .settled_lines
                    .push((row.line, RetryResolution::Stored));
            }
            WriteOutcome::Duplicate => {
                counts.records.duplicates += 1;
                counts
                    .settled_lines
                    .push((row.line, RetryResolution::Duplicate));
            }
            WriteOutcome::Conflict => {
                counts.add_error(ErrorCode::DuplicateConflict);
                counts
                    .settled_lines
                    .push((row.line, RetryResolution::Conflict));
                let masked = row.values.as_ref().map(|v| v.masked());
                dlq_messages.push(record_error_message(
                    &duplicate_conflict(),
                    source,
                    row.line,
                    masked.as_ref(),
                    Some(&tx.transaction_id),
                    timestamp,
                    PROCESSOR,
                ));
            }
            WriteOutcome::Failed { code, message } => {
                counts.records.retried += 1;
                counts.retry_lines.push(row.line);
                let body = retry_record_message(
                    tx, source, row.line, &code, &message, timestamp, PROCESSOR,
                )?;
                retry_messages.push(body);
            }
        }
    }
    send_messages(aws, &cfg.dlq_url, &dlq_messages).await?;
    send_messages(aws, &cfg.queue_url, &retry_messages).await?;
    Ok(counts)
}

/// Run the batches of a file, or of one range of it, from `start_line` on; stop with a
/// resume_file message when the clock runs out.
#[allow(clippy::too_many_arguments)] // the file, its range and the run's state, all distinct
pub(crate) async fn run_batches(
    aws: &impl Edges,
    cfg: &Config,
    source: &SourceInfo,
    range: Option<&FileRange>,
    start_line: u64,
    mut chunks: mpsc::Receiver<Result<Chunk, ProcessError>>,
    deadline: &Deadline,
    result: &mut FileResult,
) -> Result<(), ProcessError> {
    // Where this invocation expects the status's cursor (P28).
    let mut cursor = start_line;
    let mut next = chunks.recv().await.transpose()?;
    while let Some(chunk) = next {
        result.rows += chunk.read;
        // Read ahead while this batch is written: the parser thread keeps going meanwhile.
        let following = chunks.recv().await.transpose()?;
        let pending_line = following
            .as_ref()
            .and_then(|c| c.rows.first())
            .map(|r| r.line);
        if !chunk.rows.is_empty() {
            let counts = handle_batch(aws, cfg, source, &chunk.rows, deadline).await?;
            result.counts += counts.records;
            // The row after this batch, or past the last row at the end of the file.
            let last_line = chunk.rows.last().map_or(cursor, |r| r.line + 1);
            let to = pending_line.unwrap_or(last_line);
            let counted = BatchStatus {
                rows: chunk.rows.len() as u64,
                stored: counts.records.stored,
                duplicates: counts.records.duplicates,
                record_errors: counts.errors_by_code,
                retry_lines: counts.retry_lines,
                settled: counts.settled_lines,
            };
            let span = BatchSpan {
                range: range.map_or(0, |r| r.line),
                from: cursor,
                to,
                end_of_range: pending_line.is_none(),
            };
            status_batch(aws, cfg, source, &counted, span).await?;
            cursor = to;
            deadline.batch_done();
        }
        if let Some(line) = pending_line {
            if deadline.expired() {
                let message = resume_message(&source.object, range, line);
                send_messages(aws, &cfg.queue_url, &[message]).await?;
                result.resume_line = Some(line);
                return Ok(());
            }
        }
        next = following;
    }
    Ok(())
}

/// The source of a file error for an object that was not read: the name and version the event
/// or message gave, and the event's time in place of the LastModified it could not tell.
fn unread_source(target: &ObjectRef) -> SourceInfo {
    SourceInfo {
        object: target.object.clone(),
        last_modified: target.event_time,
    }
}

/// Process one object from `start_line` on. File errors are results; transient failures are
/// errors.
pub async fn process_object(
    aws: &impl Edges,
    cfg: &Config,
    target: &ObjectRef,
    start_line: u64,
    deadline: &Deadline,
) -> Result<FileResult, ProcessError> {
    if let Some(range) = &target.range {
        return process_range(aws, cfg, target, range, start_line, deadline).await;
    }
    let started = Instant::now();
    let mut result = FileResult::of(target);
    let unread = unread_source(target);
    let Some(format) = Format::from_key(&target.object.key) else {
        let error = FileError::new(
            ErrorCode::MalformedFile,
            "file: unsupported type, expected a .csv or .json key",
        );
        report_file_error(aws, cfg, &unread, &error, &mut result).await?;
        return Ok(finish(cfg, result, started));
    };
    let Some((opened, source)) = open_object(aws, cfg, target, None, &mut result).await? else {
        return Ok(finish(cfg, result, started));
    };
    status_open(aws, cfg, &source).await?;
    if opened.content_length > cfg.max_file_bytes {
        let error = FileError::new(
            ErrorCode::FileTooLarge,
            format!("file: larger than {} bytes", cfg.max_file_bytes),
        );
        report_file_error(aws, cfg, &source, &error, &mut result).await?;
        return Ok(finish(cfg, result, started));
    }
    let mut body = opened.body;
    if start_line == 0 && range_step(cfg.range_split_bytes, opened.content_length) > 0 {
        // A large file goes out in ranges (P33, P34); `Some`: it is read unsplit after all.
        let length = opened.content_length;
        let split = split_object(aws, cfg, &source, body, format, length, &mut result);
        match split.await? {
            Some(reread) => body = reread,
            None => return Ok(finish(cfg, result, started)),
        }
    }
    let (tx, rx) = mpsc::channel::<Result<Chunk, ProcessError>>(2);
    let opening = match format {
        Format::Csv => {
            let reader = tokio_util::io::SyncIoBridge::new(body.into_async_read());
            let open = move || open_csv(BufReader::with_capacity(READ_BUFFER_BYTES, reader));
            start_csv(open, start_line, tx).await
        }
        Format::Json => {
            // JSON is read whole, bounded by MAX_FILE_BYTES (P14).
            let data = body.collect().await.map_err(read_failed)?.into_bytes();
            let parsed = tokio::task::spawn_blocking(move || parse_json_document(&data))
                .await
                .map_err(ProcessError::ParserFailed)?;
            match parsed {
                Err(e) => Err(Ok(e)),
                Ok(records) => Ok(tokio::task::spawn_blocking(move || {
                    chunk_rows(json_rows(records).map(Ok), start_line, &tx);
                })),
            }
        }
    };
    let rows = OpenedRows {
        opening,
        chunks: rx,
        start_line,
    };
    run_rows(aws, cfg, &source, None, rows, deadline, result, started).await
}

/// A file's or a range's rows as the parser opened them: the parser (or why it could not
/// start) and the channel its batches arrive on, counted from `start_line`.
pub(crate) struct OpenedRows {
    pub(crate) opening: Opening,
    pub(crate) chunks: mpsc::Receiver<Result<Chunk, ProcessError>>,
    pub(crate) start_line: u64,
}

/// What a whole file and a range (P35) do with their rows once opened: a file error from
/// opening is reported; the batches run to the end or the deadline; the parser is joined; a
/// whole file without rows is EMPTY_FILE (not a range: the split made it start at a row); the
/// file status finishes when nothing is left to resume.
#[allow(clippy::too_many_arguments)] // the file, its range and the run's state, all distinct
pub(crate) async fn run_rows(
    aws: &impl Edges,
    cfg: &Config,
    source: &SourceInfo,
    range: Option<&FileRange>,
    rows: OpenedRows,
    deadline: &Deadline,
    mut result: FileResult,
    started: Instant,
) -> Result<FileResult, ProcessError> {
    let parser = match rows.opening {
        Ok(parser) => parser,
        Err(Ok(file_error)) => {
            report_file_error(aws, cfg, source, &file_error, &mut result).await?;
            return Ok(finish(cfg, result, started));
        }
        Err(Err(transient)) => return Err(transient),
    };
    let outcome = run_batches(
        aws,
        cfg,
        source,
        range,
        rows.start_line,
        rows.chunks,
        deadline,
        &mut result,
    )
    .await;
    // Dropping the receiver (inside run_batches) stops the parser at its next batch.
    let _ = parser.await;
    outcome?;
    if result.rows == 0 && range.is_none() {
        let error = FileError::new(ErrorCode::EmptyFile, "file: no rows");
        report_file_error(aws, cfg, source, &error, &mut result).await?;
    } else if result.resume_line.is_none() {
        status_finish(aws, cfg, &source.object).await?;
    }
    Ok(finish(cfg, result, started))
}

/// GetObject for `object` (the byte range `bytes` of it, or all of it), with the source its
/// rows cite: the version read (the event's, else the one S3 answered with). `None` when the
/// object (version) is gone, reported as OBJECT_NOT_FOUND into `result`. Shared by a whole
/// file and a range (P35), which differ only in the bytes they ask for.
pub(crate) async fn open_object(
    aws: &impl Edges,
    cfg: &Config,
    target: &ObjectRef,
    bytes: Option<(u64, u64)>,
    result: &mut FileResult,
) -> Result<Option<(FetchedObject, SourceInfo)>, ProcessError> {
    let opened = match aws.get_object(&target.object, bytes).await {
        Ok(opened) => opened,
        Err(GetObjectError::NotFound) => {
            let unread = unread_source(target);
            let error = FileError::new(
                ErrorCode::ObjectNotFound,
                "file: object (version) not found",
            );
            report_file_error(aws, cfg, &unread, &error, result).await?;
            return Ok(None);
        }
        Err(retryable) => return Err(retryable.into()),
    };
    let mut object = target.object.clone();
    if object.version_id.is_none() {
        object.version_id = opened.version_id.clone().filter(|v| !v.is_empty());
    }
    result.object.clone_from(&object);
    let source = SourceInfo {
        object,
        last_modified: opened.last_modified_ms,
    };
    Ok(Some((opened, source)))
}

pub(crate) async fn report_file_error(
    aws: &impl Edges,
    cfg: &Config,
    source: &SourceInfo,
    error: &FileError,
    result: &mut FileResult,
) -> Result<(), ProcessError> {
    let body = file_error_message(error, source, now_ms(), PROCESSOR);
    send_messages(aws, &cfg.dlq_url, &[body]).await?;
    status_failed(aws, cfg, source, error).await?;
    result.file_error = Some(error.code);
    Ok(())
}

pub(crate) fn finish(cfg: &Config, mut result: FileResult, started: Instant) -> FileResult {
    result.elapsed_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let file_error = result.file_error.map(ErrorCode::as_str);
    let message = if file_error.is_some() {
        "file error"
    } else {
        "file processed"
    };
    macro_rules! file_log {
        ($level:ident) => {
            tracing::$level!(
                bucket = %result.object.bucket,
                key = %result.object.key,
                version_id = result.object.version(),
                rows = result.rows,
                stored = result.counts.stored,
                duplicates = result.counts.duplicates,
                invalid = result.counts.invalid,
                retried = result.counts.retried,
                file_error,
                resume_line = result.resume_line,
                elapsed_ms = result.elapsed_ms,
                "{message}"
            )
        };
    }
    if file_error.is_some() {
        file_log!(warn);
    } else {
        file_log!(info);
    }
    let mut metrics = result.counts.metrics().to_vec();
    metrics.push((
        "FilesFailed",
        i64::from(result.file_error.is_some()),
        "Count",
    ));
    metrics.push(("FileProcessingTime", result.elapsed_ms, "Milliseconds"));
    emit_metrics(cfg, &metrics);
    result
}
