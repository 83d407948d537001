//! The layering of `src/`, checked on the source: front ends (`cli`, `api`,
//! `ui`) are peers that never import one another, nothing below them
//! imports a front end, and only the composition root (`app`) knows them
//! all. A `use crate::cli::...` in the daemon's API fails this test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const FRONT_ENDS: &[&str] = &["cli", "api", "ui"];
const COMPOSITION_ROOT: &str = "app";

/// The top-level module a file under `src/` belongs to.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// The top-level modules a source text names through `crate::`, including
/// inside `use crate::{a, b::c}` groups.
fn referenced_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// What `module` may not name, by the layering rules.
fn forbidden_for(module: &str) -> Vec<&'static str> {
    if module == COMPOSITION_ROOT {
        return Vec::new();
    }
    let mut forbidden: Vec<&'static str> = FRONT_ENDS
        .iter()
        .copied()
        .filter(|front_end| *front_end != module)
        .collect();
    forbidden.push(COMPOSITION_ROOT);
    forbidden
}

fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let Some(module) = top_module(src, &file) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let referenced = referenced_modules(&text);
        for forbidden in forbidden_for(&module) {
            if referenced.contains(forbidden) {
                found.push(format!(
                    "{} (in `{module}`) imports `crate::{forbidden}`",
                    file.display()
                ));
            }
        }
    }
    found
}

#[test]
fn front_ends_are_peers_and_nothing_below_imports_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "layering violations (move what both need into the library layer):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_single_and_grouped_imports() -> std::io::Result<()> {
    let src = tempfile::tempdir()?;
    std::fs::create_dir_all(src.path().join("api"))?;
    std::fs::create_dir_all(src.path().join("daemon"))?;
    std::fs::write(
        src.path().join("api/mod.rs"),
        "use crate::cli::run_for_client;\n",
    )?;
    std::fs::write(
        src.path().join("daemon/x.rs"),
        "use crate::{execute, ui::pages};\n",
    )?;
    std::fs::write(src.path().join("app.rs"), "use crate::{cli, api, ui};\n")?;
    std::fs::write(src.path().join("views.rs"), "use crate::execute::now_ms;\n")?;
    let found = violations(src.path());
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].contains("imports `crate::cli`"), "{found:#?}");
    assert!(found[1].contains("imports `crate::ui`"), "{found:#?}");
    Ok(())
}
