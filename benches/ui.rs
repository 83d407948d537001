//! The web UI, measured from outside: the release `dag ui` on a store that
//! holds 10,000 runs of a 10-task DAG (with a task and an attempt record per
//! task), 500 runs of a drift-checking DAG and one run of a 10,000-task DAG;
//! each page requested over loopback HTTP, as a browser would, timed from
//! request to the last byte of the answer.
//!
//! `cargo bench --bench ui`

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dag::client::request;
use dag_state::{
    AttemptRecord, AttemptStatus, RunRecord, RunStatus, Store, TaskRecord, TaskStatus, Trigger,
    Write,
};
use serde_json::Value;

const RUNS: usize = 10_000;
const TASKS: usize = 10;
const CHECKS: usize = 500;
const WIDE_LEVELS: usize = 100;
const WIDE_PER_LEVEL: usize = 100;
const SAMPLES: usize = 30;

struct Ui {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chain_dag(tasks: usize) -> String {
    let mut text = String::from(
        "name: bench\ndescription: ten noop tasks in a chain\nparams:\n  seed: 1\ntasks:\n",
    );
    for i in 0..tasks {
        text.push_str(&format!("  t{i:02}:\n    operator: noop\n"));
        if i > 0 {
            text.push_str(&format!("    needs: [t{:02}]\n", i - 1));
        }
    }
    text
}

fn wide_dag() -> String {
    let mut text =
        String::from("name: wide\ndescription: 10,000 noop tasks, 100 levels of 100\ntasks:\n");
    for level in 0..WIDE_LEVELS {
        for i in 0..WIDE_PER_LEVEL {
            text.push_str(&format!("  t{level:03}_{i:03}:\n    operator: noop\n"));
            if level > 0 {
                let up = |k: usize| format!("t{:03}_{:03}", level - 1, (i + k) % WIDE_PER_LEVEL);
                text.push_str(&format!("    needs: [{}, {}, {}]\n", up(0), up(1), up(2)));
            }
        }
    }
    text
}

const MONITOR_DAG: &str = "name: monitor\ndescription: drift checks\ntasks:\n  detect_drift:\n    operator: monitor.drift\n    inputs: { reference: a.csv, current: b.csv }\n    outputs: { report: r.json }\n";

fn run_record(run_id: &str, dag: &str, started: i64, seed: usize) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        dag: dag.into(),
        spec_hash: "bench".into(),
        spec_path: None,
        params: BTreeMap::from([("seed".to_string(), Value::from(seed))]),
        trigger: Trigger {
            kind: "cron".into(),
            detail: "0 * * * *".into(),
        },
        status: if seed.is_multiple_of(17) {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        },
        logical_date: String::new(),
        started_at_ms: started,
        finished_at_ms: Some(started + 900),
        resumed_from: None,
        env: None,
    }
}

fn task_writes(
    run_id: &str,
    task_id: &str,
    operator: &str,
    started: i64,
    seed: usize,
) -> [Write; 2] {
    let task = TaskRecord {
        run_id: run_id.into(),
        task_id: task_id.into(),
        operator: operator.into(),
        status: TaskStatus::Succeeded,
        attempts: 1,
        reason: None,
        started_at_ms: Some(started),
        finished_at_ms: Some(started + 80),
        metrics: BTreeMap::from([
            ("accuracy".to_string(), 0.9 + (seed % 10) as f64 / 100.0),
            ("max_js".to_string(), (seed % 7) as f64 / 50.0),
        ]),
        values: BTreeMap::new(),
        cache_key: None,
        fingerprint: None,
        summary: Some("done".into()),
        definition: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
    };
    let attempt = AttemptRecord {
        run_id: run_id.into(),
        task_id: task_id.into(),
        attempt: 1,
        status: AttemptStatus::Succeeded,
        started_at_ms: started,
        finished_at_ms: Some(started + 80),
        exit_code: Some(0),
        error: None,
        log_path: None,
        metrics: BTreeMap::new(),
        placement: None,
    };
    [Write::Task(task), Write::Attempt(attempt)]
}

/// Fills the store; returns (newest bench run, oldest bench run, wide run).
fn fill(state_dir: &Path) -> (String, String, String) {
    let (store, _) = Store::open(&state_dir.join("db")).expect("open the store");
    let base = 1_760_000_000_000i64;
    let mut ids = Vec::with_capacity(RUNS);
    for chunk in 0..RUNS / 500 {
        let mut writes = Vec::new();
        for n in chunk * 500..(chunk + 1) * 500 {
            let run_id = format!("bench-{n:05}");
            let started = base + n as i64 * 60_000;
            writes.push(Write::Run(run_record(&run_id, "bench", started, n)));
            for t in 0..TASKS {
                writes.extend(task_writes(
                    &run_id,
                    &format!("t{t:02}"),
                    "noop",
                    started,
                    n,
                ));
            }
            ids.push(run_id);
        }
        store.commit(writes).expect("commit runs");
    }
    let mut writes = Vec::new();
    for n in 0..CHECKS {
        let run_id = format!("monitor-{n:05}");
        let started = base + n as i64 * 3_600_000;
        writes.push(Write::Run(run_record(&run_id, "monitor", started, n)));
        writes.extend(task_writes(
            &run_id,
            "detect_drift",
            "monitor.drift",
            started,
            n,
        ));
    }
    store.commit(writes).expect("commit checks");
    let wide = "wide-00001".to_string();
    let mut writes = vec![Write::Run(run_record(&wide, "wide", base, 1))];
    for level in 0..WIDE_LEVELS {
        for i in 0..WIDE_PER_LEVEL {
            writes.extend(task_writes(
                &wide,
                &format!("t{level:03}_{i:03}"),
                "noop",
                base + level as i64,
                i,
            ));
        }
    }
    store.commit(writes).expect("commit the wide run");
    let newest = ids.last().cloned().unwrap_or_default();
    let oldest = ids.first().cloned().unwrap_or_default();
    (newest, oldest, wide)
}

fn start(dir: &Path) -> Ui {
    let child = Command::new(env!("CARGO_BIN_EXE_dag"))
        .args(["ui", "--addr", "127.0.0.1:0", "-q"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dag ui");
    let mut ui = Ui {
        child,
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let info = dir.join(".dag/daemon.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(addr) = std::fs::read_to_string(&info)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["addr"].as_str().and_then(|a| a.parse().ok()))
        {
            ui.addr = addr;
            return ui;
        }
        assert!(Instant::now() < deadline, "dag ui did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn measure(ui: &Ui, name: &str, path: &str) -> Duration {
    let get = || {
        let started = Instant::now();
        let response = request(ui.addr, "GET", path, None, None, Duration::from_secs(60))
            .expect("request a page");
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        (started.elapsed(), response.body.len())
    };
    for _ in 0..3 {
        get();
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    let mut bytes = 0;
    for _ in 0..SAMPLES {
        let (elapsed, size) = get();
        samples.push(elapsed);
        bytes = size;
    }
    samples.sort();
    let median = samples[SAMPLES / 2];
    let p95 = samples[SAMPLES * 95 / 100];
    println!(
        "{name:<44} median {:>7.2} ms   p95 {:>7.2} ms   max {:>7.2} ms   {:>8} bytes",
        common::ms(median),
        common::ms(p95),
        common::ms(samples[SAMPLES - 1]),
        bytes
    );
    median
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dags = dir.path().join("dags");
    std::fs::create_dir_all(&dags).expect("dags dir");
    std::fs::write(dags.join("bench.yaml"), chain_dag(TASKS)).expect("write bench");
    std::fs::write(dags.join("wide.yaml"), wide_dag()).expect("write wide");
    std::fs::write(dags.join("monitor.yaml"), MONITOR_DAG).expect("write monitor");
    let filling = Instant::now();
    let (newest, oldest, wide) = fill(&dir.path().join(".dag"));
    println!(
        "store: {RUNS} runs of a {TASKS}-task DAG, {CHECKS} drift checks, one 10,000-task run ({:.1} s to write)",
        filling.elapsed().as_secs_f64()
    );
    let ui = start(dir.path());
    let pages = [
        ("/ (DAG list, recent-run strips)", "/".to_string()),
        (
            "/dags/bench (graph, 25-run grid)",
            "/dags/bench".to_string(),
        ),
        ("/runs/{newest}", format!("/runs/{newest}")),
        (
            "/runs/{oldest} (previous-run search)",
            format!("/runs/{oldest}"),
        ),
        (
            "/diff/{oldest}/{newest}",
            format!("/diff/{oldest}/{newest}"),
        ),
        (
            "/experiments/bench (5 runs)",
            "/experiments/bench".to_string(),
        ),
        ("/monitoring (20 checks)", "/monitoring".to_string()),
        ("/models", "/models".to_string()),
        (
            "/dags/wide (10,000 tasks, by levels)",
            "/dags/wide".to_string(),
        ),
        ("/runs/{wide} (10,000 tasks)", format!("/runs/{wide}")),
    ];
    let mut worst = Duration::ZERO;
    for (name, path) in &pages {
        worst = worst.max(measure(&ui, name, path));
    }
    println!(
        "slowest median: {:.2} ms (goal: ≤ 50 ms per page)",
        common::ms(worst)
    );
}
