//! aws-sdk-rust (as the Rust Lambdas use it) reads the endpoint's throttle as a
//! ThrottlingException and retries it: every attempt reaches the endpoint.

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn throttled_total(addr: &str) -> u64 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let request =
        format!("GET /_faithful/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let body = answer.split("\r\n\r\n").nth(1).expect("body");
    let stats: serde_json::Value = serde_json::from_str(body).expect("stats JSON");
    stats["throttled_total"].as_u64().expect("count")
}

#[tokio::test]
async fn the_rust_sdk_retries_the_throttle() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ddb-faithful"))
        .args([
            "--memory",
            "--latency",
            "none",
            "--clock",
            "manual",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let _running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("start line");
    let started: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    let endpoint = started["endpoint"].as_str().expect("endpoint").to_string();
    let addr = endpoint.trim_start_matches("http://").to_string();

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
