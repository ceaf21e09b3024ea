//! The binary as a process: bad flags fail with a clear message; a started endpoint reports
//! its address, answers its admin paths and moves its manual clock. (This test also makes
//! `cargo test` build target/<profile>/ddb-faithful, which the Python tests start.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ddb-faithful");

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(addr: &str, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

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
    let mut child = Command::new(BIN)
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
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let started: serde_json::Value = serde_json::from_str(&line).expect("JSON start line");
    let endpoint = started["endpoint"].as_str().expect("endpoint").to_string();
    let addr = endpoint.trim_start_matches("http://");

    assert!(http(addr, "GET", "/_faithful/health").contains(r#"{"ok":true}"#));
    let advanced = http(addr, "POST", "/_faithful/advance?ms=1500");
    assert!(advanced.contains(r#"{"clock_ms":1500}"#), "{advanced}");
    assert!(http(addr, "POST", "/_faithful/advance").starts_with("HTTP/1.1 400"));
    let stats = http(addr, "GET", "/_faithful/stats");
    assert!(stats.contains(r#""throttled_total":0"#), "{stats}");
    drop(running);
}
