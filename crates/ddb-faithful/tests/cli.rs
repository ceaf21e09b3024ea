//! The binary as a process: bad flags fail with a clear message; a started endpoint reports
//! its address, answers its admin paths and moves its manual clock. (This test also makes
//! `cargo test` build target/<profile>/ddb-faithful, which the Python tests start.)

mod common;

use std::process::Command;

use common::{http, Running, BIN};

#[test]
fn a_bad_latency_flag_is_refused_with_a_reason() {
    let out = Command::new(BIN)
        .args(["--memory", "--latency", "15:4"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("need 0 < median <= p99"), "{stderr}");
}

#[test]
fn a_backend_is_required() {
    let out = Command::new(BIN).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_endpoint_serves_its_admin_paths_and_a_manual_clock() {
    let running = Running::start_with_manual_clock();
    let addr = running.addr();

    assert!(http(addr, "GET", "/_faithful/health").contains(r#"{"ok":true}"#));
    let advanced = http(addr, "POST", "/_faithful/advance?ms=1500");
    assert!(advanced.contains(r#"{"clock_ms":1500}"#), "{advanced}");
    assert!(http(addr, "POST", "/_faithful/advance").starts_with("HTTP/1.1 400"));
    let stats = http(addr, "GET", "/_faithful/stats");
    assert!(stats.contains(r#""throttled_total":0"#), "{stats}");
    drop(running);
}
