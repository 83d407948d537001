//! What the web UI tests share: `dag ui` as a background process on a free
//! loopback port, raw HTTP requests to it, and the small DAGs they run.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::Project;

/// `dag ui` running for a project; killed (by its pid) on drop.
pub struct Ui {
    child: Child,
    pub addr: String,
    log: PathBuf,
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ui {
    /// Starts `dag ui` with `DAG_API_TOKEN` set to `token`, if given.
    pub fn start(project: &Project, token: Option<&str>) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = project.path().join(format!("ui-{n}.log"));
        let mut command = project.command(&["ui", "--addr", "127.0.0.1:0", "--grace", "2s"]);
        if let Some(token) = token {
            command.env("DAG_API_TOKEN", token);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("ui log"))
            .spawn()
            .expect("start dag ui");
        let pid = child.id();
        let info = project.path().join(".dag/daemon.json");
        let addr = wait_for("`dag ui` to write daemon.json", || {
            let text = std::fs::read_to_string(&info).ok()?;
            let value: Value = serde_json::from_str(&text).ok()?;
            (value["pid"].as_u64() == Some(u64::from(pid)))
                .then(|| value["addr"].as_str().map(String::from))
                .flatten()
        });
        Self { child, addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Polls `probe` until it gives a value; fails after 30 s.
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A raw HTTP answer.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// One request with `headers` (`"Name: value"`) and `body`.
pub fn http(addr: &str, method: &str, path: &str, headers: &[&str], body: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect to dag ui");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Answer {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// The CSRF token in a page's forms.
pub fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string()
}

/// A DAG whose first task prints greetings and then waits until the test
/// creates `release-<word>` in the project, so a test sees it running.
pub const GREETING: &str = r#"name: greeting
description: greets, then waits for the test to let it finish
params:
  word: world
  times: 2
tasks:
  greet:
    operator: shell
    params:
      command: "for i in $(seq 1 {{ params.times }}); do echo \"hello {{ params.word }} $i\"; done; while [ ! -f release-{{ params.word }} ]; do sleep 0.02; done; echo \"released {{ params.word }}\""
  wrap_up:
    operator: shell
    needs: [greet]
    params: { command: "echo done" }
"#;

/// A small model lifecycle: features, a 5-tree forest, evaluation,
/// registration, a gate and promotion, on `data/raw.csv`.
pub const TINY_MODEL: &str = r#"name: tiny_model
description: train a small forest, gate it, register it and promote it
params:
  seed: 1
  n_trees: 5
tasks:
  features:
    operator: data.features
    inputs: { train: data/raw.csv }
    outputs: { transformer: out/transformer.json }
    params: { target: label }
  train:
    operator: ml.train
    inputs: { train: data/raw.csv, transformer: out/transformer.json }
    outputs: { model: out/model.json }
    params: { model: random_forest, n_trees: "{{ params.n_trees }}", seed: "{{ params.seed }}" }
  evaluate:
    operator: ml.evaluate
    inputs: { model: out/model.json, test: data/raw.csv }
    outputs: { metrics: out/eval.json }
  register:
    operator: models.register
    inputs: { model: out/model.json, metrics: out/eval.json, train: data/raw.csv }
    params: { name: tiny, aliases: [challenger] }
  gate:
    operator: ml.gate
    inputs: { data: data/raw.csv }
    outputs: { verdict: out/verdict.json }
    params: { model: tiny, version: "{{ tasks.register.outputs.version }}", criteria: ["accuracy >= 0.5"] }
  promote:
    operator: models.promote
    when: tasks.gate.outputs.passed
    params: { name: tiny, version: "{{ tasks.gate.outputs.challenger_version }}", aliases: [production, champion] }
"#;

/// Drift of `data/batch.csv` against `data/raw.csv`; drift retrains.
pub const TINY_MONITORING: &str = r#"name: tiny_monitoring
description: check the batch for drift; on drift, retrain
tasks:
  detect_drift:
    operator: monitor.drift
    inputs: { reference: data/raw.csv, current: data/batch.csv }
    outputs: { report: out/drift.json }
    params: { exclude: [label], bins: 5, min_rows: 30 }
  retrain:
    operator: dag.trigger
    when: tasks.detect_drift.outputs.drift_detected
    params: { dag: tiny_model, params: { seed: 3 }, reason: "drift in {{ tasks.detect_drift.outputs.drifted_features }}" }
"#;

/// A learnable table; `shift` moves `x` (drift).
pub fn tiny_table(shift: f64) -> String {
    let mut text = String::from("g,x,y,label\n");
    for i in 0..60 {
        let label = ["low", "mid", "high"][i % 3];
        let g = if i % 2 == 0 { "a" } else { "b" };
        let x = (i % 3) as f64 * 10.0 + (i % 5) as f64 * 0.1 + shift;
        text.push_str(&format!("{g},{x},{},{label}\n", (i * 7) % 11));
    }
    text
}
