//! The task graph of a DAG, drawn as SVG by plan levels (one column per
//! level) with the artifact names on the edges; or, for large DAGs, the
//! levels as collapsed sections with a status count each, so a page about
//! a 10,000-task DAG stays light. Every task carries `data-task` and
//! `data-status`, which the page's script updates as events arrive.

use std::collections::{BTreeMap, HashMap};

use crate::ui::html::{Html, Seg, html};
use crate::ui::layout::{status_label, status_word};
use crate::views::DagGraph;
use crate::views::live::TaskState;

/// More tasks than this are shown as levels, not drawn.
pub const DRAWN_MAX_TASKS: usize = 150;
/// More tasks than this list one level at a time (`?level=N`).
pub const LISTED_MAX_TASKS: usize = 2000;

const NODE_W: i64 = 196;
const NODE_H: i64 = 46;
const COL_GAP: i64 = 96;
const ROW_GAP: i64 = 14;
const MARGIN: i64 = 8;

/// Where task links point: `/runs/{run}#task-{id}`, or nowhere before any run.
pub struct TaskLinks<'a> {
    pub run_id: Option<&'a str>,
}

impl TaskLinks<'_> {
    fn href(&self, task: &str) -> Option<Html> {
        let run = self.run_id?;
        let mut out = Html::new();
        html!(out, "/runs/{}#task-{}", Seg(run), Seg(task));
        Some(out)
    }
}

fn state_of<'a>(states: &'a BTreeMap<String, TaskState>, id: &str) -> (String, Option<&'a str>) {
    states.get(id).map_or(("pending".to_string(), None), |s| {
        (status_word(&s.status), s.reason.as_deref())
    })
}

/// The graph, drawn or as levels depending on its size. `only_level`
/// lists one level's tasks of a DAG too large to list them all.
pub fn task_graph(
    graph: &DagGraph,
    states: &BTreeMap<String, TaskState>,
    links: &TaskLinks<'_>,
    only_level: Option<usize>,
    level_href: &dyn Fn(usize) -> Html,
) -> Html {
    if graph.task_count() <= DRAWN_MAX_TASKS {
        drawn(graph, states, links)
    } else {
        levels(graph, states, links, only_level, level_href)
    }
}

fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(chars.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

fn drawn(graph: &DagGraph, states: &BTreeMap<String, TaskState>, links: &TaskLinks<'_>) -> Html {
    let mut place: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut tallest = 0;
    for (column, level) in graph.levels.iter().enumerate() {
        tallest = tallest.max(level.len());
        for (row, node) in level.iter().enumerate() {
            let x = MARGIN + column as i64 * (NODE_W + COL_GAP);
            let y = MARGIN + row as i64 * (NODE_H + ROW_GAP);
            place.insert(node.id.as_str(), (x, y));
        }
    }
    let width = MARGIN * 2 + (graph.levels.len() as i64).max(1) * (NODE_W + COL_GAP) - COL_GAP;
    let height = MARGIN * 2 + (tallest as i64).max(1) * (NODE_H + ROW_GAP) - ROW_GAP;
    let mut out = Html::with_capacity(graph.task_count() * 600);
    html!(
        out,
        "<div class=\"scroll\"><svg class=\"graph\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"group\" aria-label=\"task graph\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
         <path d=\"M 0 0 L 10 5 L 0 10 z\" class=\"edge-head\"></path></marker></defs>",
        width,
        height,
        width,
        height
    );
    for edge in &graph.edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) =
            (place.get(edge.from.as_str()), place.get(edge.to.as_str()))
        else {
            continue;
        };
        let (sx, sy) = (x1 + NODE_W, y1 + NODE_H / 2);
        let (tx, ty) = (x2, y2 + NODE_H / 2);
        let bend = (tx - sx).max(40) / 2;
        html!(
            out,
            "<path class=\"edge\" marker-end=\"url(#arrow)\" d=\"M {} {} C {} {}, {} {}, {} {}\"><title>{} → {}</title></path>",
            sx,
            sy,
            sx + bend,
            sy,
            tx - bend,
            ty,
            tx,
            ty,
            edge.from,
            edge.to
        );
        if !edge.artifacts.is_empty() {
            html!(
                out,
                "<text class=\"edge-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                (sx + tx) / 2,
                (sy + ty) / 2 - 4,
                truncate(&edge.artifacts.join(", "), 16)
            );
        }
    }
    for node in graph.levels.iter().flatten() {
        let Some(&(x, y)) = place.get(node.id.as_str()) else {
            continue;
        };
        let (word, reason) = state_of(states, &node.id);
        let title = match reason {
            Some(reason) => format!("{}: {} — {reason}", node.id, status_label(&word)),
            None => format!("{}: {}", node.id, status_label(&word)),
        };
        let href = links.href(&node.id);
        if let Some(href) = &href {
            html!(out, "<a href=\"{}\">", href);
        }
        html!(
            out,
            "<g class=\"node\" data-task=\"{}\" data-status=\"{}\"><title>{}</title>\
             <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"6\"></rect>\
             <text x=\"{}\" y=\"{}\">{}</text><text class=\"op\" x=\"{}\" y=\"{}\">{}</text>\
             <text class=\"state\" data-role=\"state\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text></g>",
            node.id,
            word,
            title,
            x,
            y,
            NODE_W,
            NODE_H,
            x + 8,
            y + 18,
            truncate(&node.id, 24),
            x + 8,
            y + 36,
            truncate(&node.operator, 16),
            x + NODE_W - 8,
            y + 36,
            status_label(&word)
        );
        if href.is_some() {
            html!(out, "</a>");
        }
    }
    html!(out, "</svg></div>");
    out
}

fn levels(
    graph: &DagGraph,
    states: &BTreeMap<String, TaskState>,
    links: &TaskLinks<'_>,
    only_level: Option<usize>,
    level_href: &dyn Fn(usize) -> Html,
) -> Html {
    let listed = graph.task_count() <= LISTED_MAX_TASKS;
    let mut out = Html::new();
    html!(
        out,
        "<p class=\"muted\">{} tasks in {} levels: too many to draw, so each level is collapsed with a count of its tasks by status. Open a level to see its tasks.</p><div class=\"levels\">",
        graph.task_count(),
        graph.levels.len()
    );
    for (number, level) in graph.levels.iter().enumerate() {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for node in level {
            *counts.entry(state_of(states, &node.id).0).or_default() += 1;
        }
        let summary: Vec<String> = counts
            .iter()
            .map(|(word, n)| format!("{n} {}", status_label(word)))
            .collect();
        let open = only_level == Some(number);
        html!(
            out,
            "<details class=\"level\"{}><summary>Level {} — {} tasks: <span data-level-counts=\"{}\">{}</span></summary>",
            if open {
                Some(Html::from_static(" open"))
            } else {
                None
            },
            number,
            level.len(),
            number,
            summary.join(", ")
        );
        if listed || open {
            html!(out, "<div class=\"chips\">");
            for node in level {
                let (word, reason) = state_of(states, &node.id);
                let href = links
                    .href(&node.id)
                    .unwrap_or_else(|| Html::from_static("#"));
                html!(
                    out,
                    "<a class=\"chip\" href=\"{}\" data-task=\"{}\" data-level=\"{}\" data-status=\"{}\" title=\"{}: {} {}\">{}</a>",
                    href,
                    node.id,
                    number,
                    word,
                    node.id,
                    status_label(&word),
                    reason,
                    node.id
                );
            }
            html!(out, "</div>");
        } else {
            html!(
                out,
                "<p><a href=\"{}\">List the {} tasks of level {}</a></p>",
                level_href(number),
                level.len(),
                number
            );
        }
        html!(out, "</details>");
    }
    html!(out, "</div>");
    out
}
