//! A run's attempts as a Gantt chart: one bar per attempt on a shared time
//! axis from the run's start, coloured by the attempt's status, with the
//! task, attempt, duration and error on hover.

use crate::ui::html::{Html, html};
use crate::ui::layout::{duration, status_label, status_word};
use crate::views::timeline::Timeline;

/// More attempts than this are not drawn (the task table lists them all).
pub const BARS_MAX: usize = 400;

const LABEL_W: i64 = 210;
const PLOT_W: i64 = 700;
const ROW_H: i64 = 20;
const AXIS_H: i64 = 24;

pub fn gantt(timeline: &Timeline) -> Html {
    let mut out = Html::new();
    if timeline.bars.is_empty() {
        html!(out, "<p class=\"muted\">No attempts yet.</p>");
        return out;
    }
    let shown = &timeline.bars[..timeline.bars.len().min(BARS_MAX)];
    let span = timeline.span_ms.max(1);
    let x = |ms: i64| LABEL_W + ms * PLOT_W / span;
    let height = AXIS_H + shown.len() as i64 * ROW_H + 6;
    let width = LABEL_W + PLOT_W + 20;
    html!(
        out,
        "<div class=\"scroll\"><svg class=\"graph\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"timeline of {} attempts over {}\">",
        width,
        height,
        width,
        height,
        timeline.bars.len(),
        duration(timeline.span_ms)
    );
    for quarter in 0..=4 {
        let at = span * quarter / 4;
        html!(
            out,
            "<line class=\"axis\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"></line><text class=\"axis-label\" x=\"{}\" y=\"14\" text-anchor=\"middle\">{}</text>",
            x(at),
            AXIS_H - 4,
            x(at),
            height,
            x(at).min(LABEL_W + PLOT_W - 10),
            duration(at)
        );
    }
    for (row, bar) in shown.iter().enumerate() {
        let y = AXIS_H + row as i64 * ROW_H;
        let word = status_word(&bar.status);
        let left = x(bar.start_ms);
        let bar_width = (x(bar.end_ms) - left).max(2);
        let label = if bar.attempt > 1 {
            format!("{} (attempt {})", bar.task_id, bar.attempt)
        } else {
            bar.task_id.clone()
        };
        let title = format!(
            "{label}: {}, {}{}",
            status_label(&word),
            duration(bar.end_ms - bar.start_ms),
            bar.error
                .as_deref()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        );
        html!(
            out,
            "<text class=\"label strong\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar\" data-status=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\"><title>{}</title></rect>",
            LABEL_W - 8,
            y + 14,
            label,
            word,
            left,
            y + 3,
            bar_width,
            ROW_H - 6,
            title
        );
    }
    html!(out, "</svg></div>");
    if shown.len() < timeline.bars.len() {
        html!(
            out,
            "<p class=\"muted\">The first {} of {} attempts are drawn.</p>",
            shown.len(),
            timeline.bars.len()
        );
    }
    out
}
