//! Transaction processor Lambda (`provided.al2023`, arm64): the Rust twin of
//! lib/processor_function.py, with identical behaviour (design.md sections 2 to 6 and 8 and the
//! decisions P1-P24 at the top of that module).
//!
//! - an S3 notification: every named object is read (CSV streamed row by row on a blocking
//!   thread, JSON whole), validated, and its records written with conditional PutItem (64 in
//!   flight); invalid records go to the DLQ, writes that keep failing to the main queue;
//! - an SQS batch from the main queue: retry_record, resume_file and S3 events (from the
//!   function's dead_letter_config) are handled; the response lists only the failed messages;
//! - before every batch after the first, the remaining time is compared with
//!   TIME_SAFETY_MARGIN_MS and, when short, a resume_file message continues the file later.
//!
//! Endpoints come only from the standard AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> variables
//! (read by aws-config).

mod aws;
mod process;

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use txn_core::events::{is_sqs_event, s3_event_refs};
use txn_core::json::{self as tjson, JsonValue};
use txn_core::pyjson::{Dumps, Numbers};

use crate::aws::Aws;
use crate::process::{handle_s3_event, handle_sqs_event, Config, Deadline};

/// What the `processor` attribute and messages say: `rust/<version>`.
pub const PROCESSOR: &str = concat!("rust/", env!("CARGO_PKG_VERSION"));

/// A failure that a later retry can fix: the invocation (or queue message) must fail.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransientError(pub String);

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn handler(
    aws: Arc<Aws>,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Value, lambda_runtime::Error> {
    let (payload, context) = event.into_parts();
    let cfg = Config::from_env()?;
    tracing::info!(request_id = %context.request_id, "invocation");
    // Parsed as Python's runtime parses the payload (json.loads), so that both implementations
    // see the same values.
    let event = tjson::parse(payload.get()).unwrap_or(JsonValue::Null);
    let deadline = Deadline::new(context.deadline, cfg.time_safety_margin_ms);
    if is_sqs_event(&event) {
        let records = match &event.get("Records") {
            Some(JsonValue::Array(records)) => records.clone(),
            _ => Vec::new(),
        };
        return Ok(handle_sqs_event(&aws, &cfg, &records, &deadline).await);
    }
    if let Some(refs) = s3_event_refs(&event) {
        for (name, bucket) in &refs.ignored {
            tracing::info!(event_name = %name, bucket = %bucket, "ignored S3 event");
        }
        return Ok(handle_s3_event(&aws, &cfg, &refs.refs, &deadline).await?);
    }
    // Not an event this function knows: keep it (UNKNOWN_FORMAT in the errors table).
    let body = Dumps::default_python(Numbers::AsPython).dumps(&event);
    aws.send_messages(&cfg.dlq_url, &[body]).await?;
    tracing::warn!("unknown event forwarded to DLQ");
    Ok(json!({"forwarded": true}))
}

fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();
}

/// mimalloc instead of glibc's malloc: the SDK allocates a lot per request, and glibc's
/// allocator took about a fifth of the processor's CPU time in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let aws = Arc::new(Aws::from_env().await);
    lambda_runtime::run(service_fn(move |event| handler(Arc::clone(&aws), event))).await
}
