//! [`load_dag`]: a DAG file and its includes → one checked [`Dag`], within
//! a [`Budget`] shared by every file of the load.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dag_operators::Registry;
use serde_json::Value;

use super::diagnostic::cap_per_file;
use super::file_builder::{FileSpec, build_file, include_path};
use super::limits::{Budget, LimitHit, ParseLimits};
use super::node::parse_yaml_within;
use super::source_reader::{ReadError, SourceReader};
use super::{Diagnostic, SourceFile, Span, checker};
use crate::model::Dag;

/// Returns a file's text: the DAG file first, then each include.
pub type ReadSource<'a> = dyn FnMut(&Path) -> Result<String, ReadError> + 'a;

/// Loads the DAG at `path`, reading it and its includes with `read`,
/// within the default [`ParseLimits`].
pub fn load_dag(
    path: &Path,
    read: &mut ReadSource<'_>,
    registry: &Registry,
) -> Result<Dag, Vec<Diagnostic>> {
    load_dag_within(path, read, registry, ParseLimits::default())
}

/// [`load_dag`] within `limits`. Diagnostics come sorted by file and
/// position, at most [`MAX_DIAGNOSTICS_PER_FILE`](super::MAX_DIAGNOSTICS_PER_FILE)
/// per file.
pub fn load_dag_within(
    path: &Path,
    read: &mut ReadSource<'_>,
    registry: &Registry,
    limits: ParseLimits,
) -> Result<Dag, Vec<Diagnostic>> {
    let mut budget = Budget::new(limits);
    let mut diagnostics = Vec::new();
    let text = read_within(path, read, &mut budget).map_err(|error| {
        vec![
            Diagnostic::new(
                error.code(false),
                format!("cannot read `{}`: {error}", path.display()),
            )
            .maybe_help(read_help(&error)),
        ]
    })?;
    let source = SourceFile::new(path, text);
    let mut visited = BTreeSet::from([path.to_path_buf()]);
    let Some(main) = parse_file(&source, &mut budget, &mut diagnostics) else {
        return Err(diagnostics);
    };
    let mut dag = Dag {
        name: main.name.clone().unwrap_or_default(),
        description: main.description.clone(),
        params: main.params.clone(),
        max_parallel: main.max_parallel,
        schedule: main.schedule.clone(),
        watch: main.watch.clone(),
        resume_interrupted: main.resume_interrupted,
        hooks: main.hooks.clone(),
        secrets: main.secrets.clone(),
        executors: Default::default(),
        tasks: Default::default(),
        sources: vec![Arc::clone(&source)],
        path: path.to_path_buf(),
        env: None,
        mapped: Default::default(),
        unexpanded: None,
        checked_plan: None,
    };
    let declared_by_main: BTreeSet<String> = main.params.keys().cloned().collect();
    let mut loading = Loading {
        read,
        visited: &mut visited,
        declared_by_main: &declared_by_main,
        budget: &mut budget,
        diagnostics: &mut diagnostics,
    };
    loading.merge(&mut dag, main, &[]);
    let defaults = dag.params.clone();
    super::mapping::expand(&mut dag, &defaults, &Default::default(), &mut diagnostics);
    // A file cut short by a limit would only produce follow-on errors.
    if !diagnostics.iter().any(|d| d.code == "dag::limit") {
        check_merged(&mut dag, registry, &mut diagnostics);
    }
    if diagnostics.is_empty() {
        return Ok(dag);
    }
    diagnostics.sort_by_key(|d| {
        d.location
            .as_ref()
            .map(|(file, span)| (file.path.clone(), span.offset))
    });
    Err(cap_per_file(diagnostics))
}

/// The checks of a merged (and expanded) DAG; keeps the plan the cycle
/// check built, for runs with the default params.
fn check_merged(dag: &mut Dag, registry: &Registry, diagnostics: &mut Vec<Diagnostic>) {
    let plan = checker::check(dag, registry, diagnostics);
    dag.checked_plan = plan.map(|plan| {
        Arc::new(crate::model::CheckedPlan {
            params: dag.params.clone(),
            plan: Arc::new(plan),
        })
    });
    super::executors::check_executor_names(dag, diagnostics);
}

/// `dag` expanded again for a run's `params` (defaults merged with
/// overrides and the environment's), when a task maps over a param, and
/// checked as a load checks it; `None` when no task maps over a param or
/// an upstream list. `resolved` holds the lists of tasks mapping over
/// upstream outputs that the run has so far, by task id.
pub fn expand_for_run(
    dag: &Dag,
    params: &BTreeMap<String, Value>,
    resolved: &BTreeMap<String, Vec<Value>>,
    registry: &Registry,
) -> Result<Option<Dag>, Vec<Diagnostic>> {
    let Some(mut expanded) = super::mapping::expand_with(dag, params, resolved)? else {
        return Ok(None);
    };
    let mut diagnostics = Vec::new();
    check_merged(&mut expanded, registry, &mut diagnostics);
    if diagnostics.is_empty() {
        Ok(Some(expanded))
    } else {
        Err(diagnostics)
    }
}

/// [`load_dag`] reading from the filesystem: regular files only, includes
/// from inside the current directory (the project) or the DAG file's own
/// directory, within the default [`ParseLimits`].
pub fn load_dag_file(path: &Path, registry: &Registry) -> Result<Dag, Vec<Diagnostic>> {
    let limits = ParseLimits::default();
    let project = std::env::current_dir().unwrap_or_default();
    let mut reader = SourceReader::new(&project, limits.max_file_bytes);
    load_dag_within(path, &mut |p| reader.read(p), registry, limits)
}

/// [`load_dag_file`] with a reader and limits of the caller's choosing.
pub fn load_dag_file_with(
    path: &Path,
    registry: &Registry,
    mut reader: SourceReader,
    limits: ParseLimits,
) -> Result<Dag, Vec<Diagnostic>> {
    load_dag_within(path, &mut |p| reader.read(p), registry, limits)
}

/// Reads one file, counting it against the budget.
fn read_within(
    path: &Path,
    read: &mut ReadSource<'_>,
    budget: &mut Budget,
) -> Result<String, ReadError> {
    if budget.files_read >= budget.limits.max_files {
        return Err(ReadError::Io(std::io::Error::other(format!(
            "one DAG may read at most {} files",
            budget.limits.max_files
        ))));
    }
    let allowance = budget.file_allowance();
    let text = read(path)?;
    if text.len() as u64 > allowance {
        return Err(ReadError::TooLarge(allowance));
    }
    budget.files_read += 1;
    budget.bytes_read += text.len() as u64;
    Ok(text)
}

fn read_help(error: &ReadError) -> Option<String> {
    match error {
        ReadError::Outside(_) => Some(
            "include files from inside the project or from the including DAG file's directory"
                .into(),
        ),
        ReadError::NotAFile(_) => Some("DAG files and includes must be regular files".into()),
        ReadError::TooLarge(_) => {
            Some("DAG files are small; split the file or check the path".into())
        }
        ReadError::Io(_) => None,
    }
}

fn parse_file(
    source: &Arc<SourceFile>,
    budget: &mut Budget,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<FileSpec> {
    match parse_yaml_within(&source.text, budget) {
        Ok(root) => Some(build_file(source, root, diagnostics)),
        Err(error) => {
            let diagnostic = match &error.limit {
                Some(hit) => limit_diagnostic(hit, source, Span::new(error.offset, 1)),
                None => Diagnostic::new(
                    "dag::yaml_syntax",
                    format!("invalid YAML: {}", error.message),
                )
                .at(source, Span::new(error.offset, 1)),
            };
            diagnostics.push(diagnostic);
            None
        }
    }
}

/// One load in progress: what is read, what was visited, what is left of
/// the budget, and the problems found.
struct Loading<'a, 'r> {
    read: &'a mut ReadSource<'r>,
    visited: &'a mut BTreeSet<PathBuf>,
    declared_by_main: &'a BTreeSet<String>,
    budget: &'a mut Budget,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl Loading<'_, '_> {
    /// Adds a file's tasks to `dag`, then its includes' (depth first).
    /// `extra_needs` (from `include: {file, needs}` entries above this file)
    /// go to the file's root tasks.
    fn merge(&mut self, dag: &mut Dag, mut spec: FileSpec, extra_needs: &[String]) {
        if !extra_needs.is_empty() {
            add_root_needs(&mut spec, extra_needs);
        }
        for (name, executor) in std::mem::take(&mut spec.executors) {
            match dag.executors.entry(name) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(executor);
                }
                std::collections::btree_map::Entry::Occupied(existing) => {
                    self.diagnostics.push(
                        Diagnostic::new(
                            "dag::duplicate_executor",
                            format!("executor `{}` is declared twice", existing.key()),
                        )
                        .at(&spec.source, Span::new(0, 1))
                        .help("declare each executor once, in the main DAG file or one include"),
                    );
                }
            }
        }
        if dag.tasks.is_empty() {
            // The first file: ids are unique within a file (`read_tasks`
            // drops repeats). Inserted in id order, each task lands at the
            // end of the last leaf; collecting into the map instead would
            // first copy every task into a sorted vector (a 100,000-task
            // file: 45 MB more at the peak).
            let mut tasks: Vec<Option<crate::model::Task>> =
                spec.tasks.into_iter().map(Some).collect();
            let mut order: Vec<usize> = (0..tasks.len()).collect();
            order.sort_by(|&a, &b| {
                let id = |n: usize| tasks[n].as_ref().map(|t| t.id.as_str());
                id(a).cmp(&id(b))
            });
            for task in order.into_iter().filter_map(|n| tasks[n].take()) {
                dag.tasks.insert(task.id.clone(), task);
            }
            spec.tasks = Vec::new();
        }
        for task in spec.tasks {
            match dag.tasks.entry(task.id.clone()) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(task);
                }
                std::collections::btree_map::Entry::Occupied(existing) => self.diagnostics.push(
                    Diagnostic::new(
                        "dag::duplicate_task",
                        format!("task `{}` is defined twice", task.id),
                    )
                    .at(&task.origin.file, task.origin.key)
                    .help(format!(
                        "it is also defined in `{}`",
                        existing.get().origin.file.path.display()
                    )),
                ),
            }
        }
        for include in spec.includes {
            let path = include_path(&spec.source, &include.file);
            if !self.visited.insert(path.clone()) {
                self.diagnostics.push(
                    Diagnostic::new(
                        "dag::include_cycle",
                        format!("`{}` is included more than once", include.file),
                    )
                    .at(&spec.source, include.span),
                );
                continue;
            }
            if let Err(hit) = self.budget.check_time() {
                self.diagnostics
                    .push(limit_diagnostic(&hit, &spec.source, include.span));
                return;
            }
            let text = match read_within(&path, self.read, self.budget) {
                Ok(text) => text,
                Err(error) => {
                    // Never the file's content: only its name and why.
                    self.diagnostics.push(
                        Diagnostic::new(
                            error.code(true),
                            format!("cannot include `{}`: {error}", path.display()),
                        )
                        .at(&spec.source, include.span)
                        .maybe_help(read_help(&error)),
                    );
                    continue;
                }
            };
            let source = SourceFile::new(&path, text);
            dag.sources.push(Arc::clone(&source));
            let Some(mut included) = parse_file(&source, self.budget, self.diagnostics) else {
                continue;
            };
            for (name, value) in std::mem::take(&mut included.params) {
                match dag.params.get(&name) {
                    None => {
                        dag.params.insert(name, value);
                    }
                    // The including file may override; two includes may not disagree.
                    Some(existing)
                        if *existing != value && !self.declared_by_main.contains(&name) =>
                    {
                        self.diagnostics.push(
                            Diagnostic::new(
                                "dag::param_conflict",
                                format!("param `{name}` has default {value} here but {existing} in an earlier file"),
                            )
                            .at(&spec.source, include.span)
                            .help(format!("declare `{name}` in `{}` to choose, or rename one of them", spec.source.path.display())),
                        );
                    }
                    Some(_) => {}
                }
            }
            let mut needs = extra_needs.to_vec();
            needs.extend(include.needs.iter().map(|(id, _)| id.clone()));
            self.merge(dag, included, &needs);
        }
    }
}

fn limit_diagnostic(hit: &LimitHit, source: &Arc<SourceFile>, span: Span) -> Diagnostic {
    Diagnostic::new("dag::limit", hit.to_string())
        .at(source, span)
        .label("limit reached here")
        .help(hit.help())
}

/// Gives the included file's root tasks (no `needs`, no input produced in
/// the same file) the include's extra upstream tasks.
fn add_root_needs(spec: &mut FileSpec, needs: &[String]) {
    let produced: BTreeSet<String> = spec
        .tasks
        .iter()
        .flat_map(|t| t.outputs.values().cloned())
        .collect();
    for task in &mut spec.tasks {
        let is_root = task.needs.is_empty() && !task.inputs.values().any(|p| produced.contains(p));
        if is_root {
            // The include line is in another file; point at the task instead.
            for id in needs {
                task.needs.push(id.clone());
                task.origin.needs.push(task.origin.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::parse::MAX_DIAGNOSTICS_PER_FILE;

    fn load_text(text: &str) -> Result<Dag, Vec<Diagnostic>> {
        let registry = crate::ops::registry();
        load_dag(
            Path::new("d.yaml"),
            &mut |_| Ok(text.to_string()),
            &registry,
        )
    }

    fn duplicate_tasks(n: usize) -> String {
        let mut text = String::from("name: dup\ntasks:\n");
        for _ in 0..n {
            text.push_str("  a:\n    operator: noop\n");
        }
        text
    }

    /// The fastest of three loads and renders of `text`.
    fn time_to_diagnose(text: &str) -> Duration {
        (0..3)
            .map(|_| {
                let started = Instant::now();
                let diagnostics = load_text(text).err().unwrap_or_default();
                let rendered: usize = diagnostics.iter().map(|d| d.render(false).len()).sum();
                assert!(rendered > 0);
                started.elapsed()
            })
            .min()
            .unwrap_or_default()
    }

    #[test]
    fn duplicate_keys_are_diagnosed_in_linear_time_and_capped() {
        let diagnostics = load_text(&duplicate_tasks(10_000))
            .err()
            .unwrap_or_default();
        assert_eq!(diagnostics.len(), MAX_DIAGNOSTICS_PER_FILE + 1);
        let last = diagnostics.last().map(|d| (d.code, d.message.clone()));
        assert_eq!(
            last,
            Some((
                "dag::too_many_problems",
                "and 9949 more problems in `d.yaml`".to_string()
            ))
        );
        // Ten times the input may cost about ten times the time; a
        // quadratic diagnosis costs a hundred times.
        let small = time_to_diagnose(&duplicate_tasks(1_000));
        let large = time_to_diagnose(&duplicate_tasks(10_000));
        assert!(
            large < small * 40 + Duration::from_millis(50),
            "1,000 duplicates: {small:?}, 10,000: {large:?}"
        );
    }

    #[test]
    fn ten_thousand_unknown_references_on_one_line_print_a_bounded_report() {
        let references: Vec<String> = (0..10_000)
            .map(|i| format!("{{{{ params.x{i} }}}}"))
            .collect();
        let text = format!(
            "name: t\ntasks:\n  a:\n    operator: shell\n    params: {{ command: \"{}\" }}\n",
            references.join(" ")
        );
        let started = Instant::now();
        let diagnostics = load_text(&text).err().unwrap_or_default();
        let rendered: String = diagnostics.iter().map(|d| d.render(false)).collect();
        assert_eq!(diagnostics.len(), MAX_DIAGNOSTICS_PER_FILE + 1);
        assert!(rendered.len() < 64 * 1024, "{} bytes", rendered.len());
        assert!(
            rendered.contains("unknown template variable `params.x0`"),
            "{rendered}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn includes_share_one_byte_budget_and_refusals_name_the_file_not_its_content() {
        let registry = crate::ops::registry();
        let limits = ParseLimits {
            max_total_bytes: 200,
            ..ParseLimits::default()
        };
        let main = "name: m\ninclude: [big.yaml]\ntasks:\n  a:\n    operator: noop\n";
        let big = format!("# {}\ntasks: {{}}\n", "secret ".repeat(40));
        let mut read = |path: &Path| -> Result<String, ReadError> {
            Ok(if path.ends_with("big.yaml") {
                big.clone()
            } else {
                main.to_string()
            })
        };
        let diagnostics = load_dag_within(Path::new("m.yaml"), &mut read, &registry, limits)
            .err()
            .unwrap_or_default();
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!(diagnostics[0].code, "dag::file_too_large");
        let rendered = diagnostics[0].render(false);
        assert!(
            rendered.contains("big.yaml") && !rendered.contains("secret"),
            "{rendered}"
        );
        assert!(rendered.contains("m.yaml:2:11"), "{rendered}");
    }
}
