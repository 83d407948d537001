//! What running a task on a Ray executor costs beside running it here,
//! against a real local Ray head that this bench starts (loopback only, its
//! own temporary directory) and stops by the process group it started:
//!
//! - dispatch overhead per remote task: a chain of `noop` tasks (no work of
//!   their own), each one Ray job, timed as the engine saw it (submit →
//!   running → done, outcome and log brought back), beside the same chain
//!   run locally; and how much of it the job itself took on the cluster
//!   (Ray's own start → end: the driver, `dag task-exec` and its runtime);
//! - throughput: 100 independent `noop` tasks, 8 at a time, on Ray and
//!   locally.
//!
//! `cargo bench --bench ray_dispatch` (the release build of `dag`; Ray from
//! `bash .ci/python-env`). `RAY_BENCH_CHAIN` and `RAY_BENCH_FAN` change the
//! task counts.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dag::execute::ray::JobsApi;

struct Head {
    address: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Head {
    fn start(repo: &Path) -> Self {
        let output = Command::new("bash")
            .arg(repo.join(".ci/python-env"))
            .output()
            .expect("run .ci/python-env");
        assert!(output.status.success(), ".ci/python-env failed");
        let python = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let dir = tempfile::Builder::new()
            .prefix("rb")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let port = || {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port()
        };
        let dashboard = port();
        let child = Command::new(python.with_file_name("ray"))
            .args(["start", "--head", "--block", "--node-ip-address=127.0.0.1"])
            .arg(format!("--port={}", port()))
            .arg("--dashboard-host=127.0.0.1")
            .arg(format!("--dashboard-port={dashboard}"))
            .arg(format!("--dashboard-agent-listen-port={}", port()))
            .arg(format!("--dashboard-agent-grpc-port={}", port()))
            .arg(format!("--metrics-export-port={}", port()))
            .arg(format!("--ray-client-server-port={}", port()))
            .arg(format!("--runtime-env-agent-port={}", port()))
            .arg(format!("--temp-dir={}", dir.path().display()))
            .args([
                "--num-cpus=2",
                "--include-dashboard=true",
                "--disable-usage-stats",
            ])
            .env("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start ray");
        let head = Self {
            address: format!("http://127.0.0.1:{dashboard}"),
            child,
            _dir: dir,
        };
        let api = JobsApi::new(&head.address).expect("address");
        let started = Instant::now();
        while api.jobs().is_err() {
            assert!(started.elapsed() < Duration::from_secs(90), "no Ray head");
            std::thread::sleep(Duration::from_millis(200));
        }
        println!("Ray head ready in {:.1}s", started.elapsed().as_secs_f64());
        head
    }
}

impl Drop for Head {
    fn drop(&mut self) {
        // SAFETY: signals the process group this bench started.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn dag_file(name: &str, address: &str, tasks: usize, chain: bool) -> String {
    let mut text = format!(
        "name: {name}\nmax_parallel: 8\nexecutors:\n  cluster: {{ kind: ray, address: \"{address}\", num_cpus: 0, poll_interval: 20ms }}\ndefaults: {{ executor: cluster, cache: false }}\ntasks:\n"
    );
    for n in 0..tasks {
        text.push_str(&format!("  t{n:03}:\n    operator: noop\n"));
        if chain && n > 0 {
            text.push_str(&format!("    needs: [t{:03}]\n", n - 1));
        }
    }
    text
}

/// Runs DAG `name`; the wall time and each task's duration (ms).
fn run(project: &Path, name: &str, local: bool) -> (Duration, Vec<f64>, String) {
    let started = Instant::now();
    let mut command = Command::new(env!("CARGO_BIN_EXE_dag"));
    command
        .args(["run", name, "--json"])
        .current_dir(project)
        .env("NO_COLOR", "1");
    if local {
        command.env("DAG_EXECUTOR_OVERRIDE", "local");
    }
    let output = command.output().expect("run dag");
    let wall = started.elapsed();
    let run: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!("dag run: {}", String::from_utf8_lossy(&output.stderr));
    });
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let durations = run["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .filter_map(|t| t["duration_ms"].as_f64())
                .collect()
        })
        .unwrap_or_default();
    let id = run["run_id"].as_str().unwrap_or_default().to_string();
    (wall, durations, id)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(index).copied().unwrap_or(f64::NAN)
}

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let chain = count("RAY_BENCH_CHAIN", 20);
    let fan = count("RAY_BENCH_FAN", 100);
    let head = Head::start(&repo);
    let api = JobsApi::new(&head.address).expect("address");
    let project = tempfile::tempdir().expect("project");
    std::fs::create_dir(project.path().join("dags")).expect("dags/");
    for (name, tasks, chained) in [("chain", chain, true), ("fan", fan, false)] {
        std::fs::write(
            project.path().join(format!("dags/{name}.yaml")),
            dag_file(name, &head.address, tasks, chained),
        )
        .expect("write the DAG");
    }
    // One warm-up job: the head's first job pays for starting workers.
    let _ = run(project.path(), "chain", false);

    let (_, mut local, _) = run(project.path(), "chain", true);
    let (_, mut remote, run_id) = run(project.path(), "chain", false);
    let mut on_cluster: Vec<f64> = api
        .jobs()
        .expect("jobs")
        .into_iter()
        .filter(|job| {
            job.submission_id
                .as_deref()
                .is_some_and(|id| id.starts_with(&run_id))
        })
        .filter_map(|job| Some((job.end_time? - job.start_time?) as f64))
        .collect();
    let (local_median, remote_median) = (median(&mut local), median(&mut remote));
    println!("dispatch: a chain of {chain} noop tasks, one at a time");
    println!(
        "  local  per task: median {local_median:.1} ms, p90 {:.1} ms",
        percentile(&mut local, 0.9)
    );
    println!(
        "  ray    per task: median {remote_median:.1} ms, p90 {:.1} ms (the job on the cluster, start to end: median {:.1} ms)",
        percentile(&mut remote, 0.9),
        median(&mut on_cluster)
    );
    println!(
        "  dispatch overhead per remote task: {:.1} ms (median, ray minus local)",
        remote_median - local_median
    );

    let (local_wall, _, _) = run(project.path(), "fan", true);
    let (remote_wall, _, _) = run(project.path(), "fan", false);
    println!("throughput: {fan} independent noop tasks, 8 at a time");
    for (what, wall) in [("local", local_wall), ("ray", remote_wall)] {
        println!(
            "  {what:<6} {:.2} s, {:.1} tasks/s",
            wall.as_secs_f64(),
            fan as f64 / wall.as_secs_f64()
        );
    }
}
