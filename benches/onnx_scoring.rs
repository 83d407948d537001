//! An ONNX model version beside the native forest, measured as users meet
//! them, with the release `dag` binary in its own processes:
//!
//! - batch: `dag run` of one `ml.predict_batch` task over the whole data set
//!   (2,111 rows), forced so it scores every time; the whole process (start,
//!   registry lookup and digest check, loading the model, scoring, writing
//!   the CSV, recording the run), median of 5;
//! - serving: `dag serve` on loopback answering `POST /predict` one record
//!   at a time over one keep-alive connection; p50 and p99 of 2,000 requests
//!   after 200 to warm up.
//!
//! The models: `obesity` v1 is the shipped 300-tree native forest (`dag run
//! obesity`); v2 the shipped scikit-learn challenger, a 100-stage gradient
//! boosting classifier (700 trees) exported by skl2onnx; v3 a 300-tree
//! scikit-learn random forest through the same DAG. scikit-learn comes from
//! `bash .ci/python-env`.
//!
//! `cargo bench --bench onnx_scoring`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn dag_binary() -> PathBuf {
    std::env::var_os("DAG_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_dag").into())
        .into()
}

fn dag(project: &Path, args: &[&str]) {
    let output = Command::new(dag_binary())
        .args(args)
        .current_dir(project)
        .output()
        .expect("run dag");
    assert!(
        output.status.success(),
        "dag {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

fn python(repo: &Path) -> String {
    let output = Command::new("bash")
        .arg(repo.join(".ci/python-env"))
        .output()
        .expect("run .ci/python-env");
    assert!(output.status.success(), ".ci/python-env failed");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

const RECORD: &str = r#"{"Gender":"Female","Age":23,"Height":1.62,"Weight":64,"family_history_with_overweight":"yes","FAVC":"no","FCVC":2,"NCP":3,"CAEC":"Sometimes","SMOKE":"no","CH2O":2,"SCC":"no","FAF":0,"TUE":1,"CALC":"no","MTRANS":"Public_Transportation"}"#;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// p50 and p99 of single-record requests to `dag serve --alias alias`.
fn serving(project: &Path, alias: &str) -> (Duration, Duration) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let _server = Server(
        Command::new(dag_binary())
            .args(["serve", "--addr", &addr, "--alias", alias])
            .current_dir(project)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dag serve"),
    );
    let started = Instant::now();
    let stream = loop {
        match TcpStream::connect(&addr) {
            Ok(stream) => break stream,
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("dag serve did not listen: {e}"),
        }
    };
    stream.set_nodelay(true).expect("nodelay");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let request = format!(
        "POST /predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{RECORD}",
        RECORD.len()
    );
    let mut one = || {
        writer.write_all(request.as_bytes()).expect("send");
        let mut length = 0usize;
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        assert!(status.contains(" 200 "), "answer: {status}");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
    };
    // The model loads on the first request after start; wait for a 200.
    let ready = Instant::now();
    loop {
        let probe = TcpStream::connect(&addr).and_then(|mut s| {
            s.write_all(request.as_bytes())?;
            let mut first = [0u8; 12];
            s.read_exact(&mut first)?;
            Ok(first)
        });
        if probe.is_ok_and(|first| first.ends_with(b"200")) {
            break;
        }
        assert!(ready.elapsed() < Duration::from_secs(60), "no model served");
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..200 {
        one();
    }
    let mut samples: Vec<Duration> = (0..2000)
        .map(|_| {
            let at = Instant::now();
            one();
            at.elapsed()
        })
        .collect();
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

fn batch(project: &Path, alias: &str) -> Duration {
    let name = format!("score_{alias}");
    std::fs::write(
        project.join(format!("dags/{name}.yaml")),
        format!(
            "name: {name}\ntasks:\n  predict:\n    operator: ml.predict_batch\n    inputs: {{ data: data/raw/ObesityDataSet.csv }}\n    outputs: {{ predictions: data/bench/{alias}.csv }}\n    params: {{ registry_model: obesity, alias: {alias} }}\n"
        ),
    )
    .expect("write DAG");
    dag(project, &["run", &name]);
    let mut samples: Vec<Duration> = (0..5)
        .map(|_| {
            let at = Instant::now();
            dag(project, &["run", &name, "--force", "-q"]);
            at.elapsed()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = python(&repo);
    let dir = tempfile::tempdir().expect("temp dir");
    let project = dir.path();
    copy_dir(&repo.join("dags"), &project.join("dags"));
    std::fs::create_dir_all(project.join("data/raw")).expect("data dir");
    std::fs::copy(
        repo.join("data/raw/ObesityDataSet.csv"),
        project.join("data/raw/ObesityDataSet.csv"),
    )
    .expect("copy data");
    eprintln!("training the native forest and the scikit-learn models ...");
    dag(project, &["run", "obesity"]);
    dag(
        project,
        &["models", "promote", "obesity", "1", "--alias", "native"],
    );
    let python_param = format!("python={python}");
    dag(
        project,
        &[
            "run",
            "obesity_sklearn_challenger",
            "--param",
            &python_param,
        ],
    );
    dag(
        project,
        &["models", "promote", "obesity", "2", "--alias", "onnx_gb"],
    );
    dag(
        project,
        &[
            "run",
            "obesity_sklearn_challenger",
            "--param",
            &python_param,
            "--param",
            "model=rf",
            "--param",
            "n_estimators=300",
        ],
    );
    dag(
        project,
        &["models", "promote", "obesity", "3", "--alias", "onnx_rf"],
    );
    // Serving follows `production`; point it at each model in turn.
    println!(
        "model                                   batch 2,111 rows (whole process)   serve p50    serve p99"
    );
    for (alias, what) in [
        ("native", "native forest, 300 trees"),
        ("onnx_gb", "ONNX gradient boosting, 700 trees"),
        ("onnx_rf", "ONNX random forest, 300 trees"),
    ] {
        let batch = batch(project, alias);
        let (p50, p99) = serving(project, alias);
        println!(
            "{what:<40}{:>10.1} ms ({:>7.0} rows/s)        {:>7.0} µs   {:>7.0} µs",
            batch.as_secs_f64() * 1e3,
            2111.0 / batch.as_secs_f64(),
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
}
