//! What the integration tests share: the ddb-faithful binary started on a free loopback port
//! (stopped when dropped) and plain HTTP/1.1 requests to its admin paths.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_ddb-faithful");

/// A started endpoint: in-memory tables, no latency, a manual clock. Killed on drop.
pub struct Running {
    child: Child,
    /// `http://127.0.0.1:<port>`, from the binary's JSON start line.
    pub endpoint: String,
}

impl Running {
    /// Starts the binary and reads the endpoint from its first stdout line.
    pub fn start_with_manual_clock() -> Self {
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
        // Owned from here on, so that a failed read below still kills the process.
        let mut running = Running {
            child,
            endpoint: String::new(),
        };
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("start line");
        let started: serde_json::Value = serde_json::from_str(&line).expect("JSON start line");
        running.endpoint = started["endpoint"].as_str().expect("endpoint").to_string();
        running
    }

    /// `127.0.0.1:<port>`, for raw TCP connections.
    pub fn addr(&self) -> &str {
        self.endpoint.trim_start_matches("http://")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request with an empty body; the whole answer (status line, headers, body) as text.
pub fn http(addr: &str, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}
