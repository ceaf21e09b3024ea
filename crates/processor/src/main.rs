//! Transaction processor Lambda: the runtime loop. Builds the SDK clients once per execution
//! environment and hands every event to the library (see lib.rs for what the function does).
//!
//! Logging and the SDK configuration are set up as in the DLQ processor (crates/lambda-setup).

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::Value;
use txn_core::{parse_json, FromEnvironment, JsonValue};

use processor::aws::Aws;
use processor::handlers::handle_event;
use processor::process::{Config, Deadline};

async fn handler(
    aws: Arc<Aws>,
    cfg: Arc<Config>,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Value, lambda_runtime::Error> {
    let (payload, context) = event.into_parts();
    tracing::info!(request_id = %context.request_id, "invocation");
    // Parsed as Python's runtime parses the payload (json.loads), so that both implementations
    // see the same values.
    let event = parse_json(payload.get()).unwrap_or(JsonValue::Null);
    let deadline = Deadline::new(context.deadline, cfg.time_safety_margin_ms);
    let response = handle_event(&*aws, &cfg, &event, &deadline).await;
    Ok(response.inspect_err(|error| {
        // The event is delivered again (Lambda's retries, then the dead-letter target); whether
        // that can help is the operator's first question.
        tracing::error!(%error, retryable = error.retryable(), "invocation failed");
    })?)
}

/// mimalloc instead of glibc's malloc: the SDK allocates a lot per request, and glibc's
/// allocator took about a fifth of the processor's CPU time in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_setup::init_json_logging();
    // Read once per execution environment, before the first event: a missing or invalid
    // variable ends the init with an error that names it.
    let cfg = Arc::new(Config::from_env().inspect_err(|error| {
        tracing::error!(%error, "configuration");
    })?);
    let aws = Arc::new(Aws::from_env().await);
    lambda_runtime::run(service_fn(move |event| {
        handler(Arc::clone(&aws), Arc::clone(&cfg), event)
    }))
    .await
}
