//! The event paths: an S3 notification, a main-queue batch (retry_record, resume_file, S3
//! events from the dead_letter_config) and any other event (kept through the DLQ).

use aws_lambda_events::event::sqs::SqsBatchResponse;
use serde_json::{json, Value};
use txn_core::{
    ascii_json, is_sqs_event, masked_record, parse_queue_message, record_error_message,
    resume_message, s3_event_refs, sqs_record_parts, transaction_values, JsonValue, ObjectRef,
    QueueWork, SourceInfo, Transaction,
};

use crate::edges::Edges;
use crate::error::ProcessError;
use crate::process::{
    duplicate_conflict, emit_metrics, process_object, Config, Deadline, FileResult, RecordCounts,
};
use crate::status::{status_retry_resolved, RetryResolution};
use crate::writes::{build_item, send_messages, write_items, WriteOutcome};
use crate::{now_ms, PROCESSOR};

/// Process objects in order; a file not started when the clock runs out is deferred (P21).
async fn process_files(
    aws: &impl Edges,
    cfg: &Config,
    targets: &[(ObjectRef, u64)],
    deadline: &Deadline,
    results: &mut Vec<FileResult>,
) -> Result<(), ProcessError> {
    for (target, start_line) in targets {
        if deadline.expired() {
            // A range stays a range (P35).
            let message = resume_message(&target.object, target.range.as_ref(), *start_line);
            send_messages(aws, &cfg.queue_url, &[message]).await?;
            results.push(FileResult {
                resume_line: Some(*start_line),
                ..FileResult::of(target)
            });
            continue;
        }
        results.push(process_object(aws, cfg, target, *start_line, deadline).await?);
    }
    Ok(())
}

/// A direct S3 notification: bad files are results; a transient failure fails the invocation.
pub async fn handle_s3_event(
    aws: &impl Edges,
    cfg: &Config,
    refs: &[ObjectRef],
    deadline: &Deadline,
) -> Result<Value, ProcessError> {
    let targets: Vec<(ObjectRef, u64)> = refs.iter().map(|r| (r.clone(), 0)).collect();
    let mut results = Vec::new();
    process_files(aws, cfg, &targets, deadline, &mut results).await?;
    Ok(json!({"files": results.iter().map(FileResult::to_json).collect::<Vec<_>>()}))
}

struct RetryWork {
    message_id: String,
    transaction: Transaction,
    source: SourceInfo,
    line: u64,
}

/// Write retried records; return the message ids that must be redelivered.
async fn retry_writes(
    aws: &impl Edges,
    cfg: &Config,
    works: &[RetryWork],
    deadline: &Deadline,
) -> Vec<String> {
    if works.is_empty() {
        return Vec::new();
    }
    let timestamp = now_ms();
    let items = works
        .iter()
        .map(|w| {
            build_item(
                &w.transaction,
                &w.source,
                w.line,
                timestamp,
                cfg.status_index_shards,
            )
        })
        .collect();
    let outcomes = write_items(aws, &cfg.table_name, items, deadline).await;
    deadline.batch_done();
    let mut failed = Vec::new();
    let mut counts = RecordCounts::default();
    let mut conflicts = Vec::new();
    let mut resolved = Vec::new();
    for (work, outcome) in works.iter().zip(outcomes) {
        match outcome {
            WriteOutcome::Stored => {
                counts.stored += 1;
                resolved.push((work, RetryResolution::Stored));
            }
            WriteOutcome::Duplicate => {
                counts.duplicates += 1;
                resolved.push((work, RetryResolution::Duplicate));
            }
            WriteOutcome::Conflict => {
                counts.invalid += 1;
                let masked = masked_record(&transaction_values(&work.transaction));
                let body = record_error_message(
                    &duplicate_conflict(),
                    &work.source,
                    work.line,
                    Some(&masked),
                    Some(&work.transaction.transaction_id),
                    timestamp,
                    PROCESSOR,
                );
                conflicts.push((work, body));
            }
            WriteOutcome::Failed { .. } => {
                counts.retried += 1;
                failed.push(work.message_id.clone());
            }
        }
    }
    for (work, body) in conflicts {
        if send_messages(aws, &cfg.dlq_url, &[body]).await.is_err() {
            failed.push(work.message_id.clone());
        } else {
            resolved.push((work, RetryResolution::Conflict));
        }
    }
    for (work, resolution) in resolved {
        // The row leaves retries_pending (P29); not yet pending: the message comes back later.
        let done = status_retry_resolved(aws, cfg, &work.source, work.line, resolution).await;
        if !matches!(done, Ok(true)) {
            failed.push(work.message_id.clone());
        }
    }
    tracing::info!(
        messages = works.len(),
        stored = counts.stored,
        duplicates = counts.duplicates,
        invalid = counts.invalid,
        failed_again = counts.retried,
        "retried records"
    );
    emit_metrics(cfg, &counts.metrics());
    failed
}

/// A main-queue batch: returns batchItemFailures for the messages to redeliver only.
pub async fn handle_sqs_event(
    aws: &impl Edges,
    cfg: &Config,
    records: &[JsonValue],
    deadline: &Deadline,
) -> Value {
    let mut failed: Vec<String> = Vec::new();
    let mut retries = Vec::new();
    let mut files: Vec<(String, Vec<(ObjectRef, u64)>)> = Vec::new();
    let mut unknown: Vec<(String, String)> = Vec::new();
    for record in records {
        let (message_id, body) = sqs_record_parts(record);
        match parse_queue_message(&body) {
            Some(QueueWork::Retry {
                transaction,
                source,
                line,
            }) => retries.push(RetryWork {
                message_id,
                transaction: *transaction,
                source,
                line,
            }),
            Some(QueueWork::Files(targets)) => files.push((message_id, targets)),
            None => unknown.push((message_id, body)),
        }
    }
    for (message_id, body) in unknown {
        match send_messages(aws, &cfg.dlq_url, &[body]).await {
            Ok(()) => tracing::warn!(message_id = %message_id, "unknown message forwarded to DLQ"),
            Err(_) => failed.push(message_id),
        }
    }
    failed.extend(retry_writes(aws, cfg, &retries, deadline).await);
    let mut results = Vec::new();
    for (message_id, targets) in files {
        if let Err(e) = process_files(aws, cfg, &targets, deadline, &mut results).await {
            tracing::error!(
                message_id = %message_id,
                error = %e,
                retryable = e.retryable(),
                "queue message failed"
            );
            failed.push(message_id);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.set_failures(failed);
    serde_json::to_value(response).unwrap_or_else(|_| json!({"batchItemFailures": []}))
}

/// Any event: an SQS batch from the main queue, an S3 notification, or something else, which
/// is kept (UNKNOWN_FORMAT in the errors table) by forwarding it to the DLQ.
pub async fn handle_event(
    aws: &impl Edges,
    cfg: &Config,
    event: &JsonValue,
    deadline: &Deadline,
) -> Result<Value, ProcessError> {
    let result = dispatch(aws, cfg, event, deadline).await;
    log_write_pace(deadline);
    result
}

/// One line per invocation whose writes met throttling (P37): how they yielded.
fn log_write_pace(deadline: &Deadline) {
    let pace = deadline.write_pace();
    if pace.throttled > 0 {
        tracing::warn!(
            throttled = pace.throttled,
            retried = pace.retried,
            gave_up = pace.gave_up,
            lowest_limit = pace.lowest,
            limit = pace.limit,
            "writes yielded to throttling"
        );
    }
}

async fn dispatch(
    aws: &impl Edges,
    cfg: &Config,
    event: &JsonValue,
    deadline: &Deadline,
) -> Result<Value, ProcessError> {
    if is_sqs_event(event) {
        let records = match event.get("Records") {
            Some(JsonValue::Array(records)) => records.as_slice(),
            _ => &[],
        };
        return Ok(handle_sqs_event(aws, cfg, records, deadline).await);
    }
    if let Some(refs) = s3_event_refs(event) {
        for (name, bucket) in &refs.ignored {
            tracing::info!(event_name = %name, bucket = %bucket, "ignored S3 event");
        }
        return handle_s3_event(aws, cfg, &refs.refs, deadline).await;
    }
    let body = ascii_json(event);
    send_messages(aws, &cfg.dlq_url, &[body]).await?;
    tracing::warn!("unknown event forwarded to DLQ");
    Ok(json!({"forwarded": true}))
}
