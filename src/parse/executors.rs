//! `executors:` — the named executors a DAG file declares, and the check
//! that every task's `executor:` names one of them (or `local`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::fields::{Fields, is_identifier, wrong_type};
use super::node::{Node, Value};
use super::{Diagnostic, SourceFile, did_you_mean};
use crate::model::{
    Dag, Executor, ExecutorKind, LOCAL_EXECUTOR, RayExecutor, parse_byte_size, ray_host_port,
};

pub const EXECUTOR_KEYS: &[&str] = &[
    "kind",
    "address",
    "num_cpus",
    "num_gpus",
    "memory",
    "resources",
    "runtime_env",
    "dag_binary",
    "poll_interval",
];

const KINDS: &[&str] = &["ray"];

/// The shortest status poll allowed: faster only loads the head.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Reads the `executors:` mapping.
pub fn read_executors(
    source: &Arc<SourceFile>,
    node: &Node,
    diagnostics: &mut Vec<Diagnostic>,
) -> BTreeMap<String, Executor> {
    let mut executors = BTreeMap::new();
    let Value::Map(entries) = &node.value else {
        diagnostics.push(wrong_type(
            source,
            node,
            "a mapping of name → executor",
            "`executors`",
        ));
        return executors;
    };
    for (key, body) in entries {
        let name = key.scalar_text();
        if !is_identifier(&name) {
            diagnostics.push(
                Diagnostic::new(
                    "dag::invalid_name",
                    format!("executor name `{name}` is not a valid identifier"),
                )
                .at(source, key.span)
                .help("use lowercase letters, digits and `_`, starting with a letter"),
            );
            continue;
        }
        if name == LOCAL_EXECUTOR {
            diagnostics.push(
                Diagnostic::new(
                    "dag::reserved_name",
                    "`local` is the built-in executor and cannot be redeclared",
                )
                .at(source, key.span)
                .help("give this executor another name, such as `cluster`"),
            );
            continue;
        }
        if let Some(executor) = read_executor(source, &name, body, diagnostics) {
            executors.insert(name, executor);
        }
    }
    executors
}

fn read_executor(
    source: &Arc<SourceFile>,
    name: &str,
    body: &Node,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Executor> {
    let what = format!("executor `{name}`");
    let fields = Fields::read(source, body, EXECUTOR_KEYS, &what, diagnostics)?;
    let kind = fields.string("kind", diagnostics);
    match kind.as_deref() {
        Some("ray") => {}
        Some(other) => {
            let span = fields.node("kind").map_or(body.span, |n| n.span);
            diagnostics.push(
                Diagnostic::new(
                    "dag::unknown_executor_kind",
                    format!("unknown executor kind `{other}`"),
                )
                .at(source, span)
                .maybe_help(did_you_mean(other, KINDS.iter().copied()))
                .help(format!("one of: {}", KINDS.join(", "))),
            );
            return None;
        }
        None => {
            if fields.node("kind").is_none() {
                diagnostics.push(
                    Diagnostic::new("dag::missing_key", format!("{what} has no `kind`"))
                        .at(source, body.span)
                        .help("add `kind: ray`"),
                );
            }
            return None;
        }
    }
    let address = read_address(&fields, &what, body, diagnostics);
    let num_cpus = amount(&fields, "num_cpus", diagnostics);
    let num_gpus = amount(&fields, "num_gpus", diagnostics);
    let memory = read_memory(&fields, diagnostics);
    let resources = read_resources(&fields, diagnostics);
    let runtime_env = match fields.node("runtime_env") {
        None => serde_json::Map::new(),
        Some(node) => match node.to_json() {
            serde_json::Value::Object(map) => map,
            _ => {
                diagnostics.push(wrong_type(source, node, "a mapping", "`runtime_env`"));
                serde_json::Map::new()
            }
        },
    };
    let dag_binary = fields.string("dag_binary", diagnostics).map(PathBuf::from);
    let poll_interval = match fields.duration("poll_interval", diagnostics) {
        Some(interval) if interval < MIN_POLL_INTERVAL => {
            let span = fields.node("poll_interval").map_or(body.span, |n| n.span);
            diagnostics.push(
                Diagnostic::new(
                    "dag::bad_value",
                    "`poll_interval` must be at least 10ms".to_string(),
                )
                .at(source, span),
            );
            RayExecutor::DEFAULT_POLL_INTERVAL
        }
        Some(interval) => interval,
        None => RayExecutor::DEFAULT_POLL_INTERVAL,
    };
    Some(Executor {
        name: name.to_string(),
        kind: ExecutorKind::Ray(RayExecutor {
            address: address?,
            num_cpus,
            num_gpus,
            memory,
            resources,
            runtime_env,
            dag_binary,
            poll_interval,
        }),
    })
}

fn read_address(
    fields: &Fields<'_>,
    what: &str,
    body: &Node,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<String> {
    let Some(node) = fields.node("address") else {
        diagnostics.push(
            Diagnostic::new("dag::missing_key", format!("{what} has no `address`"))
                .at(fields.file, body.span)
                .help("add `address: \"http://127.0.0.1:8265\"` (the head's dashboard port)"),
        );
        return None;
    };
    let address = fields.string("address", diagnostics)?;
    if ray_host_port(&address).is_none() {
        diagnostics.push(
            Diagnostic::new(
                "dag::bad_address",
                format!("`{address}` is not an `http://host:port` address"),
            )
            .at(fields.file, node.span)
            .help("write the head's dashboard address, such as `http://127.0.0.1:8265`; HTTPS is not supported (use a tunnel or a proxy)"),
        );
        return None;
    }
    Some(address)
}

/// A finite, non-negative number (`num_cpus: 0.5`).
fn amount(fields: &Fields<'_>, key: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<f64> {
    let value = fields.number(key, diagnostics)?;
    if value.is_finite() && value >= 0.0 {
        return Some(value);
    }
    let span = fields.node(key).map(|n| n.span).unwrap_or_default();
    diagnostics.push(
        Diagnostic::new(
            "dag::bad_value",
            format!("`{key}` must be a finite number of at least 0, found {value}"),
        )
        .at(fields.file, span),
    );
    None
}

fn read_memory(fields: &Fields<'_>, diagnostics: &mut Vec<Diagnostic>) -> Option<u64> {
    let node = fields.node("memory")?;
    let parsed = match &node.value {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        Value::Str(text) => parse_byte_size(text),
        _ => Err(format!(
            "expected a size such as `2GiB`, found {}",
            node.kind()
        )),
    };
    parsed
        .map_err(|message| {
            diagnostics.push(
                Diagnostic::new("dag::bad_value", format!("bad `memory`: {message}"))
                    .at(fields.file, node.span)
                    .help("write bytes or a size with a unit: `512MiB`, `2GiB`"),
            );
        })
        .ok()
}

fn read_resources(fields: &Fields<'_>, diagnostics: &mut Vec<Diagnostic>) -> BTreeMap<String, f64> {
    let mut resources = BTreeMap::new();
    let Some(node) = fields.node("resources") else {
        return resources;
    };
    let Value::Map(entries) = &node.value else {
        diagnostics.push(wrong_type(
            fields.file,
            node,
            "a mapping of resource → amount",
            "`resources`",
        ));
        return resources;
    };
    for (key, value) in entries {
        let amount = match value.value {
            Value::Int(i) if i >= 0 => Some(i as f64),
            Value::Float(f) if f.is_finite() && f >= 0.0 => Some(f),
            _ => None,
        };
        match amount {
            Some(amount) => {
                resources.insert(key.scalar_text(), amount);
            }
            None => diagnostics.push(wrong_type(
                fields.file,
                value,
                "a number of at least 0",
                &format!("resource `{}`", key.scalar_text()),
            )),
        }
    }
    resources
}

/// Every task's `executor` names a declared executor or `local`.
pub fn check_executor_names(dag: &Dag, diagnostics: &mut Vec<Diagnostic>) {
    for task in dag.tasks.values() {
        let Some(name) = &task.executor else {
            continue;
        };
        if name == LOCAL_EXECUTOR || dag.executors.contains_key(name) {
            continue;
        }
        let (span, label) = match task.origin.fields.get("executor") {
            Some(span) => (*span, "not a declared executor"),
            None => (task.origin.key, "named by `defaults.executor`"),
        };
        let known: Vec<&str> = dag
            .executors
            .keys()
            .map(String::as_str)
            .chain([LOCAL_EXECUTOR])
            .collect();
        diagnostics.push(
            Diagnostic::new(
                "dag::unknown_executor",
                format!("task `{}` names unknown executor `{name}`", task.id),
            )
            .at(&task.origin.file, span)
            .label(label)
            .maybe_help(did_you_mean(name, known.iter().copied()))
            .help(format!(
                "declare it under `executors:`, or use one of: {}",
                known.join(", ")
            )),
        );
    }
}

#[cfg(test)]
#[path = "executors_tests.rs"]
mod tests;
