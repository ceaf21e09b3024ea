//! aws-sdk-rust (as the Rust Lambdas use it) reads the endpoint's throttle as a
//! ThrottlingException and retries it: every attempt reaches the endpoint.

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use std::time::Duration;

mod common;

use common::{http, Running};

fn throttled_total(addr: &str) -> u64 {
    let answer = http(addr, "GET", "/_faithful/stats");
    let body = answer.split("\r\n\r\n").nth(1).expect("body");
    let stats: serde_json::Value = serde_json::from_str(body).expect("stats JSON");
    stats["throttled_total"].as_u64().expect("count")
}

#[tokio::test]
async fn the_rust_sdk_retries_the_throttle() {
    let running = Running::start_with_manual_clock();
    let endpoint = running.endpoint.clone();
    let addr = running.addr().to_string();

    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-central-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(&endpoint)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    client
        .create_table()
        .table_name("hot-table")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .send()
        .await
        .expect("create table");
    // The manual clock stands still: the hot key's partition holds exactly 1,000 writes.
    for n in 0..1_000 {
        client
            .put_item()
            .table_name("hot-table")
            .item("pk", AttributeValue::S("hot".into()))
            .item("n", AttributeValue::N(n.to_string()))
            .send()
            .await
            .expect("admitted put");
    }
    let err = client
        .put_item()
        .table_name("hot-table")
        .item("pk", AttributeValue::S("hot".into()))
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(err.code(), Some("ThrottlingException"));
    assert_eq!(throttled_total(&addr), 3, "three attempts, all throttled");
}
