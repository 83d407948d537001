//! The engine as users run it (release build): `cargo bench --bench whole_process`.
//!
//! Each case runs the real `dag` binary in a fresh project, the way a user
//! types it — load and check the file, open the store, plan, run, record,
//! print the summary, exit — and reports wall time, CPU time (user + system
//! of the child process) and peak resident memory, from `wait4`:
//!
//! - `dag validate` and `dag run` of a 10,000-task DAG (100 layers × 100
//!   `noop` tasks, each needing 3 tasks of the layer before, `max_parallel: 64`)
//! - the same shape at 100,000 tasks (1,000 layers × 100)
//! - a chain of 1,000 `noop` tasks: the cost of one hop, start to finish
//!
//! `DAG_BENCH_RUNS=N` sets the samples per case (default 5; 3 for 100k).
//! `DAG_BENCH_BIN=path` measures another `dag` binary (an older build, say)
//! with the same cases.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn layered_dag(layers: usize, width: usize) -> String {
    let mut text = String::with_capacity(layers * width * 80);
    text.push_str("name: layered\nmax_parallel: 64\ntasks:\n");
    for layer in 0..layers {
        for i in 0..width {
            let _ = write!(text, "  t{layer}_{i}:\n    operator: noop\n");
            if layer > 0 {
                let up = |k: usize| format!("t{}_{}", layer - 1, (i + k * 37) % width);
                let _ = writeln!(text, "    needs: [{}, {}, {}]", up(0), up(1), up(2));
            }
        }
    }
    text
}

fn chain_dag(n: usize) -> String {
    let mut text = String::from("name: chain\ntasks:\n");
    for i in 0..n {
        let _ = write!(text, "  t{i}:\n    operator: noop\n");
        if i > 0 {
            let _ = writeln!(text, "    needs: [t{}]", i - 1);
        }
    }
    text
}

/// One finished child process: wall time, CPU time, peak RSS.
struct Sample {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: i64,
}

/// Runs `dag args...` in `dir`, asserting it succeeds.
fn run_dag(dir: &Path, args: &[&str]) -> Sample {
    let started = Instant::now();
    let binary =
        std::env::var_os("DAG_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_dag").into());
    #[expect(
        clippy::zombie_processes,
        reason = "reaped below by wait4, which also reports its resource usage"
    )]
    let child = Command::new(binary)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dag");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child this function started, once.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(waited, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "`dag {}` failed (status {status})",
        args.join(" ")
    );
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Sample {
        wall,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
    }
}

fn report(name: &str, samples: &mut [Sample], per: Option<(usize, &str)>) {
    samples.sort_by_key(|s| s.wall);
    let median = &samples[samples.len() / 2];
    let best = &samples[0];
    let per_item = per
        .map(|(n, unit)| {
            format!(
                ", {:.1} µs wall per {unit}",
                median.wall.as_secs_f64() * 1e6 / n as f64
            )
        })
        .unwrap_or_default();
    let mut cpu: Vec<Duration> = samples.iter().map(|s| s.cpu).collect();
    cpu.sort();
    let mut rss: Vec<i64> = samples.iter().map(|s| s.max_rss_kib).collect();
    rss.sort();
    println!(
        "{name:<44} wall median {:>8.1} ms (best {:>8.1}), cpu median {:>8.1} ms, peak RSS {:>6.1} MiB{per_item}",
        median.wall.as_secs_f64() * 1e3,
        best.wall.as_secs_f64() * 1e3,
        cpu[cpu.len() / 2].as_secs_f64() * 1e3,
        rss[rss.len() / 2] as f64 / 1024.0,
    );
}

/// `samples` fresh projects, each with `file` written; the command run once
/// in each.
fn measure(file: &str, text: &str, args: &[&str], samples: usize) -> Vec<Sample> {
    (0..samples)
        .map(|_| {
            let project = tempfile::tempdir().expect("temp project");
            std::fs::write(project.path().join(file), text).expect("write DAG");
            run_dag(project.path(), args)
        })
        .collect()
}

fn main() {
    let runs: usize = std::env::var("DAG_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);

    let wide = layered_dag(100, 100);
    report(
        "dag validate, 10,000 tasks",
        &mut measure("wide.yaml", &wide, &["validate", "wide.yaml"], runs),
        Some((10_000, "task")),
    );
    report(
        "dag run, 10,000 tasks (100 x 100)",
        &mut measure("wide.yaml", &wide, &["run", "wide.yaml"], runs),
        Some((10_000, "task")),
    );

    let chain = chain_dag(1_000);
    report(
        "dag run, chain of 1,000 tasks",
        &mut measure("chain.yaml", &chain, &["run", "chain.yaml"], runs),
        Some((1_000, "hop")),
    );

    let huge = layered_dag(1_000, 100);
    let big_runs = runs.min(3);
    report(
        "dag validate, 100,000 tasks",
        &mut measure("huge.yaml", &huge, &["validate", "huge.yaml"], big_runs),
        Some((100_000, "task")),
    );
    report(
        "dag run, 100,000 tasks (1,000 x 100)",
        &mut measure("huge.yaml", &huge, &["run", "huge.yaml"], big_runs),
        Some((100_000, "task")),
    );
}
