//! Two small SVG charts: horizontal bars against a threshold (drift per
//! feature) and lines over a sequence of runs (a metric, a trend). Values
//! are printed beside the bars and in `<title>`s, so the numbers are there
//! for screen readers and for anyone who cannot tell the colours apart.

use crate::ui::html::{Fixed, Html, html};

const LABEL_W: i64 = 170;
const PLOT_W: i64 = 360;
const ROW_H: i64 = 20;

/// One bar per row, scaled to the larger of the values and the threshold;
/// bars over the threshold get the class `over` (and a `!` by the value).
pub fn bars(title: &str, class: &str, rows: &[(String, f64)], threshold: f64) -> Html {
    let mut out = Html::new();
    let top = rows
        .iter()
        .map(|(_, v)| *v)
        .filter(|v| v.is_finite())
        .fold(threshold * 1.25, f64::max)
        .max(f64::MIN_POSITIVE);
    let scale = |v: f64| (v.max(0.0) / top * PLOT_W as f64).round() as i64;
    let height = 28 + rows.len() as i64 * ROW_H + 8;
    let width = LABEL_W + PLOT_W + 70;
    html!(
        out,
        "<svg class=\"graph\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}, threshold {}\">\
         <text class=\"label strong\" x=\"0\" y=\"14\">{}</text>",
        width,
        height,
        width,
        height,
        title,
        Fixed(threshold, 3),
        title
    );
    for (row, (label, value)) in rows.iter().enumerate() {
        let y = 24 + row as i64 * ROW_H;
        let over = *value > threshold;
        html!(
            out,
            "<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect class=\"{}{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}: {}</title></rect>\
             <text class=\"label\" x=\"{}\" y=\"{}\">{}{}</text>",
            LABEL_W - 6,
            y + 14,
            label,
            class,
            if over { Some(" over") } else { None },
            LABEL_W,
            y + 3,
            scale(*value).max(1),
            ROW_H - 6,
            label,
            Fixed(*value, 4),
            LABEL_W + scale(*value).max(1) + 4,
            y + 14,
            Fixed(*value, 3),
            if over { Some(" !") } else { None }
        );
    }
    let at = LABEL_W + scale(threshold);
    html!(
        out,
        "<line class=\"threshold\" x1=\"{}\" y1=\"20\" x2=\"{}\" y2=\"{}\"><title>threshold {}</title></line>\
         <text class=\"label\" x=\"{}\" y=\"14\">threshold {}</text></svg>",
        at,
        at,
        height - 4,
        Fixed(threshold, 3),
        at + 4,
        Fixed(threshold, 3)
    );
    out
}

/// A line per series over the same x positions (labels below), with
/// optional dashed threshold lines. Missing values break nothing: they are
/// simply not drawn.
pub fn lines(
    title: &str,
    x_labels: &[String],
    series: &[(String, Vec<Option<f64>>)],
    thresholds: &[f64],
) -> Html {
    let mut out = Html::new();
    const W: i64 = 640;
    const H: i64 = 220;
    const LEFT: i64 = 56;
    const TOP: i64 = 26;
    const BOTTOM: i64 = 40;
    let values = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .chain(thresholds.iter().copied())
        .filter(|v| v.is_finite());
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !low.is_finite() {
        html!(
            out,
            "<p class=\"muted\">No values to draw for {}.</p>",
            title
        );
        return out;
    }
    let (low, high) = if high - low < 1e-12 {
        (low - 0.5, high + 0.5)
    } else {
        (low - (high - low) * 0.05, high + (high - low) * 0.05)
    };
    let count = x_labels.len().max(1) as i64;
    let x = |i: usize| LEFT + (i as i64 * 2 + 1) * (W - LEFT - 10) / (count * 2);
    let y = |v: f64| TOP + ((high - v) / (high - low) * (H - TOP - BOTTOM) as f64).round() as i64;
    html!(
        out,
        "<svg class=\"graph\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\">\
         <text class=\"label strong\" x=\"0\" y=\"14\">{}</text>\
         <line class=\"axis\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"></line>\
         <text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
         <text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        W,
        H,
        W,
        H,
        title,
        title,
        LEFT,
        H - BOTTOM,
        W - 10,
        H - BOTTOM,
        LEFT - 4,
        y(high) + 4,
        Fixed(high, 3),
        LEFT - 4,
        y(low) + 4,
        Fixed(low, 3)
    );
    for threshold in thresholds {
        html!(
            out,
            "<line class=\"threshold\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"><title>threshold {}</title></line>",
            LEFT,
            y(*threshold),
            W - 10,
            y(*threshold),
            Fixed(*threshold, 3)
        );
    }
    for (index, label) in x_labels.iter().enumerate() {
        html!(
            out,
            "<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x(index),
            H - BOTTOM + 14 + (index % 2) as i64 * 12,
            label
        );
    }
    for (number, (name, points)) in series.iter().enumerate() {
        let class = if number == 0 { "" } else { " second" };
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.filter(|v| v.is_finite())
                    .map(|v| format!("{},{}", x(i), y(v)))
            })
            .collect();
        if path.len() > 1 {
            html!(
                out,
                "<polyline class=\"line{}\" points=\"{}\"></polyline>",
                class,
                path.join(" ")
            );
        }
        for (index, value) in points.iter().enumerate() {
            if let Some(value) = value.filter(|v| v.is_finite()) {
                html!(
                    out,
                    "<circle class=\"dot{}\" cx=\"{}\" cy=\"{}\" r=\"4\"><title>{} {}: {}</title></circle>",
                    class,
                    x(index),
                    y(value),
                    name,
                    x_labels.get(index),
                    Fixed(value, 4)
                );
            }
        }
    }
    html!(out, "</svg>");
    if series.len() > 1 {
        html!(out, "<p class=\"legend\">");
        for (number, (name, _)) in series.iter().enumerate() {
            html!(
                out,
                "<span>{} {}</span>",
                if number == 0 {
                    "● blue:"
                } else {
                    "● purple:"
                },
                name
            );
        }
        html!(out, "</p>");
    }
    out
}
