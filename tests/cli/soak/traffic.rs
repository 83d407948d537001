//! Traffic for the soak test: `dag serve` as a child process, one record
//! per `POST /predict`, and the records of the landed batch.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::Project;

/// `dag serve` for the soak, stopped when dropped.
pub struct Server {
    child: Child,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_server(project: &Project) -> Server {
    let mut child = project
        .command(&[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--log-sample",
            "1",
            "--poll-ms",
            "50",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dag serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the address");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Server { child, addr }
}

/// `POST /predict` with one record; the status code.
pub fn predict(addr: &str, record: &Value) -> u16 {
    let body = record.to_string();
    let mut stream = TcpStream::connect(addr).expect("connect to dag serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a timeout");
    let head = format!(
        "POST /predict HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(body.as_bytes()).expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

/// The records of the landed batch, without their label.
pub fn batch_records(project: &Project) -> Vec<Value> {
    let text = std::fs::read_to_string(project.path().join("data/incoming/batch.csv"))
        .expect("read the batch");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    lines
        .map(|line| {
            let record: serde_json::Map<String, Value> = header
                .iter()
                .zip(line.split(','))
                .filter(|(name, _)| **name != "NObeyesdad")
                .map(|(name, value)| {
                    let value = value
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map_or_else(|| json!(value), Value::Number);
                    ((*name).to_string(), value)
                })
                .collect();
            Value::Object(record)
        })
        .collect()
}
