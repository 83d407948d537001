//! `dag serve` throughput and latency, measured from outside: the release
//! `dag serve` binary in its own process on loopback, serving
//! `obesity@production` from the registry under `DAG_STATE_DIR` (default
//! `.dag`), so run `dag run obesity` (release build, the shipped 300-tree
//! forest) first. Without that model the bench says so and skips.
//!
//! - saturation: 1, 10 and 100 keep-alive HTTP/1.1 connections post
//!   `/predict` back to back (a closed loop, as `wrk` does); prints the
//!   throughput and p50/p95/p99 latency at each level. At 100 connections
//!   the latency is mostly queueing (throughput is flat from 10 up).
//! - paced: 100 connections post `/predict` at a fixed offered rate
//!   (an open loop, as `wrk2 -R` does). A request that cannot be sent on
//!   time because its connection still waits for the previous answer is
//!   timed from when it was due, so a slow answer is not hidden by the
//!   requests it delays (coordinated omission).
//! - batch: `/predict/batch` with 10,000 records per request; rows/s.
//!
//! - machine: before the load, a fixed piece of arithmetic (under 1 ms on
//!   an idle core) is timed over and over for 2 s; how often it took more
//!   than twice its fastest time shows how much the host took the CPU away
//!   during the run — pauses no server can keep out of its tail latency.
//!
//! The client is one thread; the server's runtime gets the machine's
//! cores, which it shares with the client. `cargo bench --bench serve`;
//! `DAG_BENCH_ADDR=127.0.0.1:8080` measures a server that already runs
//! there instead (e.g. `dag daemon --serve`).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Connections, and requests over all of them, per saturation level.
const LEVELS: [(usize, usize); 3] = [(1, 20_000), (10, 50_000), (100, 100_000)];
const SATURATION_TIME_LIMIT: Duration = Duration::from_secs(20);
/// Offered rates (requests/s over 100 connections) for the paced runs;
/// `DAG_BENCH_RATES=1000,5000` picks others.
const RATES: [f64; 3] = [10_000.0, 20_000.0, 30_000.0];
const PACED_CONNECTIONS: usize = 100;
const PACED_DURATION: Duration = Duration::from_secs(10);
const BATCH_RECORDS: usize = 10_000;
const BATCH_ROUNDS: usize = 20;

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

/// Whole `POST /predict` requests, head and body, ready to write.
fn predict_requests() -> Rc<Vec<Vec<u8>>> {
    Rc::new(
        (0..256)
            .map(|i| request("/predict", record(i).to_string().as_bytes()))
            .collect(),
    )
}

fn request(path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// The server process, killed on every path out of the bench.
struct Served {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `dag serve` on a free loopback port and waits for `/ready`;
/// `None` (after saying why) when no verified model gets loaded.
fn serve(state_dir: &std::path::Path) -> Option<Served> {
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?;
    let child = Command::new(env!("CARGO_BIN_EXE_dag"))
        .args(["serve", "--log-sample", "0", "-q", "--addr"])
        .arg(addr.to_string())
        .arg("--state-dir")
        .arg(state_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let served = Served { child, addr };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match dag::client::request(addr, "GET", "/ready", None, None, Duration::from_secs(1)) {
            Ok(response) if response.status == 200 => return Some(served),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    println!(
        "skipped: no verified `obesity@production` under `{}`; run `dag run obesity` first",
        state_dir.display()
    );
    None
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

    /// Writes one whole request (one segment) and reads the answer;
    /// returns the status.
    async fn send(&mut self, request: &[u8]) -> std::io::Result<u16> {
        self.reader.get_mut().write_all(request).await?;
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
            if self.reader.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line == "\r\n" {
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

/// Answered requests' latencies and the number that failed.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    failures: usize,
}

/// Sends `request` and records its latency counted from `since`, or a failure.
async fn timed(connection: &mut Connection, request: &[u8], since: Instant, tally: &mut Tally) {
    match connection.send(request).await {
        Ok(200) => tally.latencies.push(since.elapsed()),
        _ => tally.failures += 1,
    }
}

/// Every connection's tally in one, latencies sorted.
async fn gather(tasks: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
    let mut all = Tally::default();
    for task in tasks {
        match task.await {
            Ok(tally) => {
                all.latencies.extend(tally.latencies);
                all.failures += tally.failures;
            }
            Err(_) => all.failures += 1,
        }
    }
    all.latencies.sort_unstable();
    all
}

fn report(label: &str, tally: Tally, elapsed: Duration) {
    let latencies = &tally.latencies;
    println!(
        "{label}: {} answered in {:.2}s, {:.0} predictions/s, p50 {:?} p95 {:?} p99 {:?} max {:?}, {} failed",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(latencies, 0.50),
        percentile(latencies, 0.95),
        percentile(latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
        tally.failures,
    );
}

async fn saturation(addr: SocketAddr, connections: usize, requests: usize) {
    let bodies = predict_requests();
    let started = Instant::now();
    let per_connection = requests / connections;
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let bodies = Rc::clone(&bodies);
            tokio::task::spawn_local(async move {
                let mut tally = Tally::default();
                let Ok(mut connection) = Connection::open(addr).await else {
                    tally.failures = per_connection;
                    return tally;
                };
                for i in 0..per_connection {
                    if started.elapsed() > SATURATION_TIME_LIMIT {
                        break;
                    }
                    let request = &bodies[(c * 31 + i) % bodies.len()];
                    timed(&mut connection, request, Instant::now(), &mut tally).await;
                }
                tally
            })
        })
        .collect();
    let label = format!("saturation, {connections:>3} connections");
    report(&label, gather(tasks).await, started.elapsed());
}

/// Request `k` of connection `c` is due at `start + (k·connections + c) / rate`.
async fn paced(addr: SocketAddr, rate: f64) {
    let bodies = predict_requests();
    let connections = PACED_CONNECTIONS;
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        match Connection::open(addr).await {
            Ok(connection) => opened.push(connection),
            Err(error) => {
                println!("paced: cannot connect: {error}");
                return;
            }
        }
    }
    let start = Instant::now() + Duration::from_millis(20);
    let due_count = (PACED_DURATION.as_secs_f64() * rate / connections as f64) as usize;
    let tasks: Vec<_> = opened
        .into_iter()
        .enumerate()
        .map(|(c, mut connection)| {
            let bodies = Rc::clone(&bodies);
            tokio::task::spawn_local(async move {
                let mut tally = Tally::default();
                for k in 0..due_count {
                    let due = start + Duration::from_secs_f64((k * connections + c) as f64 / rate);
                    // On time: wait, and time from when the timer let the
                    // request go (its 1 ms grain is the client's, not the
                    // server's). Late: the previous answer held it up, so
                    // time it from when it was due.
                    let sent = if Instant::now() < due {
                        tokio::time::sleep_until(due.into()).await;
                        Instant::now()
                    } else {
                        due
                    };
                    let request = &bodies[(c * 31 + k) % bodies.len()];
                    timed(&mut connection, request, sent, &mut tally).await;
                }
                tally
            })
        })
        .collect();
    let label = format!("paced {rate:>6.0}/s, {connections} connections");
    report(&label, gather(tasks).await, start.elapsed());
}

async fn batch(addr: SocketAddr) {
    let records: Vec<Value> = (0..BATCH_RECORDS).map(record).collect();
    let body = Value::Array(records).to_string().into_bytes();
    let request = request("/predict/batch", &body);
    let Ok(mut connection) = Connection::open(addr).await else {
        println!("batch: cannot connect");
        return;
    };
    let started = Instant::now();
    let mut rows = 0;
    for _ in 0..BATCH_ROUNDS {
        match connection.send(&request).await {
            Ok(200) => rows += BATCH_RECORDS,
            other => println!("batch: request failed: {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    println!(
        "batch: {rows} rows in {BATCH_ROUNDS} requests of {BATCH_RECORDS} ({} bytes each) in {:.2}s: {:.0} rows/s",
        body.len(),
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64()
    );
}

/// Times a fixed piece of arithmetic for [`PROBE_TIME`] and prints how often
/// and how long the machine paused it.
fn probe_machine() {
    const PROBE_TIME: Duration = Duration::from_secs(2);
    let work = || {
        let mut x = 1.0f64;
        for _ in 0..200_000 {
            x = std::hint::black_box(x * 1.000_000_1 + 1e-9);
        }
        x
    };
    let mut times = Vec::new();
    let started = Instant::now();
    while started.elapsed() < PROBE_TIME {
        let chunk = Instant::now();
        std::hint::black_box(work());
        times.push(chunk.elapsed());
    }
    let fastest = times.iter().min().copied().unwrap_or_default();
    let slow: Vec<Duration> = times.iter().copied().filter(|t| *t > fastest * 2).collect();
    let lost: Duration = slow.iter().map(|t| t.saturating_sub(fastest)).sum();
    println!(
        "machine: {} chunks of {fastest:?} of work in {PROBE_TIME:?}; {} took over twice that (longest {:?}); {:.1}% of the time lost to pauses",
        times.len(),
        slow.len(),
        slow.iter().max().copied().unwrap_or_default(),
        100.0 * lost.as_secs_f64() / started.elapsed().as_secs_f64(),
    );
}

fn main() {
    let state_dir =
        std::env::var_os("DAG_STATE_DIR").map_or_else(|| PathBuf::from(".dag"), PathBuf::from);
    let existing = std::env::var("DAG_BENCH_ADDR").ok();
    // Held to the end: dropping it stops the server this bench started.
    let (addr, _served) = match existing.as_deref().map(str::parse::<SocketAddr>) {
        Some(Ok(addr)) => (addr, None),
        Some(Err(error)) => {
            eprintln!("DAG_BENCH_ADDR is not an address: {error}");
            return;
        }
        None => match serve(&state_dir) {
            Some(served) => (served.addr, Some(served)),
            None => return,
        },
    };
    probe_machine();
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("cannot start the client runtime");
        return;
    };
    tokio::task::LocalSet::new().block_on(&runtime, async move {
        for (connections, requests) in LEVELS {
            saturation(addr, connections, requests).await;
        }
        let rates: Vec<f64> = std::env::var("DAG_BENCH_RATES").map_or_else(
            |_| RATES.to_vec(),
            |list| {
                list.split(',')
                    .filter_map(|r| r.trim().parse().ok())
                    .collect()
            },
        );
        for rate in rates {
            paced(addr, rate).await;
        }
        batch(addr).await;
    });
}
