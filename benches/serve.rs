//! `dag serve` throughput and latency: the server in-process on loopback,
//! serving `obesity@production` from the registry under `DAG_STATE_DIR`
//! (default `.dag`), so run `dag run obesity` (release build, the shipped
//! 300-tree forest) first. Without that model the bench says so and skips.
//!
//! - single: 1, 10 and 100 keep-alive HTTP/1.1 connections post `/predict`
//!   in a loop, bounded by a request count and a time limit; prints
//!   throughput and p50/p95/p99 latency at each level, so queueing (latency
//!   growing with connections at flat throughput) shows apart from service
//!   time.
//! - batch: `/predict/batch` with 10,000 records per request; prints rows/s.
//!
//! The client shares the machine (and its cores) with the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dag::serve::{LogConfig, ServeConfig, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Connections, and requests over all of them, per level.
const LEVELS: [(usize, usize); 3] = [(1, 20_000), (10, 50_000), (100, 100_000)];
const SINGLE_TIME_LIMIT: Duration = Duration::from_secs(20);
const BATCH_RECORDS: usize = 10_000;
const BATCH_ROUNDS: usize = 5;

/// A plausible record, varied by `i` within the training ranges.
fn record(i: usize) -> Value {
    json!({
        "Gender": if i.is_multiple_of(2) { "Female" } else { "Male" },
        "Age": 18 + (i % 30), "Height": 1.55 + (i % 30) as f64 * 0.01,
        "Weight": 50 + (i * 7) % 70,
        "family_history_with_overweight": if i.is_multiple_of(3) { "no" } else { "yes" },
        "FAVC": "yes", "FCVC": 2, "NCP": 3, "CAEC": "Sometimes", "SMOKE": "no",
        "CH2O": 2, "SCC": "no", "FAF": (i % 3) as f64, "TUE": 1, "CALC": "Sometimes",
        "MTRANS": "Public_Transportation"
    })
}

struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    /// Sends one POST (head and body in one write, as one segment) and
    /// reads the answer; returns the status.
    async fn post(&mut self, path: &str, body: &[u8]) -> std::io::Result<u16> {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.reader.get_mut().write_all(&request).await?;
        let mut line = String::new();
        self.reader.read_line(&mut line).await?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).await?;
        Ok(status)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

async fn single(addr: SocketAddr, connections: usize, requests: usize) {
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..256)
            .map(|i| record(i).to_string().into_bytes())
            .collect(),
    );
    let started = Instant::now();
    let per_connection = requests / connections;
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let bodies = Arc::clone(&bodies);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_connection);
                let mut failures = 0usize;
                let Ok(mut connection) = Connection::open(addr).await else {
                    return (latencies, per_connection);
                };
                for i in 0..per_connection {
                    if started.elapsed() > SINGLE_TIME_LIMIT {
                        break;
                    }
                    let body = &bodies[(c * 31 + i) % bodies.len()];
                    let sent = Instant::now();
                    match connection.post("/predict", body).await {
                        Ok(200) => latencies.push(sent.elapsed()),
                        _ => failures += 1,
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        if let Ok((l, f)) = task.await {
            latencies.extend(l);
            failures += f;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    println!(
        "single  {} requests over {connections} connections in {:.2}s: {:.0} predictions/s, p50 {:?} p95 {:?} p99 {:?}, {failures} failed",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
    );
}

async fn batch(addr: SocketAddr) {
    let records: Vec<Value> = (0..BATCH_RECORDS).map(record).collect();
    let body = Value::Array(records).to_string().into_bytes();
    let Ok(mut connection) = Connection::open(addr).await else {
        println!("batch   cannot connect");
        return;
    };
    let started = Instant::now();
    let mut rows = 0;
    for _ in 0..BATCH_ROUNDS {
        match connection.post("/predict/batch", &body).await {
            Ok(200) => rows += BATCH_RECORDS,
            other => println!("batch   request failed: {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    println!(
        "batch   {rows} rows in {BATCH_ROUNDS} requests of {BATCH_RECORDS} ({} bytes each) in {:.2}s: {:.0} rows/s",
        body.len(),
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64()
    );
}

fn main() {
    let state_dir =
        std::env::var_os("DAG_STATE_DIR").map_or_else(|| PathBuf::from(".dag"), PathBuf::from);
    let config = ServeConfig {
        state_dir: state_dir.clone(),
        model: "obesity".into(),
        alias: "production".into(),
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        challenger: None,
        log: LogConfig {
            sample: 0.0,
            max_bytes: 0,
            keep: 0,
        },
        token: None,
        poll_interval: Duration::from_millis(250),
    };
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        eprintln!("cannot start the runtime");
        return;
    };
    runtime.block_on(async {
        let server = match Server::bind(config).await {
            Ok(server) => server,
            Err(error) => {
                eprintln!("cannot start the server: {error}");
                return;
            }
        };
        if !server.is_ready() {
            println!(
                "skipped: no verified `obesity@production` under `{}`; run `dag run obesity` first",
                state_dir.display()
            );
            return;
        }
        let Ok(addr) = server.local_addr() else {
            return;
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        for (connections, requests) in LEVELS {
            single(addr, connections, requests).await;
        }
        batch(addr).await;
        let _ = stop.send(());
        let _ = serving.await;
    });
}
