//! The CLI's errors, each with the exit code it ends the process with (docs/operations.md).

use std::fmt::Debug;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Exit codes: 0 success, 1 an AWS call failed otherwise, 2 usage (clap's own code too),
/// 3 stack outputs missing or unreadable, 4 not found, 5 access denied, 6 replay incomplete.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Outputs(String),
    #[error("{0}")]
    NotFound(String),
    #[error("access denied: {action} on {resource}: {message}")]
    AccessDenied {
        action: String,
        resource: String,
        message: String,
    },
    #[error("{action} on {resource} failed: {code}: {message}")]
    Aws {
        action: String,
        resource: String,
        code: String,
        message: String,
    },
    #[error("{0}")]
    ReplayIncomplete(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Aws { .. } => 1,
            CliError::Usage(_) => 2,
            CliError::Outputs(_) => 3,
            CliError::NotFound(_) => 4,
            CliError::AccessDenied { .. } => 5,
            CliError::ReplayIncomplete(_) => 6,
        }
    }

    /// A stable name for `--json` error output.
    pub fn kind(&self) -> &'static str {
        match self {
            CliError::Aws { .. } => "aws",
            CliError::Usage(_) => "usage",
            CliError::Outputs(_) => "outputs",
            CliError::NotFound(_) => "not_found",
            CliError::AccessDenied { .. } => "access_denied",
            CliError::ReplayIncomplete(_) => "replay_incomplete",
        }
    }
}

/// Whether a service error code means "not allowed": IAM (AccessDenied, AccessDeniedException),
/// KMS through a service (KMSAccessDeniedException), SQS's query-protocol spelling.
pub fn is_access_denied(code: &str) -> bool {
    code.contains("AccessDenied") || code == "UnauthorizedOperation" || code == "AuthorizationError"
}

/// Whether a service error code means the table or queue does not exist.
pub fn is_missing_resource(code: &str) -> bool {
    matches!(
        code,
        "ResourceNotFoundException"
            | "AWS.SimpleQueueService.NonExistentQueue"
            | "QueueDoesNotExist"
    )
}

/// Turns a failed SDK call into a CliError that names the action and the resource.
pub fn from_sdk<E, R>(action: &str, resource: &str, err: SdkError<E, R>) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    let message = err
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
    classify(action, resource, code.as_deref(), message)
}

/// The classification itself, apart from the SDK types, so that it can be tested.
pub fn classify(action: &str, resource: &str, code: Option<&str>, message: String) -> CliError {
    match code {
        Some(c) if is_access_denied(c) => CliError::AccessDenied {
            action: action.to_owned(),
            resource: resource.to_owned(),
            message,
        },
        Some(c) if is_missing_resource(c) => CliError::NotFound(format!(
            "{action}: {resource} does not exist ({message}); is the stack applied, and are the outputs and the region right?"
        )),
        // No code: the call got no answer from the service at all.
        _ => CliError::Aws {
            action: action.to_owned(),
            resource: resource.to_owned(),
            code: code.unwrap_or("no response").to_owned(),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_exit_code_and_says_what_failed() {
        let denied = "access denied: dynamodb:Query on table t: details";
        let missing = "dynamodb:Query: table t does not exist";
        let no_response = "sqs:SendMessage on q failed: no response: details";
        for (action, resource, code, exit_code, text) in [
            (
                "dynamodb:Query",
                "table t",
                Some("AccessDeniedException"),
                5,
                denied,
            ),
            (
                "dynamodb:Query",
                "table t",
                Some("ResourceNotFoundException"),
                4,
                missing,
            ),
            (
                "sqs:GetQueueAttributes",
                "q",
                Some("AWS.SimpleQueueService.NonExistentQueue"),
                4,
                "",
            ),
            (
                "sqs:SendMessage",
                "q",
                Some("ThrottlingException"),
                1,
                "ThrottlingException",
            ),
            ("sqs:SendMessage", "q", None, 1, no_response),
        ] {
            let err = classify(action, resource, code, "details".to_owned());
            assert_eq!(err.exit_code(), exit_code, "{code:?}");
            assert!(err.to_string().contains(text), "{err}");
        }
    }
}
