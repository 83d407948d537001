//! [`build_file`]: one DAG file's YAML tree → a [`FileSpec`], collecting
//! every problem the file alone can show (keys, types, names, durations,
//! cron lines, template syntax). Cross-file and cross-task checks come later
//! in `checker`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::fields::{Fields, is_identifier, string_list, wrong_type};
use super::hooks_reader::read_hooks;
use super::node::{Node, Value};
use super::{Diagnostic, SourceFile, Span, did_you_mean};
use crate::model::parse_timezone;
use crate::model::{
    Catchup, Condition, Overlap, Retry, Schedule, Task, TaskOrigin, TriggerRule, normalize_cron,
};

pub const DAG_KEYS: &[&str] = &[
    "name",
    "description",
    "include",
    "params",
    "defaults",
    "max_parallel",
    "schedule",
    "watch",
    "resume_interrupted",
    "executors",
    "tasks",
    "on_failure",
    "on_success",
    "on_retry",
    "on_sla_miss",
    "sla",
    "secrets",
];
pub const TASK_KEYS: &[&str] = &[
    "operator",
    "description",
    "needs",
    "inputs",
    "outputs",
    "params",
    "retries",
    "retry_delay",
    "retry_backoff",
    "retry_max_delay",
    "timeout",
    "trigger_rule",
    "when",
    "cache",
    "on_failure",
    "on_success",
    "on_retry",
    "on_sla_miss",
    "sla",
    "executor",
    "values",
    "map",
];
pub const DEFAULTS_KEYS: &[&str] = &[
    "retries",
    "retry_delay",
    "retry_backoff",
    "retry_max_delay",
    "timeout",
    "trigger_rule",
    "cache",
    "executor",
];
pub const SCHEDULE_KEYS: &[&str] = &["cron", "timezone", "catchup", "max_active_runs", "overlap"];
pub const INCLUDE_KEYS: &[&str] = &["file", "needs"];

/// An `include:` entry.
#[derive(Debug, Clone)]
pub struct Include {
    pub file: String,
    pub span: Span,
    /// Extra upstream ids for the included file's root tasks.
    pub needs: Vec<(String, Span)>,
}

/// One file's contents, before includes are merged.
#[derive(Debug)]
pub struct FileSpec {
    pub source: Arc<SourceFile>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub params: BTreeMap<String, serde_json::Value>,
    pub max_parallel: Option<usize>,
    pub schedule: Option<Schedule>,
    pub watch: Vec<String>,
    pub resume_interrupted: bool,
    pub hooks: crate::model::Hooks,
    pub secrets: BTreeMap<String, crate::model::SecretSource>,
    pub executors: BTreeMap<String, crate::model::Executor>,
    pub tasks: Vec<Task>,
    pub includes: Vec<Include>,
}

pub fn build_file(
    source: &Arc<SourceFile>,
    mut root: Node,
    diagnostics: &mut Vec<Diagnostic>,
) -> FileSpec {
    // Taken out, so that each task keeps its own body without a copy.
    let tasks = take_entry(&mut root, "tasks");
    let root = &root;
    let mut spec = FileSpec {
        source: Arc::clone(source),
        name: None,
        description: None,
        params: BTreeMap::new(),
        max_parallel: None,
        schedule: None,
        watch: Vec::new(),
        resume_interrupted: false,
        hooks: crate::model::Hooks::default(),
        secrets: BTreeMap::new(),
        executors: BTreeMap::new(),
        tasks: Vec::new(),
        includes: Vec::new(),
    };
    if root.value == Value::Null {
        diagnostics.push(
            Diagnostic::new("dag::empty_file", "the DAG file is empty")
                .help("a DAG needs `name` and `tasks`"),
        );
        return spec;
    }
    let Some(fields) = Fields::read(source, root, DAG_KEYS, "the DAG", diagnostics) else {
        return spec;
    };
    spec.name = fields.string("name", diagnostics);
    if let (Some(name), Some(node)) = (&spec.name, fields.node("name"))
        && !is_identifier(name)
    {
        diagnostics.push(invalid_name(source, node.span, "DAG name", name));
    }
    spec.description = fields.string("description", diagnostics);
    spec.max_parallel = fields
        .unsigned_u32("max_parallel", diagnostics)
        .map(|n| usize::try_from(n.max(1)).unwrap_or(usize::MAX));
    spec.watch = fields
        .strings("watch", diagnostics)
        .into_iter()
        .map(|(glob, _)| glob)
        .collect();
    spec.resume_interrupted = fields
        .boolean("resume_interrupted", diagnostics)
        .unwrap_or(false);
    spec.params = read_params(&fields, diagnostics);
    spec.hooks = read_hooks(&fields, diagnostics);
    spec.secrets = fields
        .node("secrets")
        .map(|node| read_secrets(source, node, diagnostics))
        .unwrap_or_default();
    spec.schedule = fields
        .node("schedule")
        .and_then(|node| read_schedule(source, node, diagnostics));
    spec.includes = fields
        .node("include")
        .map(|node| read_includes(source, node, diagnostics))
        .unwrap_or_default();
    spec.executors = fields
        .node("executors")
        .map(|node| super::executors::read_executors(source, node, diagnostics))
        .unwrap_or_default();
    let defaults = TaskDefaults::read(source, fields.node("defaults"), diagnostics);
    match tasks {
        Some(tasks) => spec.tasks = read_tasks(source, tasks, &defaults, diagnostics),
        None if spec.includes.is_empty() => diagnostics.push(
            Diagnostic::new("dag::missing_key", "the DAG has no `tasks`")
                .at(source, Span::new(0, 1))
                .help("add `tasks:` with at least one task, or `include:` other DAG files"),
        ),
        None => {}
    }
    if spec.name.is_none() && !diagnostics.iter().any(|d| d.code == "dag::wrong_type") {
        diagnostics.push(
            Diagnostic::new("dag::missing_key", "the DAG has no `name`")
                .at(source, Span::new(0, 1))
                .help("add `name: my_dag` (lowercase letters, digits and `_`)"),
        );
    }
    spec
}

/// `secrets:`: name → `{env: VAR}` or `{file: path}`.
fn read_secrets(
    source: &Arc<SourceFile>,
    node: &Node,
    diagnostics: &mut Vec<Diagnostic>,
) -> BTreeMap<String, crate::model::SecretSource> {
    use crate::model::SecretSource;
    let mut secrets = BTreeMap::new();
    let Value::Map(entries) = &node.value else {
        diagnostics.push(wrong_type(
            source,
            node,
            "a mapping of name: {env: VAR} or {file: path}",
            "`secrets`",
        ));
        return secrets;
    };
    for (key, value) in entries {
        let name = key.scalar_text();
        if !is_identifier(&name) {
            diagnostics.push(invalid_name(source, key.span, "secret", &name));
            continue;
        }
        let what = format!("secret `{name}`");
        let Some(fields) = Fields::read(source, value, &["env", "file"], &what, diagnostics) else {
            continue;
        };
        let found = match (
            fields.string("env", diagnostics),
            fields.string("file", diagnostics),
        ) {
            (Some(var), None) if !var.is_empty() => SecretSource::Env(var),
            (None, Some(path)) if !path.is_empty() => SecretSource::File(path),
            _ => {
                diagnostics.push(
                    Diagnostic::new(
                        "dag::bad_value",
                        format!("{what} needs exactly one of `env` or `file`"),
                    )
                    .at(source, value.span)
                    .help("write `{ env: WAREHOUSE_PASSWORD }` or `{ file: secrets/token.txt }`"),
                );
                continue;
            }
        };
        secrets.insert(name, found);
    }
    secrets
}

fn invalid_name(source: &Arc<SourceFile>, span: Span, what: &str, name: &str) -> Diagnostic {
    Diagnostic::new(
        "dag::invalid_name",
        format!("{what} `{name}` is not a valid identifier"),
    )
    .at(source, span)
    .help("use lowercase letters, digits and `_`, starting with a letter")
}

fn read_params(
    fields: &Fields<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> BTreeMap<String, serde_json::Value> {
    let mut params = BTreeMap::new();
    let Some(node) = fields.node("params") else {
        return params;
    };
    let Value::Map(entries) = &node.value else {
        diagnostics.push(wrong_type(fields.file, node, "a mapping", "`params`"));
        return params;
    };
    for (key, value) in entries {
        let name = key.scalar_text();
        if !is_identifier(&name) {
            diagnostics.push(invalid_name(fields.file, key.span, "param", &name));
        } else if params.insert(name.clone(), value.to_json()).is_some() {
            diagnostics.push(
                Diagnostic::new(
                    "dag::duplicate_key",
                    format!("param `{name}` is declared twice"),
                )
                .at(fields.file, key.span),
            );
        }
    }
    params
}

fn read_schedule(
    source: &Arc<SourceFile>,
    node: &Node,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Schedule> {
    let (expression, expression_node, fields) = match &node.value {
        Value::Str(text) => (text.clone(), node, None),
        Value::Map(_) => {
            let fields = Fields::read(source, node, SCHEDULE_KEYS, "`schedule`", diagnostics)?;
            let Some(cron_node) = fields.node("cron") else {
                diagnostics.push(
                    Diagnostic::new("dag::missing_key", "`schedule` has no `cron` line")
                        .at(source, node.span),
                );
                return None;
            };
            (fields.string("cron", diagnostics)?, cron_node, Some(fields))
        }
        _ => {
            diagnostics.push(wrong_type(
                source,
                node,
                "a cron line or a mapping",
                "`schedule`",
            ));
            return None;
        }
    };
    let cron = normalize_cron(&expression)
        .map_err(|message| {
            diagnostics.push(
                Diagnostic::new("dag::bad_cron", format!("bad cron expression `{expression}`: {message}"))
                    .at(source, expression_node.span)
                    .help("write 5 fields `minute hour day month weekday` (0 = Sunday), 6 with seconds first, or `@daily`"),
            );
        })
        .ok()?;
    let mut schedule = Schedule {
        expression,
        cron,
        timezone: None,
        catchup: Catchup::default(),
        max_active_runs: 1,
        overlap: Overlap::default(),
    };
    if let Some(fields) = fields {
        schedule.timezone = read_timezone(source, &fields, diagnostics);
        if let Some(n) = fields.unsigned_u32("max_active_runs", diagnostics) {
            schedule.max_active_runs = n.max(1);
        }
        let choices = |key: &str, names: &[&'static str], diagnostics: &mut Vec<Diagnostic>| {
            let text = fields.string(key, diagnostics)?;
            let found = names.iter().position(|n| *n == text);
            if found.is_none() {
                let node = fields.node(key).map_or(node.span, |n| n.span);
                diagnostics.push(
                    Diagnostic::new(
                        "dag::unknown_choice",
                        format!("unknown `{key}` value `{text}`"),
                    )
                    .at(source, node)
                    .help(format!("one of: {}", names.join(", "))),
                );
            }
            found
        };
        if let Some(i) = choices("catchup", &["none", "last", "all"], diagnostics) {
            schedule.catchup = [Catchup::None, Catchup::Last, Catchup::All][i];
        }
        if let Some(i) = choices(
            "overlap",
            &["skip", "queue", "cancel_previous"],
            diagnostics,
        ) {
            schedule.overlap = [Overlap::Skip, Overlap::Queue, Overlap::CancelPrevious][i];
        }
    }
    Some(schedule)
}

/// The `timezone:` of a schedule, checked against the tz database so an
/// unknown zone is a load-time error rather than a daemon that quietly
/// fires in UTC.
fn read_timezone(
    source: &Arc<SourceFile>,
    fields: &Fields<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<String> {
    let name = fields.string("timezone", diagnostics)?;
    if parse_timezone(&name).is_some() {
        return Some(name);
    }
    let span = fields.node("timezone").map(|node| node.span)?;
    diagnostics.push(
        Diagnostic::new(
            "dag::unknown_timezone",
            format!("unknown timezone `{name}`"),
        )
        .at(source, span)
        .maybe_help(did_you_mean(
            &name,
            chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()),
        ))
        .help("write an IANA name such as `UTC`, `Europe/Paris` or `America/New_York`"),
    );
    None
}

fn read_includes(
    source: &Arc<SourceFile>,
    node: &Node,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Include> {
    let Value::Seq(items) = &node.value else {
        diagnostics.push(wrong_type(source, node, "a list", "`include`"));
        return Vec::new();
    };
    let mut includes = Vec::new();
    for item in items {
        match &item.value {
            Value::Str(file) => includes.push(Include {
                file: file.clone(),
                span: item.span,
                needs: Vec::new(),
            }),
            Value::Map(_) => {
                let Some(fields) = Fields::read(
                    source,
                    item,
                    INCLUDE_KEYS,
                    "an `include` entry",
                    diagnostics,
                ) else {
                    continue;
                };
                let Some(file) = fields.string("file", diagnostics) else {
                    diagnostics.push(
                        Diagnostic::new("dag::missing_key", "`include` entry has no `file`")
                            .at(source, item.span),
                    );
                    continue;
                };
                let needs = fields
                    .strings("needs", diagnostics)
                    .into_iter()
                    .map(|(id, n)| (id, n.span))
                    .collect();
                includes.push(Include {
                    file,
                    span: fields.node("file").map_or(item.span, |n| n.span),
                    needs,
                });
            }
            _ => diagnostics.push(wrong_type(
                source,
                item,
                "a file path or `{file, needs}`",
                "`include` items",
            )),
        }
    }
    includes
}

/// `defaults:` — task settings applied where a task says nothing.
#[derive(Default)]
struct TaskDefaults {
    retry: Retry,
    timeout: Option<std::time::Duration>,
    trigger_rule: TriggerRule,
    cache: bool,
    executor: Option<String>,
}

impl TaskDefaults {
    fn read(
        source: &Arc<SourceFile>,
        node: Option<&Node>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Self {
        let mut defaults = Self {
            cache: true,
            ..Self::default()
        };
        let Some(node) = node else { return defaults };
        let Some(fields) = Fields::read(source, node, DEFAULTS_KEYS, "`defaults`", diagnostics)
        else {
            return defaults;
        };
        defaults.retry = read_retry(&fields, &defaults.retry, diagnostics);
        defaults.timeout = fields.duration("timeout", diagnostics);
        defaults.trigger_rule = read_trigger_rule(&fields, diagnostics).unwrap_or_default();
        defaults.cache = fields.boolean("cache", diagnostics).unwrap_or(true);
        defaults.executor = fields.string("executor", diagnostics);
        defaults
    }
}

fn read_retry(fields: &Fields<'_>, base: &Retry, diagnostics: &mut Vec<Diagnostic>) -> Retry {
    let mut retry = base.clone();
    if let Some(n) = fields.unsigned_u32("retries", diagnostics) {
        retry.retries = n;
    }
    if let Some(d) = fields.duration("retry_delay", diagnostics) {
        retry.delay = d;
    }
    if let Some(b) = fields.number("retry_backoff", diagnostics) {
        if !(b.is_finite() && b >= 1.0) {
            let span = fields
                .node("retry_backoff")
                .map_or(Span::default(), |n| n.span);
            diagnostics.push(
                Diagnostic::new(
                    "dag::bad_value",
                    format!("`retry_backoff` must be a finite number of at least 1, found {b}"),
                )
                .at(fields.file, span),
            );
        } else {
            retry.backoff = b;
        }
    }
    if let Some(d) = fields.duration("retry_max_delay", diagnostics) {
        retry.max_delay = d;
    }
    retry
}

fn read_trigger_rule(
    fields: &Fields<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<TriggerRule> {
    let text = fields.string("trigger_rule", diagnostics)?;
    let parsed = text.parse::<TriggerRule>().ok();
    if parsed.is_none() {
        let span = fields
            .node("trigger_rule")
            .map_or(Span::default(), |n| n.span);
        diagnostics.push(
            Diagnostic::new(
                "dag::unknown_trigger_rule",
                format!("unknown trigger rule `{text}`"),
            )
            .at(fields.file, span)
            .maybe_help(did_you_mean(&text, TriggerRule::NAMES))
            .help(format!("one of: {}", TriggerRule::NAMES.join(", "))),
        );
    }
    parsed
}

/// The value of `key` in mapping `node`, moved out and left as a null of
/// the same span (its key stays, so key checks see it).
fn take_entry(node: &mut Node, key: &str) -> Option<Node> {
    let Value::Map(entries) = &mut node.value else {
        return None;
    };
    let (_, value) = entries.iter_mut().find(|(k, _)| k.scalar_text() == key)?;
    let hole = Node {
        value: Value::Null,
        span: value.span,
        content_offset: value.content_offset,
    };
    Some(std::mem::replace(value, hole))
}

fn read_tasks(
    source: &Arc<SourceFile>,
    node: Node,
    defaults: &TaskDefaults,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Task> {
    let entries = match node.value {
        Value::Map(entries) => entries,
        _ => {
            diagnostics.push(wrong_type(
                source,
                &node,
                "a mapping of task id → task",
                "`tasks`",
            ));
            return Vec::new();
        }
    };
    // Sized once: grown by doubling, a 100,000-task file would fault in
    // twice the vector's 77 MB.
    let mut tasks: Vec<Task> = Vec::with_capacity(entries.len());
    let mut seen = std::collections::BTreeSet::new();
    for (key, body) in entries {
        let id = key.scalar_text();
        if !is_identifier(&id) {
            diagnostics.push(invalid_name(source, key.span, "task id", &id));
            continue;
        }
        if !seen.insert(id.clone()) {
            diagnostics.push(
                Diagnostic::new(
                    "dag::duplicate_task",
                    format!("task `{id}` is defined twice"),
                )
                .at(source, key.span)
                .label("second definition"),
            );
            continue;
        }
        if let Some(task) = read_task(source, &id, key.span, body, defaults, diagnostics) {
            tasks.push(task);
        }
    }
    tasks
}

fn read_task(
    source: &Arc<SourceFile>,
    id: &str,
    key: Span,
    body: Node,
    defaults: &TaskDefaults,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Task> {
    let what = format!("task `{id}`");
    let fields = Fields::read(source, &body, TASK_KEYS, &what, diagnostics)?;
    let operator = fields.string("operator", diagnostics);
    if operator.is_none() && fields.node("operator").is_none() {
        diagnostics.push(
            Diagnostic::new("dag::missing_key", format!("task `{id}` has no `operator`"))
                .at(source, key)
                .help("add `operator: shell` (see `dag operators` for the list)"),
        );
    }
    let needs_nodes = fields
        .node("needs")
        .map(|n| string_list(source, n, "needs", diagnostics))
        .unwrap_or_default();
    let when = fields
        .string("when", diagnostics)
        .and_then(|text| match Condition::parse(&text) {
            Ok(condition) => Some(condition),
            Err(error) => {
                let span = fields.node("when").map_or(key, |n| n.span);
                diagnostics.push(
                    Diagnostic::new(
                        "dag::bad_condition",
                        format!("bad `when` condition: {error}"),
                    )
                    .at(source, span)
                    .help(
                        "write `tasks.<id>.outputs.<name>`, `not params.<name>`, or `<ref> OP <value>` with OP one of `==`, `!=`, `<`, `<=`, `>`, `>=`",
                    ),
                );
                None
            }
        });
    let origin_fields = TASK_KEYS
        .iter()
        .filter_map(|k| fields.node(k).map(|n| (*k, n.span)))
        .collect::<BTreeMap<_, _>>();
    let task = Task {
        id: id.to_string(),
        operator: operator.unwrap_or_default(),
        description: fields.string("description", diagnostics),
        needs: needs_nodes.iter().map(|(n, _)| n.clone()).collect(),
        inputs: fields
            .string_map("inputs", diagnostics)
            .into_iter()
            .map(|(k, (v, _))| (k, v))
            .collect(),
        outputs: fields
            .string_map("outputs", diagnostics)
            .into_iter()
            .map(|(k, (v, _))| (k, v))
            .collect(),
        params: fields
            .node("params")
            .map_or(serde_json::Value::Null, Node::to_json),
        retry: read_retry(&fields, &defaults.retry, diagnostics),
        timeout: fields.duration("timeout", diagnostics).or(defaults.timeout),
        trigger_rule: read_trigger_rule(&fields, diagnostics).unwrap_or(defaults.trigger_rule),
        when: when.map(Box::new),
        cache: fields
            .boolean("cache", diagnostics)
            .unwrap_or(defaults.cache),
        hooks: Box::new(read_hooks(&fields, diagnostics)),
        executor: fields
            .string("executor", diagnostics)
            .or_else(|| defaults.executor.clone()),
        map: fields
            .node("map")
            .and_then(|n| super::map_reader::read_map(source, n, diagnostics))
            .map(Box::new),
        values: fields.node("values").map(|n| {
            string_list(source, n, "values", diagnostics)
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        }),
        origin: TaskOrigin {
            file: Arc::clone(source),
            key,
            needs: needs_nodes.iter().map(|(_, n)| n.span).collect(),
            fields: origin_fields,
            body,
        },
    };
    Some(task)
}

/// Where a DAG file's relative include paths resolve from.
pub fn include_path(including: &SourceFile, file: &str) -> PathBuf {
    including
        .path
        .parent()
        .map_or_else(|| PathBuf::from(file), |dir| dir.join(file))
}
