//! Bounded loopback load generator for measuring the endpoint's own throughput:
//! `load ENDPOINT TABLE TOTAL CONCURRENCY` sends TOTAL PutItem requests with distinct keys over
//! CONCURRENCY keep-alive connections and prints requests/s and the status counts.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=test/20260101/eu-central-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: load ENDPOINT TABLE TOTAL CONCURRENCY");
        std::process::exit(2);
    }
    let endpoint = args[1].clone();
    let table = args[2].clone();
    let (Ok(total), Ok(concurrency)) = (args[3].parse::<u64>(), args[4].parse::<u64>()) else {
        eprintln!("TOTAL and CONCURRENCY must be whole numbers");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let next = Arc::new(AtomicU64::new(0));
        let ok = Arc::new(AtomicU64::new(0));
        let throttled = Arc::new(AtomicU64::new(0));
        let other = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, endpoint, table) = (client.clone(), endpoint.clone(), table.clone());
            let (next, ok, throttled, other) = (next.clone(), ok.clone(), throttled.clone(), other.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    let body = format!(
                        r#"{{"TableName":"{table}","Item":{{"transaction_id":{{"S":"load-{n}"}},"timestamp":{{"N":"{n}"}},"amount":{{"N":"12.50"}},"currency":{{"S":"EUR"}}}},"ConditionExpression":"attribute_not_exists(transaction_id)","ReturnValuesOnConditionCheckFailure":"ALL_OLD"}}"#
                    );
                    let request = Request::post(&endpoint)
                        .header("content-type", "application/x-amz-json-1.0")
                        .header("x-amz-target", "DynamoDB_20120810.PutItem")
                        .header("x-amz-date", "20260101T000000Z")
                        .header("authorization", AUTH)
                        .body(Full::new(Bytes::from(body)))
                        .expect("request");
                    match client.request(request).await {
                        Ok(response) => {
                            let status = response.status();
                            let body = response.into_body().collect().await.map(|b| b.to_bytes());
                            let throttle = body
                                .as_ref()
                                .is_ok_and(|b| b.windows(19).any(|w| w == b"ThrottlingException"));
                            if status.is_success() {
                                ok.fetch_add(1, Ordering::Relaxed);
                            } else if throttle {
                                throttled.fetch_add(1, Ordering::Relaxed);
                            } else {
                                other.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            other.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{{\"requests\":{total},\"seconds\":{seconds:.3},\"requests_per_s\":{:.0},\"ok\":{},\"throttled\":{},\"other\":{}}}",
            total as f64 / seconds,
            ok.load(Ordering::Relaxed),
            throttled.load(Ordering::Relaxed),
            other.load(Ordering::Relaxed)
        );
    });
}
