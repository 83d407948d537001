//! [`load_dag`]: a DAG file and its includes → one checked [`Dag`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dag_operators::Registry;

use super::file_builder::{FileSpec, build_file, include_path};
use super::node::parse_yaml;
use super::{Diagnostic, SourceFile, Span, checker};
use crate::model::Dag;

/// Loads the DAG at `path`, reading it and its includes with `read`.
pub fn load_dag(
    path: &Path,
    read: &mut dyn FnMut(&Path) -> std::io::Result<String>,
    registry: &Registry,
) -> Result<Dag, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let text = read(path).map_err(|error| {
        vec![Diagnostic::new(
            "dag::unreadable",
            format!("cannot read `{}`: {error}", path.display()),
        )]
    })?;
    let source = SourceFile::new(path, text);
    let mut visited = BTreeSet::from([path.to_path_buf()]);
    let Some(main) = parse_file(&source, &mut diagnostics) else {
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
        tasks: Default::default(),
        sources: vec![Arc::clone(&source)],
        path: path.to_path_buf(),
    };
    let declared_by_main: BTreeSet<String> = main.params.keys().cloned().collect();
    merge(
        &mut dag,
        main,
        &[],
        read,
        &mut visited,
        &declared_by_main,
        &mut diagnostics,
    );
    checker::check(&dag, registry, &mut diagnostics);
    if diagnostics.is_empty() {
        return Ok(dag);
    }
    diagnostics.sort_by_key(|d| {
        d.location
            .as_ref()
            .map(|(file, span)| (file.path.clone(), span.offset))
    });
    Err(diagnostics)
}

/// [`load_dag`] reading from the filesystem.
pub fn load_dag_file(path: &Path, registry: &Registry) -> Result<Dag, Vec<Diagnostic>> {
    load_dag(path, &mut |p| std::fs::read_to_string(p), registry)
}

fn parse_file(source: &Arc<SourceFile>, diagnostics: &mut Vec<Diagnostic>) -> Option<FileSpec> {
    match parse_yaml(&source.text) {
        Ok(root) => Some(build_file(source, &root, diagnostics)),
        Err(error) => {
            diagnostics.push(
                Diagnostic::new(
                    "dag::yaml_syntax",
                    format!("invalid YAML: {}", error.message),
                )
                .at(source, Span::new(error.offset, 1)),
            );
            None
        }
    }
}

/// Adds a file's tasks to `dag`, then its includes' (depth first).
/// `extra_needs` (from `include: {file, needs}` entries above this file) go
/// to the file's root tasks.
fn merge(
    dag: &mut Dag,
    mut spec: FileSpec,
    extra_needs: &[String],
    read: &mut dyn FnMut(&Path) -> std::io::Result<String>,
    visited: &mut BTreeSet<PathBuf>,
    declared_by_main: &BTreeSet<String>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    if !extra_needs.is_empty() {
        add_root_needs(&mut spec, extra_needs);
    }
    for task in spec.tasks {
        if let Some(existing) = dag.tasks.get(&task.id) {
            diagnostics.push(
                Diagnostic::new(
                    "dag::duplicate_task",
                    format!("task `{}` is defined twice", task.id),
                )
                .at(&task.origin.file, task.origin.key)
                .help(format!(
                    "it is also defined in `{}`",
                    existing.origin.file.path.display()
                )),
            );
            continue;
        }
        dag.tasks.insert(task.id.clone(), task);
    }
    for include in spec.includes {
        let path = include_path(&spec.source, &include.file);
        if !visited.insert(path.clone()) {
            diagnostics.push(
                Diagnostic::new(
                    "dag::include_cycle",
                    format!("`{}` is included more than once", include.file),
                )
                .at(&spec.source, include.span),
            );
            continue;
        }
        let text = match read(&path) {
            Ok(text) => text,
            Err(error) => {
                diagnostics.push(
                    Diagnostic::new(
                        "dag::include_failed",
                        format!("cannot read included file `{}`: {error}", path.display()),
                    )
                    .at(&spec.source, include.span),
                );
                continue;
            }
        };
        let source = SourceFile::new(&path, text);
        dag.sources.push(Arc::clone(&source));
        let Some(mut included) = parse_file(&source, diagnostics) else {
            continue;
        };
        for (name, value) in std::mem::take(&mut included.params) {
            match dag.params.get(&name) {
                None => {
                    dag.params.insert(name, value);
                }
                // The including file may override; two includes may not disagree.
                Some(existing) if *existing != value && !declared_by_main.contains(&name) => {
                    diagnostics.push(
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
        merge(
            dag,
            included,
            &needs,
            read,
            visited,
            declared_by_main,
            diagnostics,
        );
    }
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
