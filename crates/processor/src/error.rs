//! Why processing stopped short: the invocation (or the queue message) fails and is delivered
//! again. File and record errors are not here: they are results, reported through the DLQ.

use txn_core::MessageTooLarge;

use crate::edges::{GetObjectError, UpdateItemError};

/// A failure that ends the invocation (S3 event) or the queue message (batchItemFailures).
/// The texts are the invocation's error message, the same as the Python handler's
/// TransientError texts; each variant keeps the error it came from as its `source()`.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// GetObject failed for a reason other than a missing object.
    #[error(transparent)]
    GetObject(#[from] GetObjectError),
    /// Messages stayed unsent after every SendMessageBatch attempt; `code` is the last
    /// problem seen.
    #[error("SendMessageBatch left {unsent} message(s) unsent: {code}")]
    Unsent { unsent: usize, code: String },
    /// Reading the object's body failed midway (the stream's or the reader's error).
    #[error("reading the object failed: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The CSV reader thread ended before it read the header.
    #[error("the CSV reader stopped")]
    ReaderStopped,
    /// The JSON parser thread ended without a result (it panicked or was cancelled).
    #[error("JSON parser failed: {0}")]
    ParserFailed(#[source] tokio::task::JoinError),
    /// A retry_record message could not be built.
    #[error(transparent)]
    RetryMessage(#[from] MessageTooLarge),
    /// The file status could not be updated (P26), after the SDK's own retries.
    #[error(transparent)]
    StatusUpdate(UpdateItemError),
}

impl ProcessError {
    /// Whether delivering the same event again can succeed: `false` when the same input will
    /// fail the same way (it then ends, after the queue's maxReceiveCount, in the DLQ).
    pub fn retryable(&self) -> bool {
        match self {
            ProcessError::GetObject(e) => e.retryable(),
            ProcessError::Unsent { .. } | ProcessError::Read(_) | ProcessError::StatusUpdate(_) => {
                true
            }
            ProcessError::ReaderStopped
            | ProcessError::ParserFailed(_)
            | ProcessError::RetryMessage(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_and_retryability() {
        let failed = ProcessError::from(GetObjectError::Failed {
            code: "SlowDown".into(),
        });
        assert_eq!(failed.to_string(), "GetObject failed: SlowDown");
        assert!(failed.retryable());
        assert!(!ProcessError::from(GetObjectError::NotFound).retryable());
        let unsent = ProcessError::Unsent {
            unsent: 2,
            code: "Throttling".into(),
        };
        assert_eq!(
            unsent.to_string(),
            "SendMessageBatch left 2 message(s) unsent: Throttling"
        );
        assert!(unsent.retryable());
        let too_large = ProcessError::from(MessageTooLarge);
        assert_eq!(
            too_large.to_string(),
            "retry_record message over the SQS size limit"
        );
        assert!(!too_large.retryable());
        let read = ProcessError::Read(Box::new(std::io::Error::other("connection reset")));
        assert_eq!(
            read.to_string(),
            "reading the object failed: connection reset"
        );
        assert!(read.retryable());
        assert!(std::error::Error::source(&read).is_some());
        let status = ProcessError::StatusUpdate(UpdateItemError::Failed {
            code: "ProvisionedThroughputExceededException".into(),
        });
        assert_eq!(
            status.to_string(),
            "UpdateItem (file status) failed: ProvisionedThroughputExceededException"
        );
        assert!(status.retryable());
    }
}
