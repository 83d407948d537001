//! [`DaemonMetrics`]: what `GET /metrics` exposes, in Prometheus' text
//! format — runs by DAG and status, run and task durations, queue length,
//! active runs, skipped fires and trigger latency (due → run started).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Bucket upper bounds, seconds: from a millisecond to an hour.
const BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Per bucket, not cumulative; the last slot is `+Inf`.
    counts: [u64; BUCKETS.len() + 1],
    sum_ms: i64,
}

impl Histogram {
    fn observe(&mut self, ms: i64) {
        let ms = ms.max(0);
        let seconds = ms as f64 / 1000.0;
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket] += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }
}

#[derive(Debug, Default)]
pub struct DaemonMetrics {
    /// (dag, status) → runs.
    runs: Mutex<BTreeMap<(String, String), u64>>,
    run_seconds: Mutex<BTreeMap<String, Histogram>>,
    task_seconds: Mutex<BTreeMap<String, Histogram>>,
    /// Trigger kind → latency from due to started.
    trigger_latency: Mutex<BTreeMap<String, Histogram>>,
    skipped: Mutex<BTreeMap<String, u64>>,
    queue: AtomicU64,
    active: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl DaemonMetrics {
    pub fn run_finished(&self, dag: &str, status: &str, ms: i64) {
        *lock(&self.runs)
            .entry((dag.to_string(), status.to_string()))
            .or_default() += 1;
        lock(&self.run_seconds)
            .entry(dag.to_string())
            .or_default()
            .observe(ms);
    }

    pub fn task_finished(&self, dag: &str, ms: i64) {
        lock(&self.task_seconds)
            .entry(dag.to_string())
            .or_default()
            .observe(ms);
    }

    pub fn trigger_latency(&self, kind: &str, ms: i64) {
        lock(&self.trigger_latency)
            .entry(kind.to_string())
            .or_default()
            .observe(ms);
    }

    pub fn fire_skipped(&self, dag: &str) {
        *lock(&self.skipped).entry(dag.to_string()).or_default() += 1;
    }

    pub fn set_queue(&self, n: usize) {
        self.queue.store(n as u64, Ordering::Relaxed);
    }

    pub fn set_active(&self, n: usize) {
        self.active.store(n as u64, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "dag_runs_total",
            "counter",
            "Finished runs by DAG and status.",
        );
        for ((dag, status), n) in lock(&self.runs).iter() {
            let _ = writeln!(
                out,
                "dag_runs_total{{dag=\"{}\",status=\"{}\"}} {n}",
                escape(dag),
                escape(status)
            );
        }
        histograms(
            &mut out,
            "dag_run_duration_seconds",
            "Run durations by DAG.",
            "dag",
            &lock(&self.run_seconds),
        );
        histograms(
            &mut out,
            "dag_task_duration_seconds",
            "Task durations by DAG.",
            "dag",
            &lock(&self.task_seconds),
        );
        histograms(
            &mut out,
            "dag_trigger_latency_seconds",
            "From the moment a run was due (cron time, last file event, request) to its start.",
            "trigger",
            &lock(&self.trigger_latency),
        );
        header(
            &mut out,
            "dag_fires_skipped_total",
            "counter",
            "Cron and watch fires dropped by the overlap policy.",
        );
        for (dag, n) in lock(&self.skipped).iter() {
            let _ = writeln!(
                out,
                "dag_fires_skipped_total{{dag=\"{}\"}} {n}",
                escape(dag)
            );
        }
        header(
            &mut out,
            "dag_queue_length",
            "gauge",
            "Runs waiting to start.",
        );
        let _ = writeln!(
            out,
            "dag_queue_length {}",
            self.queue.load(Ordering::Relaxed)
        );
        header(&mut out, "dag_active_runs", "gauge", "Runs executing now.");
        let _ = writeln!(
            out,
            "dag_active_runs {}",
            self.active.load(Ordering::Relaxed)
        );
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histograms(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    series: &BTreeMap<String, Histogram>,
) {
    header(out, name, "histogram", help);
    for (value, histogram) in series {
        let value = escape(value);
        let mut cumulative = 0;
        for (i, count) in histogram.counts.iter().enumerate() {
            cumulative += count;
            let bound = BUCKETS.get(i).map_or("+Inf".to_string(), f64::to_string);
            let _ = writeln!(
                out,
                "{name}_bucket{{{label}=\"{value}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_sum{{{label}=\"{value}\"}} {}",
            histogram.sum_ms as f64 / 1000.0
        );
        let _ = writeln!(out, "{name}_count{{{label}=\"{value}\"}} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_cumulative_buckets() {
        let metrics = DaemonMetrics::default();
        metrics.run_finished("a", "succeeded", 20);
        metrics.run_finished("a", "succeeded", 2_000);
        metrics.run_finished("a\"b", "failed", 5);
        metrics.trigger_latency("cron", 3);
        metrics.set_queue(2);
        let text = metrics.render();
        assert!(
            text.contains("dag_runs_total{dag=\"a\",status=\"succeeded\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("dag_runs_total{dag=\"a\\\"b\",status=\"failed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("dag_run_duration_seconds_bucket{dag=\"a\",le=\"0.025\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("dag_run_duration_seconds_bucket{dag=\"a\",le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("dag_run_duration_seconds_sum{dag=\"a\"} 2.02"),
            "{text}"
        );
        assert!(
            text.contains("dag_trigger_latency_seconds_count{trigger=\"cron\"} 1"),
            "{text}"
        );
        assert!(text.contains("dag_queue_length 2"), "{text}");
    }
}
