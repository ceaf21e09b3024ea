//! The processor's edges implemented with the AWS SDK clients: GetObject, conditional PutItem,
//! UpdateItem (file status), SendMessageBatch (the traits are in `crate::edges`).

use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_sdk_dynamodb::config::interceptors::InterceptorContext;
use aws_sdk_dynamodb::config::retry::{ClassifyRetry, RetryAction, RetryPartition};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use aws_sdk_s3::operation::get_object::GetObjectError as S3GetObjectError;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use txn_core::ObjectVersion;

use crate::edges::{
    ByteRange, FetchedObject, GetObjectError, Item, ItemUpdate, MessageQueue, ObjectStore,
    PutItemError, SendBatchError, SendBatchReport, StatusTable, TransactionTable, UpdateItemError,
};

/// The clients, built once per execution environment.
pub struct Aws {
    s3: aws_sdk_s3::Client,
    /// File status updates: the SDK's standard retries.
    dynamodb: aws_sdk_dynamodb::Client,
    /// The transactions' conditional writes: throttles go to crate::pace, not the SDK (P37).
    transaction_writes: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
}

/// The transaction writes' retry classifier: a PutItem that DynamoDB throttled is not sent
/// again by the SDK but answered at once, so that crate::pace counts every throttle and backs
/// off holding the write's slot (P37). `RetryForbidden` overrides the SDK's own classifiers
/// whatever their order (aws-smithy-runtime-api, `ClassifyRetry::priority`).
#[derive(Debug)]
struct ThrottlesToThePacer;

impl ClassifyRetry for ThrottlesToThePacer {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        use aws_sdk_dynamodb::operation::put_item::PutItemError as SdkPutItemError;
        let code = ctx
            .output_or_error()
            .and_then(Result::err)
            .and_then(|err| err.as_operation_error())
            .and_then(|err| err.downcast_ref::<SdkPutItemError>())
            .and_then(ProvideErrorMetadata::code);
        match code {
            Some(code) if crate::pace::is_throttle(code) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "ThrottlesToThePacer"
    }
}

impl Aws {
    /// Clients configured from the standard environment (region, credentials, endpoints).
    pub async fn from_env() -> Aws {
        let config = lambda_setup::sdk_config().await;
        // With an endpoint override, address buckets by path, as boto3 does for a custom
        // endpoint_url (virtual-host names do not resolve for such endpoints).
        let path_style = std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(path_style)
            .build();
        // Small JSON requests and responses: stalled-stream protection (a throughput monitor on
        // every body) costs CPU on each of the many calls and protects nothing here. It stays
        // on for S3, whose body is the file.
        let dynamodb_config = aws_sdk_dynamodb::config::Builder::from(&config)
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .build();
        // The transactions' conditional PutItems (P37) on a client of their own: a throttle
        // goes to crate::pace at once (ThrottlesToThePacer), whose limit sees every throttle
        // and whose backoff starts at 50 ms; the SDK's standard retries start at 1 s and kept
        // a throttled partition idle between attempts (docs/benchmarks.md). Other retryable
        // errors keep the SDK's retries. Its own retry partition: the file status updates keep
        // a retry quota of their own.
        let writes_config = dynamodb_config
            .to_builder()
            .retry_classifier(ThrottlesToThePacer)
            .retry_partition(RetryPartition::new("dynamodb-transaction-writes"))
            .build();
        let sqs_config = aws_sdk_sqs::config::Builder::from(&config)
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .build();
        Aws {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb_config),
            transaction_writes: aws_sdk_dynamodb::Client::from_conf(writes_config),
            sqs: aws_sdk_sqs::Client::from_conf(sqs_config),
        }
    }
}

impl ObjectStore for Aws {
    /// GetObject; [`GetObjectError::NotFound`] when the object (version) does not exist (P16).
    async fn get_object(
        &self,
        object: &ObjectVersion,
        byte_range: Option<ByteRange>,
    ) -> Result<FetchedObject, GetObjectError> {
        let version_id = object.version();
        let mut request = self.s3.get_object().bucket(&object.bucket).key(&object.key);
        if let Some(v) = version_id {
            request = request.version_id(v);
        }
        if let Some((first, end)) = byte_range {
            // The Range header names the last byte, inclusive ("bytes=first-last", RFC 9110),
            // https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html#API_GetObject_RequestSyntax
            let last = end.saturating_sub(1).max(first);
            request = request.range(format!("bytes={first}-{last}"));
        }
        match request.send().await {
            Ok(out) => Ok(FetchedObject {
                version_id: out.version_id().map(str::to_owned),
                last_modified_ms: out
                    .last_modified()
                    .map(|t| t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000)),
                content_length: u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0),
                body: out.body,
            }),
            Err(err) => {
                let status = err.raw_response().map(|r| r.status().as_u16());
                let code = err
                    .as_service_error()
                    .and_then(|e| e.code())
                    .map(str::to_owned);
                let not_found =
                    matches!(err.as_service_error(), Some(S3GetObjectError::NoSuchKey(_)))
                        || matches!(
                            code.as_deref(),
                            Some("NoSuchKey" | "NoSuchVersion" | "NotFound" | "404")
                        )
                        || status == Some(404)
                        || (version_id.is_some() && code.as_deref() == Some("InvalidArgument"));
                if not_found {
                    Err(GetObjectError::NotFound)
                } else {
                    Err(GetObjectError::Failed {
                        code: code.unwrap_or_else(|| error_kind(&err)),
                    })
                }
            }
        }
    }
}

impl TransactionTable for Aws {
    /// PutItem with `attribute_not_exists(transaction_id)`; on a failed condition the stored
    /// item comes back (ReturnValuesOnConditionCheckFailure=ALL_OLD) for its record_hash.
    async fn put_new_item(&self, table: &str, item: Item) -> Result<(), PutItemError> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError as SdkPutItemError;
        let result = self
            .transaction_writes
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(transaction_id)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        match err.as_service_error() {
            Some(SdkPutItemError::ConditionalCheckFailedException(e)) => {
                Err(PutItemError::ConditionFailed {
                    stored_hash: e
                        .item()
                        .and_then(|old| old.get("record_hash"))
                        .and_then(|v| v.as_s().ok())
                        .cloned(),
                })
            }
            Some(service) => Err(PutItemError::Failed {
                code: service.code().unwrap_or("ClientError").to_owned(),
                message: service.message().unwrap_or("").to_owned(),
            }),
            None => Err(PutItemError::Failed {
                code: error_kind(&err),
                message: err.to_string(),
            }),
        }
    }
}

impl StatusTable for Aws {
    /// UpdateItem with its expressions; a failed condition is typed, with the old item when
    /// asked for (ReturnValuesOnConditionCheckFailure=ALL_OLD).
    async fn update_item(&self, table: &str, update: ItemUpdate) -> Result<(), UpdateItemError> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError as SdkUpdateItemError;
        let mut request = self
            .dynamodb
            .update_item()
            .table_name(table)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_condition_expression(update.condition_expression)
            // DynamoDB refuses an empty map: no names, no member.
            .set_expression_attribute_names((!update.names.is_empty()).then_some(update.names))
            .set_expression_attribute_values(Some(update.values));
        if update.old_item_on_condition_failure {
            request = request.return_values_on_condition_check_failure(
                ReturnValuesOnConditionCheckFailure::AllOld,
            );
        }
        let err = match request.send().await {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        match err.as_service_error() {
            Some(SdkUpdateItemError::ConditionalCheckFailedException(e)) => {
                Err(UpdateItemError::ConditionFailed {
                    old: e.item().cloned(),
                })
            }
            Some(service) => Err(UpdateItemError::Failed {
                code: service.code().unwrap_or("ClientError").to_owned(),
            }),
            None => Err(UpdateItemError::Failed {
                code: error_kind(&err),
            }),
        }
    }
}

impl MessageQueue for Aws {
    async fn send_message_batch(
        &self,
        queue_url: &str,
        entries: &[(String, &str)],
    ) -> Result<SendBatchReport, SendBatchError> {
        let entries: Vec<SendMessageBatchRequestEntry> = entries
            .iter()
            .filter_map(|(id, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(id)
                    .message_body(*body)
                    .build()
                    .ok()
            })
            .collect();
        match self
            .sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(response) => Ok(SendBatchReport {
                successful: response
                    .successful()
                    .iter()
                    .map(|s| s.id().to_owned())
                    .collect(),
                failed: response
                    .failed()
                    .iter()
                    .map(|f| (f.id().to_owned(), f.code().to_owned()))
                    .collect(),
            }),
            Err(err) => Err(SendBatchError {
                code: err
                    .as_service_error()
                    .and_then(|e| e.code())
                    .map_or_else(|| error_kind(&err), str::to_owned),
            }),
        }
    }
}

/// A short name for an SDK error that carries no service error code (like botocore's
/// exception class names).
fn error_kind<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String {
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::ConstructionFailure(_) => "ConstructionFailure",
        SdkError::TimeoutError(_) => "TimeoutError",
        SdkError::DispatchFailure(_) => "DispatchFailure",
        SdkError::ResponseError(_) => "ResponseError",
        SdkError::ServiceError(_) => "ClientError",
        _ => "SdkError",
    }
    .to_owned()
}
