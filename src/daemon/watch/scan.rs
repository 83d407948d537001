//! Where the globs point on disk: the files that match now, and the
//! directories the OS watcher must cover so later matches are seen.
//!
//! Reads directories only; hashing and event handling live elsewhere.

use std::path::{Path, PathBuf};

use notify::RecursiveMode;

pub use crate::workspace::glob::{Glob, is_ignored, matching_under};

/// The directories to hand the OS watcher, with their mode.
///
/// Each glob is watched at its [`Glob::base`]; when the base does not
/// exist yet, at its nearest existing ancestor, non-recursively, so the
/// creation of the next directory down is seen and the watch can move
/// closer. Paths another recursive target already covers are left out,
/// because watching them again non-recursively would stop the OS watcher
/// from following new subdirectories there.
pub fn targets(root: &Path, globs: &[Glob]) -> Vec<(PathBuf, RecursiveMode)> {
    let mut wanted: Vec<(PathBuf, bool)> = globs
        .iter()
        .map(|glob| {
            let base = root.join(glob.base());
            if base.is_dir() {
                return (base, glob.is_recursive());
            }
            let ancestor = base
                .ancestors()
                .skip(1)
                .take_while(|ancestor| ancestor.starts_with(root))
                .find(|ancestor| ancestor.is_dir())
                .unwrap_or(root);
            (ancestor.to_path_buf(), false)
        })
        .collect();
    wanted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut kept: Vec<(PathBuf, bool)> = Vec::new();
    for (path, recursive) in wanted {
        let covered = kept.iter().any(|(other, other_recursive)| {
            *other == path || (*other_recursive && path.starts_with(other))
        });
        if !covered {
            kept.push((path, recursive));
        }
    }
    kept.into_iter()
        .map(|(path, recursive)| {
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            (path, mode)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn globs(texts: &[&str]) -> Result<Vec<Glob>, super::super::GlobError> {
        texts.iter().map(|text| Glob::parse(text)).collect()
    }

    #[test]
    fn matching_under_finds_matches_and_skips_state_and_hidden_files() -> TestResult {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        for file in [
            "data/incoming/a.csv",
            "data/incoming/b.csv",
            "data/incoming/notes.txt",
            "data/incoming/.#a.csv",
            "data/incoming/sub/c.csv",
            ".dag/incoming/d.csv",
        ] {
            let path = root.join(file);
            fs::create_dir_all(path.parent().ok_or("no parent")?)?;
            fs::write(path, file)?;
        }
        let found = matching_under(root, Path::new(""), &globs(&["data/incoming/*.csv"])?);
        assert_eq!(
            found,
            [
                PathBuf::from("data/incoming/a.csv"),
                PathBuf::from("data/incoming/b.csv")
            ]
        );
        let deep = matching_under(root, Path::new(""), &globs(&["**/*.csv", ".dag/**"])?);
        assert_eq!(deep.len(), 3, "{deep:?}");
        assert!(deep.iter().all(|path| !is_ignored(path)));
        Ok(())
    }

    #[test]
    fn targets_fall_back_to_the_nearest_existing_ancestor() -> TestResult {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        fs::create_dir_all(root.join("data/raw"))?;
        let found = targets(
            root,
            &globs(&["data/incoming/new/*.csv", "data/raw/ObesityDataSet.csv"])?,
        );
        assert_eq!(
            found,
            [
                (root.join("data"), RecursiveMode::NonRecursive),
                (root.join("data/raw"), RecursiveMode::NonRecursive)
            ]
        );
        Ok(())
    }

    #[test]
    fn targets_under_a_recursive_target_are_left_out() -> TestResult {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        fs::create_dir_all(root.join("data/raw"))?;
        let found = targets(root, &globs(&["data/raw/*.csv", "data/**/*.csv"])?);
        assert_eq!(found, [(root.join("data"), RecursiveMode::Recursive)]);
        Ok(())
    }
}
