//! A `dag daemon` in the background of a test project, and the ways tests
//! talk to it and wait on it: conditions with deadlines, never sleeps.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::Project;

pub struct Daemon {
    pub child: Child,
    pub addr: String,
    pub log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    pub fn start(project: &Project, extra: &[&str]) -> Self {
        let log = unique(project.path().join("daemon.log"));
        let mut args = vec![
            "daemon",
            "--addr",
            "127.0.0.1:0",
            "--reload-every",
            "1h",
            "--debounce",
            "100ms",
        ];
        args.extend_from_slice(extra);
        let child = project
            .command(&args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("daemon log"))
            .spawn()
            .expect("start the daemon");
        let pid = child.id();
        let info = project.path().join(".dag/daemon.json");
        let addr = wait_for("the daemon to write daemon.json", || {
            let text = std::fs::read_to_string(&info).ok()?;
            let value: Value = serde_json::from_str(&text).ok()?;
            (value["pid"].as_u64() == Some(u64::from(pid)))
                .then(|| value["addr"].as_str().map(String::from))
                .flatten()
        });
        Self { child, addr, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the daemon did not exit; its log:\n{}", self.log());
    }
}

pub fn unique(path: PathBuf) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_file_name(format!("daemon-{n}.log"))
}

pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A raw HTTP request: (status, body).
pub fn http(addr: &str, method: &str, path: &str, body: &[u8], headers: &[&str]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write");
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub fn runs(project: &Project) -> Vec<Value> {
    let (exit, value) = project.json(&["runs", "--json", "--limit", "100"]);
    assert_eq!(exit, 0, "{value}");
    value.as_array().cloned().unwrap_or_default()
}
