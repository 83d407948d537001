//! `dag plan` and `dag graph`.

use super::args::{Global, GraphArgs, GraphFormat, PlanArgs};
use super::workspace::{load, parse_param_overrides};
use super::{CliResult, Exit, Failure};
use crate::plan::{EdgeKind, Plan, build_plan};

fn planned(
    global: &Global,
    dag: &str,
    params: &[String],
) -> Result<(std::sync::Arc<crate::model::Dag>, Plan), Failure> {
    let registry = crate::ops::registry();
    let mut dag = load(global, dag, &registry)?;
    let mut values = dag.params.clone();
    for (key, value) in parse_param_overrides(params)? {
        if !values.contains_key(&key) {
            return Err(Failure::invalid(format!("unknown param `{key}`")));
        }
        values.insert(key, value);
    }
    // A task mapping over a param has one instance per value of these.
    if let Some(expanded) =
        crate::parse::expand_for_run(&dag, &values, &Default::default(), &registry)
            .map_err(|d| Failure::invalid(crate::execute::ExecuteError::from_map(&d).to_string()))?
    {
        dag = std::sync::Arc::new(expanded);
    }
    let plan = build_plan(&dag, &values).map_err(|cycles| {
        Failure::invalid(format!(
            "dependency cycle: {}",
            crate::plan::describe_cycles(&cycles)
        ))
    })?;
    Ok((dag, plan))
}

pub fn plan(global: &Global, args: &PlanArgs) -> CliResult {
    if args.why {
        return super::why::why(
            global,
            &super::why::WhyArgs {
                dag: &args.dag,
                params: &args.params,
                only: &[],
                force: args.force,
                force_tasks: &args.force_tasks,
                json: args.json,
            },
        );
    }
    let (dag, plan) = planned(global, &args.dag, &args.params)?;
    if args.json {
        let tasks: Vec<_> = plan
            .order
            .iter()
            .map(|&t| {
                let task = &dag.tasks[&plan.ids[t]];
                let mut json = serde_json::json!({
                    "id": plan.ids[t],
                    "operator": task.operator,
                    "upstream": plan.upstream[t].iter().map(|&u| plan.ids[u].clone()).collect::<Vec<_>>(),
                });
                if let Some(from) = maps_over(task) {
                    json["maps_over"] = serde_json::Value::String(from.to_string());
                }
                json
            })
            .collect();
        let levels: Vec<Vec<&String>> = plan
            .levels
            .iter()
            .map(|l| l.iter().map(|&t| &plan.ids[t]).collect())
            .collect();
        let json = serde_json::json!({ "dag": dag.name, "levels": levels, "tasks": tasks });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
        return Ok(Exit::Success);
    }
    println!(
        "{}: {} tasks in {} levels",
        dag.name,
        plan.len(),
        plan.levels.len()
    );
    for (depth, level) in plan.levels.iter().enumerate() {
        let names: Vec<String> = level
            .iter()
            .map(|&t| format!("{} ({})", plan.ids[t], kind(&dag.tasks[&plan.ids[t]])))
            .collect();
        println!("  level {depth}: {}", names.join(", "));
    }
    Ok(Exit::Success)
}

pub fn graph(global: &Global, args: &GraphArgs) -> CliResult {
    let (dag, plan) = planned(global, &args.dag, &[])?;
    let text = match args.format {
        GraphFormat::Mermaid => mermaid(&dag, &plan),
        GraphFormat::Dot => dot(&dag, &plan),
    };
    print!("{text}");
    Ok(Exit::Success)
}

/// The upstream list a task maps over, expanded only when a run has it.
fn maps_over(task: &crate::model::Task) -> Option<&crate::model::MapFrom> {
    task.map.as_ref().and_then(|m| m.from.as_ref())
}

/// A task's operator, and the list it maps over at run time if any: `shell,
/// one per tasks.list.outputs.parts`.
fn kind(task: &crate::model::Task) -> String {
    match maps_over(task) {
        Some(from) => format!("{}, one per {from}", task.operator),
        None => task.operator.clone(),
    }
}

fn edge_label(kinds: &[EdgeKind]) -> Option<String> {
    let artifacts = crate::views::edge_artifacts(kinds);
    (!artifacts.is_empty()).then(|| artifacts.join(", "))
}

pub fn mermaid(dag: &crate::model::Dag, plan: &Plan) -> String {
    // A task id that Mermaid cannot take as a node id (a mapped task's
    // instance, `train[n_trees=100]`) is drawn by its plan position.
    let node = |t: usize| {
        let id = &plan.ids[t];
        if id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            id.clone()
        } else {
            format!("t{t}")
        }
    };
    let mut out = String::from("flowchart LR\n");
    for &t in &plan.order {
        let id = &plan.ids[t];
        out.push_str(&format!(
            "  {}[\"{}<br/><small>{}</small>\"]\n",
            node(t),
            id.replace('"', "#quot;"),
            kind(&dag.tasks[id])
        ));
    }
    for ((from, to), kinds) in &plan.edges {
        match edge_label(kinds) {
            Some(label) => out.push_str(&format!("  {} -->|{label}| {}\n", node(*from), node(*to))),
            None => out.push_str(&format!("  {} --> {}\n", node(*from), node(*to))),
        }
    }
    out
}

fn dot(dag: &crate::model::Dag, plan: &Plan) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];\n",
        dag.name
    );
    for &t in &plan.order {
        let id = &plan.ids[t];
        out.push_str(&format!(
            "  \"{id}\" [label=\"{id}\\n{}\"];\n",
            kind(&dag.tasks[id])
        ));
    }
    for ((from, to), kinds) in &plan.edges {
        let label = edge_label(kinds)
            .map(|l| format!(" [label=\"{l}\"]"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  \"{}\" -> \"{}\"{label};\n",
            plan.ids[*from], plan.ids[*to]
        ));
    }
    out.push_str("}\n");
    out
}
