//! [`Metrics`]: what the server counts, rendered in the Prometheus text
//! format by [`Metrics::render`]. Counters only grow; nothing here decides
//! anything about requests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The routes requests are counted under; anything else is `other`, so a
/// scanner cannot grow the label set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Route {
    Predict,
    PredictBatch,
    Health,
    Ready,
    Model,
    Metrics,
    Other,
}

impl Route {
    const ALL: [Route; 7] = [
        Route::Predict,
        Route::PredictBatch,
        Route::Health,
        Route::Ready,
        Route::Model,
        Route::Metrics,
        Route::Other,
    ];

    pub fn of_path(path: &str) -> Self {
        match path {
            "/predict" => Self::Predict,
            "/predict/batch" => Self::PredictBatch,
            "/health" => Self::Health,
            "/ready" => Self::Ready,
            "/model" => Self::Model,
            "/metrics" => Self::Metrics,
            _ => Self::Other,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Predict => "/predict",
            Self::PredictBatch => "/predict/batch",
            Self::Health => "/health",
            Self::Ready => "/ready",
            Self::Model => "/model",
            Self::Metrics => "/metrics",
            Self::Other => "other",
        }
    }
}

/// Which model of an A/B pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Champion,
    Challenger,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Self::Champion => "champion",
            Self::Challenger => "challenger",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket (not cumulative); the last slot is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(Route, u16), u64>>,
    latency: [Histogram; Route::ALL.len()],
    /// (role, version, class) → predictions.
    predictions: Mutex<BTreeMap<(Role, u32, String), u64>>,
    /// (role, version) → requests answered.
    answered: Mutex<BTreeMap<(Role, u32), u64>>,
    /// Version in use per role; 0 while none is loaded.
    versions: [AtomicU64; 2],
    swaps: [AtomicU64; 2],
    swap_failures: [AtomicU64; 2],
    shadow_compared: AtomicU64,
    shadow_agreed: AtomicU64,
    log_dropped: AtomicU64,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K, by: u64) {
    *map.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_default() += by;
}

/// Escapes a Prometheus label value.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn request(&self, route: Route, status: u16, elapsed: Duration) {
        bump(&self.requests, (route, status), 1);
        self.latency[Route::ALL.iter().position(|r| *r == route).unwrap_or(0)].observe(elapsed);
    }

    /// Counts a request answered by `role`'s model and the classes it predicted.
    pub fn answered<'a>(&self, role: Role, version: u32, classes: impl Iterator<Item = &'a str>) {
        bump(&self.answered, (role, version), 1);
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for class in classes {
            *counts.entry(class).or_default() += 1;
        }
        let mut map = self
            .predictions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (class, n) in counts {
            *map.entry((role, version, class.to_string())).or_default() += n;
        }
    }

    pub fn model_in_use(&self, role: Role, version: u32) {
        self.versions[role.index()].store(u64::from(version), Ordering::Relaxed);
    }

    pub fn swapped(&self, role: Role) {
        self.swaps[role.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn swap_failed(&self, role: Role) {
        self.swap_failures[role.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Records shadow comparisons: `agreed` of `compared` classes matched.
    pub fn shadow(&self, compared: u64, agreed: u64) {
        self.shadow_compared.fetch_add(compared, Ordering::Relaxed);
        self.shadow_agreed.fetch_add(agreed, Ordering::Relaxed);
    }

    pub fn log_dropped(&self) {
        self.log_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn swap_count(&self, role: Role) -> u64 {
        self.swaps[role.index()].load(Ordering::Relaxed)
    }

    pub fn swap_failure_count(&self, role: Role) -> u64 {
        self.swap_failures[role.index()].load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_requests(&mut out);
        self.render_models(&mut out);
        out
    }

    fn render_requests(&self, out: &mut String) {
        header(
            out,
            "dag_serve_requests_total",
            "counter",
            "HTTP requests by route and status.",
        );
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "dag_serve_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                route.label()
            );
        }
        let name = "dag_serve_request_duration_seconds";
        header(
            out,
            name,
            "histogram",
            "Time from request to response, by route.",
        );
        for (route, histogram) in Route::ALL.iter().zip(&self.latency) {
            let label = route.label();
            let mut cumulative = 0;
            for (i, count) in histogram.counts.iter().enumerate() {
                cumulative += count.load(Ordering::Relaxed);
                let bound = BUCKETS.get(i).map_or("+Inf".to_string(), f64::to_string);
                let _ = writeln!(
                    out,
                    "{name}_bucket{{route=\"{label}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let sum = histogram.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "{name}_sum{{route=\"{label}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{route=\"{label}\"}} {cumulative}");
        }
    }

    fn render_models(&self, out: &mut String) {
        let name = "dag_serve_predictions_total";
        header(
            out,
            name,
            "counter",
            "Predicted records by model and class.",
        );
        for ((role, version, class), n) in self
            .predictions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "{name}{{role=\"{}\",version=\"{version}\",class=\"{}\"}} {n}",
                role.label(),
                escape(class)
            );
        }
        let name = "dag_serve_model_requests_total";
        header(
            out,
            name,
            "counter",
            "Prediction requests answered, by model.",
        );
        for ((role, version), n) in self
            .answered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "{name}{{role=\"{}\",version=\"{version}\"}} {n}",
                role.label()
            );
        }
        let per_role = [
            (
                "dag_serve_model_version",
                "gauge",
                "Registry version in use (0: none loaded).",
                &self.versions,
            ),
            (
                "dag_serve_model_swaps_total",
                "counter",
                "Verified models swapped in.",
                &self.swaps,
            ),
            (
                "dag_serve_model_swap_failures_total",
                "counter",
                "Alias targets refused because they failed to load or verify.",
                &self.swap_failures,
            ),
        ];
        for (name, kind, help, values) in per_role {
            header(out, name, kind, help);
            for role in [Role::Champion, Role::Challenger] {
                let value = values[role.index()].load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{role=\"{}\"}} {value}", role.label());
            }
        }
        let compared = self.shadow_compared.load(Ordering::Relaxed);
        let agreed = self.shadow_agreed.load(Ordering::Relaxed);
        let counters = [
            (
                "dag_serve_shadow_comparisons_total",
                "Records scored by both champion and challenger.",
                compared,
            ),
            (
                "dag_serve_shadow_agreements_total",
                "Records where champion and challenger predicted the same class.",
                agreed,
            ),
            (
                "dag_serve_prediction_log_dropped_total",
                "Log entries dropped because the log writer fell behind.",
                self.log_dropped.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            header(out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        }
        let name = "dag_serve_challenger_agreement_ratio";
        header(
            out,
            name,
            "gauge",
            "Share of shadow comparisons where the classes matched (NaN before any).",
        );
        let ratio = if compared == 0 {
            f64::NAN
        } else {
            agreed as f64 / compared as f64
        };
        let _ = writeln!(out, "{name} {ratio}");
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_status_with_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.request(Route::Predict, 200, Duration::from_micros(300));
        metrics.request(Route::Predict, 200, Duration::from_millis(3));
        metrics.request(Route::of_path("/wp-admin"), 404, Duration::from_micros(1));
        let text = metrics.render();
        assert!(
            text.contains("dag_serve_requests_total{route=\"/predict\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("dag_serve_requests_total{route=\"other\",status=\"404\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "dag_serve_request_duration_seconds_bucket{route=\"/predict\",le=\"0.0005\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "dag_serve_request_duration_seconds_bucket{route=\"/predict\",le=\"0.005\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("dag_serve_request_duration_seconds_count{route=\"/predict\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn predictions_swaps_and_agreement_are_rendered_per_model() {
        let metrics = Metrics::default();
        metrics.model_in_use(Role::Champion, 3);
        metrics.answered(Role::Champion, 3, ["a\"b", "x", "x"].into_iter());
        metrics.swapped(Role::Champion);
        metrics.swap_failed(Role::Challenger);
        metrics.shadow(4, 3);
        let text = metrics.render();
        for line in [
            "dag_serve_predictions_total{role=\"champion\",version=\"3\",class=\"x\"} 2",
            "dag_serve_predictions_total{role=\"champion\",version=\"3\",class=\"a\\\"b\"} 1",
            "dag_serve_model_requests_total{role=\"champion\",version=\"3\"} 1",
            "dag_serve_model_version{role=\"champion\"} 3",
            "dag_serve_model_version{role=\"challenger\"} 0",
            "dag_serve_model_swaps_total{role=\"champion\"} 1",
            "dag_serve_model_swap_failures_total{role=\"challenger\"} 1",
            "dag_serve_challenger_agreement_ratio 0.75",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
    }
}
