//! A DynamoDB endpoint that behaves like AWS under load: per-request latency, per-partition
//! capacity, the on-demand table ceiling, GSI back-pressure, and throttles answered exactly
//! as DynamoDB answers them. Used by the benchmarks and the end-to-end tests.
//!
//! # What it models (each number cites its AWS page where it is defined, in [`model`] and
//! [`capacity`])
//! - Item size and capacity units: 1 WRU per started KB, 1 RRU per started 4 KB (half when
//!   eventually consistent), 2 WRU per KB in a transaction.
//! - Partitions chosen by a hash of the partition key, each a token bucket of 1,000 write units
//!   or 3,000 read units per second (a linear mix).
//! - A new on-demand table (and each GSI) serves 4,000 write / 12,000 read units per second,
//!   up to twice its previous peak once that peak is 30 minutes old, up to the 40,000 per-table
//!   quota; partitions are added as the ceiling grows and never merge.
//! - Each GSI has its own partitions, keyed by the index's partition key. An index short of
//!   write capacity throttles the base-table write (`IndexWriteKeyRangeThroughputExceeded`,
//!   resource = the index ARN); a PutItem whose condition fails refunds its index charge.
//! - Throttle answer: HTTP 400, `application/x-amz-json-1.0`,
//!   `com.amazon.coral.availability#ThrottlingException`, AWS's message, `ThrottlingReasons`.
//!   boto3 and aws-sdk-rust both classify `ThrottlingException` as a throttling error and retry it.
//! - Latency: log-normal per request (default median 4 ms, p99 15 ms), or none.
//!
//! # Backends
//! - `--upstream URL`: every admitted request is forwarded byte for byte to a DynamoDB API
//!   (the moto server in e2e), so conditional PutItem and every other semantic is the
//!   upstream's own. Table definitions come from the upstream's DescribeTable.
//! - `--memory`: the upstream is [dynoxide](https://crates.io/crates/dynoxide-rs), an SQLite
//!   DynamoDB emulator checked against real AWS by a public conformance suite, served inside
//!   this process on a private loopback port. Needed because moto serves only about 500
//!   PutItem/s (measured, 440-590/s at ~1.8 ms of its CPU per call), below the 1,000-4,000
//!   WRU/s ceilings being modelled: a benchmark against moto would measure moto.
//!
//! # Throughput
//! Measured 2026-11-30 on the 2-core project machine (AMD EPYC) while other builds ran (load
//! average 8-15): `--memory --latency none --threads 1` pinned to one core, `examples/load.rs`
//! on the other (40,000 conditional PutItems with distinct keys, 32 connections, loopback):
//! 2,669-2,948 requests/s wall, 87-99 us of the endpoint's CPU per request (proxy + in-process
//! store + the loopback hop between them), i.e. about 10,000 requests/s per otherwise idle core.
//!
//! # Retries
//! boto3 (`botocore/data/_retry.json`) and aws-sdk-rust (`aws-runtime` `THROTTLING_ERRORS`)
//! both list `ThrottlingException` as a throttling error, so both retry the answer; the
//! tests check both do (boto3: tests/integration/test_ddb_faithful.py; aws-sdk-rust:
//! tests/sdk_retry.rs; three attempts each, all counted by the endpoint).
//!
//! # Not modelled
//! - The old item of a replacing PutItem, UpdateItem or DeleteItem is invisible to a proxy:
//!   writes are charged by the new item's size (UpdateItem/DeleteItem: 1 WRU, no GSI charge).
//!   The pipeline only inserts with `attribute_not_exists`, where this is exact.
//! - Adaptive capacity's split-for-heat beyond the ceiling's partitions, burst capacity
//!   (documented for provisioned mode), and throttling of TransactWriteItems/Batch* (charged,
//!   never throttled).
//! - Scan is charged to the table ceiling only.

pub mod capacity;
mod latency;
pub mod model;
pub mod proxy;
mod replies;
pub mod request;
pub mod schema;
