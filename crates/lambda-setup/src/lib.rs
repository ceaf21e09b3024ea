//! What both Rust Lambdas (crates/processor, crates/dlq-processor) set up once per execution
//! environment, before the first event: JSON log lines and the AWS SDK's shared configuration,
//! so that the two functions log and retry alike.
//!
//! Endpoints come only from the standard AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>
//! variables (read by aws-config).

#![deny(missing_docs)]

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Attempts per AWS call in the standard retry mode: the Python handlers' botocore config
/// (`retries={"mode": "standard", "max_attempts": 5}`).
pub const MAX_ATTEMPTS: u32 = 5;

/// One JSON object per log line, the event's fields at the top level (what CloudWatch Logs
/// Insights reads), INFO and above, no colours.
pub fn init_json_logging() {
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

/// The SDK configuration from the standard environment (region, credentials, endpoints), with
/// [`MAX_ATTEMPTS`] attempts per call. Standard, not adaptive, retries (contract P37): the
/// adaptive mode's rate limiter is shared by every call of a retry partition (a throttled
/// transactions table would slow the file status writes too) and its retry quota still runs dry
/// under sustained throttling; the processor paces its own writes instead (processor::pace).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .load()
        .await
}
