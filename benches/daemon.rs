//! The daemon, measured from outside: the release `dag daemon` in a temp
//! project, driven over its loopback API.
//!
//! - API submit throughput: requests accepted per second, and runs finished
//!   per second, for a 2-task `noop` DAG;
//! - file write → run started: a watched file changes; the time until the
//!   run's first task has started (debounce included), end to end;
//! - cron due → run started: an every-second schedule; the latency the
//!   daemon itself measures (`dag_trigger_latency_seconds{trigger="cron"}`).
//!
//! `cargo bench --bench daemon`

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dag::client::request;
use serde_json::Value;

struct Daemon {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, debounce: &str) -> Daemon {
    let child = Command::new(env!("CARGO_BIN_EXE_dag"))
        .args([
            "daemon",
            "--addr",
            "127.0.0.1:0",
            "--debounce",
            debounce,
            "-q",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon");
    // Owned by the guard at once, so the daemon is killed on every path.
    let mut daemon = Daemon {
        child,
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let info = dir.join(".dag/daemon.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(addr) = std::fs::read_to_string(&info)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["addr"].as_str().and_then(|a| a.parse().ok()))
        {
            daemon.addr = addr;
            return daemon;
        }
        assert!(Instant::now() < deadline, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn call(addr: std::net::SocketAddr, method: &str, path: &str, body: Option<&[u8]>) -> Value {
    let response =
        request(addr, method, path, None, body, Duration::from_secs(30)).expect("request");
    assert!(
        response.status < 300,
        "{} {}",
        response.status,
        response.text()
    );
    response.json().unwrap_or(Value::Null)
}

fn runs(addr: std::net::SocketAddr) -> Vec<Value> {
    call(addr, "GET", "/api/runs?limit=10000", None)
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn submit_throughput(dir: &Path) {
    std::fs::write(
        dir.join("dags/quick.yaml"),
        "name: quick\nschedule: { cron: \"0 0 1 1 *\", max_active_runs: 8, overlap: queue }\ntasks:\n  a:\n    operator: noop\n  b:\n    operator: noop\n    needs: [a]\n",
    )
    .expect("write");
    let daemon = start(dir, "100ms");
    let n = 1000;
    let body = br#"{"dag":"quick"}"#;
    let started = Instant::now();
    for _ in 0..n {
        call(daemon.addr, "POST", "/api/runs", Some(body));
    }
    let accepted = started.elapsed();
    loop {
        let done = runs(daemon.addr)
            .iter()
            .filter(|r| r["finished_at"].is_string())
            .count();
        if done >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let finished = started.elapsed();
    println!(
        "{:<48} {n} requests in {:.0} ms: {:.0} requests/s, {:.0} µs each",
        "API submit (POST /api/runs, one connection)",
        accepted.as_secs_f64() * 1e3,
        n as f64 / accepted.as_secs_f64(),
        accepted.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "{:<48} {n} runs in {:.0} ms: {:.0} runs/s (max_active_runs 8)",
        "submitted runs finished (2 noop tasks each)",
        finished.as_secs_f64() * 1e3,
        n as f64 / finished.as_secs_f64()
    );
}

fn watch_latency(dir: &Path) {
    std::fs::create_dir_all(dir.join("inbox")).expect("inbox");
    std::fs::write(dir.join("inbox/a.csv"), "x\n0\n").expect("write");
    std::fs::write(
        dir.join("dags/ingest.yaml"),
        "name: ingest\nwatch: [\"inbox/*.csv\"]\ntasks:\n  t:\n    operator: noop\n",
    )
    .expect("write");
    let daemon = start(dir, "50ms");
    std::thread::sleep(Duration::from_millis(500));
    let mut samples = Vec::new();
    for i in 1..=20 {
        let before = runs(daemon.addr).len();
        let written = Instant::now();
        std::fs::write(dir.join("inbox/a.csv"), format!("x\n{i}\n")).expect("write");
        loop {
            let status = call(daemon.addr, "GET", "/api/status", None);
            let active = status["active"].as_array().map_or(0, Vec::len);
            if active > 0 || runs(daemon.addr).len() > before {
                samples.push(written.elapsed().as_secs_f64() * 1e3);
                break;
            }
            assert!(written.elapsed() < Duration::from_secs(10), "no run");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "{:<48} p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms (debounce 50 ms, {} writes)",
        "file write → run started",
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        samples[samples.len() - 1],
        samples.len()
    );
}

fn cron_latency(dir: &Path) {
    std::fs::write(
        dir.join("dags/tick.yaml"),
        "name: tick\nschedule: { cron: \"* * * * * *\", overlap: queue }\ntasks:\n  t:\n    operator: noop\n",
    )
    .expect("write");
    let daemon = start(dir, "100ms");
    std::thread::sleep(Duration::from_secs(10));
    let metrics = request(
        daemon.addr,
        "GET",
        "/metrics",
        None,
        None,
        Duration::from_secs(5),
    )
    .expect("metrics")
    .text();
    let value = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let count = value("dag_trigger_latency_seconds_count{trigger=\"cron\"}");
    let sum = value("dag_trigger_latency_seconds_sum{trigger=\"cron\"}");
    let within_5ms = value("dag_trigger_latency_seconds_bucket{trigger=\"cron\",le=\"0.005\"}");
    println!(
        "{:<48} mean {:.2} ms over {count} fires, {within_5ms} of them within 5 ms",
        "cron due → run started (every second, 10 s)",
        sum / count * 1e3
    );
}

fn main() {
    for case in [submit_throughput as fn(&Path), watch_latency, cron_latency] {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("dags")).expect("dags");
        case(dir.path());
    }
}
