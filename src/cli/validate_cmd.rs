//! `dag validate`, `dag list`, `dag operators`, `dag schema`.

use std::path::PathBuf;

use super::args::{Global, ValidateArgs};
use super::workspace::{dag_files, looks_like_dag, print_diagnostics};
use super::{CliResult, Exit, Failure};
use crate::parse::load_dag_file;

pub fn validate(global: &Global, args: &ValidateArgs) -> CliResult {
    let registry = crate::ops::registry();
    let roots = if args.paths.is_empty() {
        vec![global.dags.clone()]
    } else {
        args.paths.clone()
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for root in roots {
        if root.is_dir() {
            files.extend(dag_files(&root).into_iter().filter(|p| looks_like_dag(p)));
        } else if root.exists() {
            files.push(root);
        } else {
            return Err(Failure::invalid(format!(
                "`{}` does not exist",
                root.display()
            )));
        }
    }
    let mut all = Vec::new();
    let mut valid = Vec::new();
    let mut dags = Vec::new();
    for file in &files {
        match load_dag_file(file, &registry) {
            Ok(dag) => {
                valid.push((file.clone(), dag.name.clone(), dag.tasks.len()));
                dags.push(dag);
            }
            Err(diagnostics) => all.extend(diagnostics),
        }
    }
    let loaded: Vec<&crate::model::Dag> = dags.iter().collect();
    all.extend(
        crate::parse::check_ownership(&loaded)
            .into_iter()
            .map(|c| c.diagnostic),
    );
    if args.json {
        let json = serde_json::json!({
            "valid": all.is_empty(),
            "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "diagnostics": all.iter().map(|d| d.to_json()).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    } else {
        for (file, name, tasks) in &valid {
            println!("ok  {} (`{name}`, {tasks} tasks)", file.display());
        }
        if !all.is_empty() {
            print_diagnostics(&all);
        }
    }
    // The process ends next: handing the loaded DAGs back to the allocator
    // one node at a time would take a tenth of a 100,000-task validation.
    drop(loaded);
    std::mem::forget(dags);
    Ok(if all.is_empty() {
        Exit::Success
    } else {
        Exit::Invalid
    })
}

pub fn list(global: &Global, json: bool) -> CliResult {
    let registry = crate::ops::registry();
    let mut rows = Vec::new();
    for file in dag_files(&global.dags)
        .into_iter()
        .filter(|p| looks_like_dag(p))
    {
        let row = match load_dag_file(&file, &registry) {
            Ok(dag) => serde_json::json!({
                "name": dag.name,
                "file": file.display().to_string(),
                "tasks": dag.tasks.len(),
                "schedule": dag.schedule.as_ref().map(|s| s.expression.clone()),
                "watch": dag.watch,
                "description": dag.description,
                "valid": true,
            }),
            Err(diagnostics) => serde_json::json!({
                "name": file.file_stem().map(|s| s.to_string_lossy().into_owned()),
                "file": file.display().to_string(),
                "valid": false,
                "problems": diagnostics.len(),
            }),
        };
        rows.push(row);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return Ok(Exit::Success);
    }
    for row in &rows {
        let name = row["name"].as_str().unwrap_or("?");
        if row["valid"] == true {
            let schedule = row["schedule"]
                .as_str()
                .map(|s| format!("  schedule `{s}`"))
                .unwrap_or_default();
            println!(
                "{name:<24} {:>3} tasks{schedule}  {}",
                row["tasks"],
                row["description"].as_str().unwrap_or("")
            );
        } else {
            println!(
                "{name:<24} invalid ({} problems; run `dag validate`)",
                row["problems"]
            );
        }
    }
    Ok(Exit::Success)
}

pub fn operators(args: &super::args::OperatorsArgs) -> CliResult {
    use crate::views::operators::{operator_doc, operator_markdown, operators_markdown};
    let registry = crate::ops::registry();
    if args.markdown {
        print!("{}", operators_markdown(&registry));
        return Ok(Exit::Success);
    }
    if let Some(name) = &args.name {
        let Some(operator) = registry.get(name) else {
            let hint = dag_operators::did_you_mean(name, registry.names())
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            return Err(Failure::invalid(format!(
                "no operator `{name}`{hint}; `dag operators` lists them"
            )));
        };
        let doc = operator_doc(operator.as_ref());
        if args.json {
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        } else {
            print!("{}", operator_markdown(&doc).trim_start());
        }
        return Ok(Exit::Success);
    }
    if args.json {
        let rows: Vec<_> = registry
            .iter()
            .map(|op| serde_json::json!({
                "name": op.name(), "version": op.version(), "description": op.description(), "values": op.value_names(),
            }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else {
        for op in registry.iter() {
            println!("{:<20} {}", op.name(), op.description());
        }
    }
    Ok(Exit::Success)
}

pub fn schema() -> CliResult {
    println!("{}", crate::schema::dag_file_schema_json());
    Ok(Exit::Success)
}
