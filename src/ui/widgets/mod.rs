//! Drawings pages share, as server-rendered HTML and SVG: the task graph
//! (or its levels, for large DAGs), the history grid, the attempt
//! timeline, charts, the lineage graph and the strip of recent runs.
//! Status colours come from the stylesheet through `data-status`, and every
//! status also shows as a word or a glyph, never as colour alone.

pub mod charts;
pub mod gantt;
pub mod graph;
pub mod grid;
pub mod lineage;

use dag_state::RunStatus;

use super::html::{Html, Seg, html};
use super::layout::{status_label, status_word, time};

/// One glyph per status, for cells too small for the word.
pub fn glyph(word: &str) -> &'static str {
    match word {
        "succeeded" => "✓",
        "up_to_date" => "=",
        "failed" | "timed_out" => "✗",
        "upstream_failed" => "↑",
        "skipped" => "–",
        "cancelled" => "⊘",
        "interrupted" => "!",
        "running" | "queued" => "▸",
        _ => "·",
    }
}

/// A run in a strip of recent runs.
pub struct StripRun<'a> {
    pub run_id: &'a str,
    pub status: RunStatus,
    pub started_at_ms: i64,
}

/// Small squares for recent runs, oldest first, each a link to its run.
pub fn strip(runs: &[StripRun<'_>]) -> Html {
    let mut out = Html::new();
    html!(out, "<span class=\"strip\">");
    for run in runs {
        let word = status_word(&run.status);
        html!(
            out,
            "<a href=\"/runs/{}\" data-status=\"{}\" title=\"{} {}: {}\" aria-label=\"run {} {}\"></a>",
            Seg(run.run_id),
            word,
            run.run_id,
            time(run.started_at_ms),
            status_label(&word),
            run.run_id,
            status_label(&word)
        );
    }
    html!(out, "</span>");
    out
}
