//! A lineage graph drawn left to right: the raw files nobody produced in
//! the first column, then the tasks and artifacts made from them, and the
//! model version last. Tasks link to their run, the model to its page.

use std::collections::HashMap;

use crate::lineage::{LineageGraph, Node, NodeKind};
use crate::ui::html::{Html, Seg, html};
use crate::ui::layout::short_digest;
use crate::views::lineage::LineageLayout;

const NODE_W: i64 = 220;
const NODE_H: i64 = 40;
const COL_GAP: i64 = 40;
const ROW_GAP: i64 = 12;

fn label(node: &Node) -> (String, String) {
    match node.kind {
        NodeKind::Artifact => (
            node.path
                .clone()
                .unwrap_or_else(|| "(unnamed artifact)".into()),
            node.digest
                .as_deref()
                .map(|d| format!("blake3 {}", short_digest(d)))
                .unwrap_or_default(),
        ),
        NodeKind::Task => (
            node.task_id.clone().unwrap_or_default(),
            format!("run {}", node.run_id.as_deref().unwrap_or("?")),
        ),
        NodeKind::Model => (
            node.model.clone().unwrap_or_default(),
            "model version".into(),
        ),
    }
}

fn truncate_left(text: &str, chars: usize) -> String {
    let count = text.chars().count();
    if count <= chars {
        text.to_string()
    } else {
        let tail: String = text.chars().skip(count - chars + 1).collect();
        format!("…{tail}")
    }
}

fn href(node: &Node) -> Option<Html> {
    let mut out = Html::new();
    match node.kind {
        NodeKind::Task => {
            let (run, task) = (node.run_id.as_deref()?, node.task_id.as_deref()?);
            html!(out, "/runs/{}#task-{}", Seg(run), Seg(task));
        }
        NodeKind::Model => {
            let (name, version) = node.model.as_deref()?.split_once('@')?;
            html!(out, "/models/{}/versions/{}", Seg(name), Seg(version));
        }
        NodeKind::Artifact => return None,
    }
    Some(out)
}

pub fn lineage_graph(graph: &LineageGraph) -> Html {
    let layout = LineageLayout::new(graph);
    let mut place: HashMap<&str, (i64, i64)> = HashMap::new();
    let tallest = layout.columns.iter().map(Vec::len).max().unwrap_or(1) as i64;
    for (column, nodes) in layout.columns.iter().enumerate() {
        for (row, &index) in nodes.iter().enumerate() {
            place.insert(
                graph.nodes[index].id.as_str(),
                (
                    8 + column as i64 * (NODE_W + COL_GAP),
                    8 + row as i64 * (NODE_H + ROW_GAP),
                ),
            );
        }
    }
    let width = 16 + (layout.columns.len() as i64).max(1) * (NODE_W + COL_GAP) - COL_GAP;
    let height = 16 + tallest.max(1) * (NODE_H + ROW_GAP) - ROW_GAP;
    let mut out = Html::new();
    html!(
        out,
        "<svg class=\"graph lineage\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"group\" aria-label=\"lineage graph\">",
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
        let (sx, sy, tx, ty) = (x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2);
        let bend = (tx - sx).max(30) / 2;
        html!(
            out,
            "<path class=\"edge\" d=\"M {} {} C {} {}, {} {}, {} {}\"><title>{}</title></path>",
            sx,
            sy,
            sx + bend,
            sy,
            tx - bend,
            ty,
            tx,
            ty,
            crate::ui::layout::status_word(&edge.relation)
        );
    }
    for node in &graph.nodes {
        let Some(&(x, y)) = place.get(node.id.as_str()) else {
            continue;
        };
        let (main, sub) = label(node);
        let class = match node.kind {
            NodeKind::Artifact => "lineage-artifact",
            NodeKind::Task => "lineage-task",
            NodeKind::Model => "lineage-model",
        };
        let link = href(node);
        if let Some(link) = &link {
            html!(out, "<a href=\"{}\">", link);
        }
        html!(
            out,
            "<g class=\"{}\" data-node=\"{}\"><title>{} {}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"5\"></rect>\
             <text x=\"{}\" y=\"{}\">{}</text><text class=\"sub\" x=\"{}\" y=\"{}\">{}</text></g>",
            class,
            node.id,
            main,
            node.digest.as_deref().unwrap_or(&sub),
            x,
            y,
            NODE_W,
            NODE_H,
            x + 8,
            y + 17,
            truncate_left(&main, 28),
            x + 8,
            y + 32,
            truncate_left(&sub, 34)
        );
        if link.is_some() {
            html!(out, "</a>");
        }
    }
    html!(out, "</svg>");
    out
}
