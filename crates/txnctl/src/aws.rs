//! The edges of `crate::edges` implemented with aws-sdk-rust (DynamoDB, SQS, CloudWatch).
//! Region, credentials and endpoint come from the usual AWS environment and config files
//! (AWS_ENDPOINT_URL points every client at the emulator).

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::edges::{OldestAge, QueueDepth, Queues, Tables};
use crate::error::{from_sdk, is_access_denied, CliError};
use crate::model::{Item, RowKey};
use crate::outputs::StackOutputs;
use crate::replay::ReplayRow;
use aws_sdk_cloudwatch::error::ProvideErrorMetadata;

pub const ACTIVITY_DAY_INDEX: &str = "activity_day-index";
pub const SOURCE_KEY_INDEX: &str = "source_key-index";
pub const TRANSACTION_ID_INDEX: &str = "transaction_id-index";

/// Loads the SDK configuration; the stack's `aws_region` output is the last fallback.
pub async fn sdk_config(outputs: &StackOutputs) -> aws_config::SdkConfig {
    let mut chain = aws_config::meta::region::RegionProviderChain::default_provider();
    if let Some(region) = &outputs.region {
        chain = chain.or_else(aws_config::Region::new(region.clone()));
    }
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(chain)
        .load()
        .await
}

pub struct AwsTables {
    pub client: aws_sdk_dynamodb::Client,
    pub status_table: Option<String>,
    pub errors_table: String,
}

pub struct AwsQueues {
    pub sqs: aws_sdk_sqs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl AwsTables {
    fn status_table(&self) -> Result<&str, CliError> {
        self.status_table.as_deref().ok_or_else(|| {
            CliError::Outputs(
                "output file_status_table_name is missing from the stack outputs".into(),
            )
        })
    }

    /// Every page of one Query.
    async fn query_all(
        &self,
        table: &str,
        index: Option<&str>,
        condition: &str,
        values: &[(&str, &str)],
    ) -> Result<Vec<Item>, CliError> {
        let resource = match index {
            Some(i) => format!("index {i} of table {table}"),
            None => format!("table {table}"),
        };
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression(condition)
                .set_exclusive_start_key(start.take());
            for (name, value) in values {
                request = request
                    .expression_attribute_values(*name, AttributeValue::S((*value).to_owned()));
            }
            let page = request
                .send()
                .await
                .map_err(|e| from_sdk("dynamodb:Query", &resource, e))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(items),
            }
        }
    }

    /// Every errors row whose `attribute`, the partition key of `index`, is `value`.
    async fn errors_where(
        &self,
        index: &str,
        attribute: &str,
        value: &str,
    ) -> Result<Vec<Item>, CliError> {
        let condition = format!("{attribute} = :v");
        self.query_all(
            &self.errors_table,
            Some(index),
            &condition,
            &[(":v", value)],
        )
        .await
    }

    fn key_of(row: &RowKey) -> Item {
        [
            (
                "error_id".to_owned(),
                AttributeValue::S(row.error_id.clone()),
            ),
            ("timestamp".to_owned(), row.timestamp.clone()),
        ]
        .into()
    }
}

impl Tables for AwsTables {
    async fn file_versions(&self, key: &str) -> Result<Vec<Item>, CliError> {
        let table = self.status_table()?;
        self.query_all(table, None, "source_key = :k", &[(":k", key)])
            .await
    }

    async fn files_on_day(&self, day: &str, since: &str) -> Result<Vec<Item>, CliError> {
        let table = self.status_table()?;
        self.query_all(
            table,
            Some(ACTIVITY_DAY_INDEX),
            "activity_day = :d AND first_activity >= :s",
            &[(":d", day), (":s", since)],
        )
        .await
    }

    async fn errors_of_file(&self, key: &str) -> Result<Vec<Item>, CliError> {
        self.errors_where(SOURCE_KEY_INDEX, "source_key", key).await
    }

    async fn errors_of_transaction(&self, id: &str) -> Result<Vec<Item>, CliError> {
        self.errors_where(TRANSACTION_ID_INDEX, "transaction_id", id)
            .await
    }

    async fn retryable_errors_page(
        &self,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), CliError> {
        let page = self
            .client
            .scan()
            .table_name(&self.errors_table)
            .filter_expression("retryable = :t")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| from_sdk("dynamodb:Scan", &format!("table {}", self.errors_table), e))?;
        let next = page.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((page.items.unwrap_or_default(), next))
    }

    async fn mark_replayed(&self, row: &ReplayRow, at: &str) -> Result<bool, CliError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.errors_table)
            .set_key(Some(Self::key_of(&row.key)))
            .update_expression("SET replayed_at = :at")
            .expression_attribute_values(":at", AttributeValue::S(at.to_owned()));
        request = match &row.replayed_at {
            None => request.condition_expression(
                "attribute_exists(error_id) AND attribute_not_exists(replayed_at)",
            ),
            Some(old) => request
                .condition_expression("attribute_exists(error_id) AND replayed_at = :seen")
                .expression_attribute_values(":seen", AttributeValue::S(old.clone())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(from_sdk(
                "dynamodb:UpdateItem",
                &format!("table {}", self.errors_table),
                e,
            )),
        }
    }

    async fn unmark_replayed(&self, row: &RowKey, at: &str) -> Result<(), CliError> {
        self.client
            .update_item()
            .table_name(&self.errors_table)
            .set_key(Some(Self::key_of(row)))
            .update_expression("REMOVE replayed_at")
            .condition_expression("replayed_at = :at")
            .expression_attribute_values(":at", AttributeValue::S(at.to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                from_sdk(
                    "dynamodb:UpdateItem",
                    &format!("table {}", self.errors_table),
                    e,
                )
            })
    }
}

/// A one-line reason for a failed call whose failure is not fatal (the age column): the
/// service's code and message, or what kind of failure it was (an answer that could not be
/// read has no code).
fn short_failure<E, R>(action: &str, err: &aws_sdk_cloudwatch::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata,
{
    use aws_sdk_cloudwatch::error::SdkError;
    match (err.code(), err) {
        (Some(code), _) if is_access_denied(code) => format!("access denied: {action}"),
        (Some(code), _) => format!("{action}: {code}: {}", err.message().unwrap_or("")),
        (None, SdkError::TimeoutError(_)) => format!("{action}: timed out"),
        (None, SdkError::DispatchFailure(_)) => format!("{action}: no connection"),
        (None, _) => format!("{action}: the answer could not be read"),
    }
}

fn count(
    attrs: &std::collections::HashMap<QueueAttributeName, String>,
    name: &QueueAttributeName,
) -> i64 {
    attrs.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

impl Queues for AwsQueues {
    async fn depth(&self, url: &str) -> Result<QueueDepth, CliError> {
        let names = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ];
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| from_sdk("sqs:GetQueueAttributes", url, e))?;
        let attrs = out.attributes.unwrap_or_default();
        Ok(QueueDepth {
            visible: count(&attrs, &names[0]),
            in_flight: count(&attrs, &names[1]),
            delayed: count(&attrs, &names[2]),
        })
    }

    /// The newest one-minute Maximum of AWS/SQS ApproximateAgeOfOldestMessage in the last
    /// 15 minutes. SQS has no attribute for it; CloudWatch gets it once a minute, and only for
    /// a queue that is active.
    /// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
    async fn oldest_age(&self, queue_name: &str) -> OldestAge {
        let now = SystemTime::now();
        let start = now.checked_sub(Duration::from_secs(900)).unwrap_or(now);
        let result = self
            .cloudwatch
            .get_metric_statistics()
            .namespace("AWS/SQS")
            .metric_name("ApproximateAgeOfOldestMessage")
            .dimensions(
                Dimension::builder()
                    .name("QueueName")
                    .value(queue_name)
                    .build(),
            )
            .start_time(DateTime::from(start))
            .end_time(DateTime::from(now))
            .period(60)
            .statistics(Statistic::Maximum)
            .send()
            .await;
        match result {
            Ok(out) => out
                .datapoints
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| Some((p.timestamp?, p.maximum?)))
                .max_by(|a, b| a.0.cmp(&b.0))
                .map(|(_, seconds)| OldestAge::Seconds(seconds))
                .unwrap_or_else(|| {
                    OldestAge::Unknown("no CloudWatch datapoint in the last 15 minutes".into())
                }),
            Err(e) => OldestAge::Unknown(short_failure("cloudwatch:GetMetricStatistics", &e)),
        }
    }

    async fn send(&self, url: &str, body: &str) -> Result<(), CliError> {
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| from_sdk("sqs:SendMessage", url, e))
    }
}
