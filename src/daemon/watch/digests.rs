//! [`Digests`]: the content record that confirms a file event is a change.
//!
//! File events say something happened to a path, not that its bytes
//! differ: `touch`, a rewrite with the same bytes, or an editor saving an
//! unchanged buffer all produce events. A path counts as changed only when
//! its blake3 digest differs from the recorded one, or it appeared or
//! disappeared. This module keeps the record and words the change; it does
//! not watch anything.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::execute::hash_file;

/// How many hex characters of a digest a change description shows.
const SHORT_DIGEST: usize = 12;

/// Digest of every watched file that exists, by path relative to the root.
#[derive(Debug, Default)]
pub struct Digests {
    by_path: BTreeMap<PathBuf, String>,
}

/// A confirmed content change of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: PathBuf,
    /// `None`: the file did not exist before.
    pub before: Option<String>,
    /// `None`: the file no longer exists.
    pub after: Option<String>,
}

impl Digests {
    /// Records `digest` for `path`; returns the change if it differs.
    pub fn update(&mut self, path: &Path, digest: Option<String>) -> Option<Change> {
        let before = match &digest {
            Some(digest) => self.by_path.insert(path.to_path_buf(), digest.clone()),
            None => self.by_path.remove(path),
        };
        (before != digest).then(|| Change {
            path: path.to_path_buf(),
            before,
            after: digest,
        })
    }

    /// Recorded paths at or below `directory` (relative).
    pub fn paths_under<'a>(&'a self, directory: &'a Path) -> impl Iterator<Item = &'a PathBuf> {
        self.by_path
            .keys()
            .filter(move |path| path.starts_with(directory))
    }
}

/// The digest of the file at `path`, or `None` when there is no regular
/// file to read. A file that vanishes mid-burst, or cannot be read, counts
/// as gone: its next event will record it again.
pub fn digest_of(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => {}
        _ => return None,
    }
    match hash_file(path) {
        Ok((digest, _)) => Some(digest),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => {
            tracing::warn!("cannot read watched file `{}`: {error}", path.display());
            None
        }
    }
}

/// `data/a.csv changed (3f2a9c01b7de → 81c0ffee2a10)[, and 2 more]`, with
/// `absent` for a side where the file did not exist; `None` when nothing
/// changed.
pub fn describe(changes: &[Change]) -> Option<String> {
    let first = changes.first()?;
    let mut detail = format!(
        "{} changed ({} → {})",
        slash_path(&first.path),
        short(first.before.as_deref()),
        short(first.after.as_deref()),
    );
    if changes.len() > 1 {
        detail.push_str(&format!(", and {} more", changes.len() - 1));
    }
    Some(detail)
}

/// A relative path with `/` separators whatever the platform, as users
/// write them in `watch:`.
pub fn slash_path(path: &Path) -> String {
    path.components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn short(digest: Option<&str>) -> &str {
    match digest {
        Some(digest) => digest.get(..SHORT_DIGEST).unwrap_or(digest),
        None => "absent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(text: &str) -> String {
        blake3::hash(text.as_bytes()).to_hex().to_string()
    }

    #[test]
    fn update_reports_only_real_changes() {
        let mut digests = Digests::default();
        let path = Path::new("data/a.csv");
        let appeared = digests.update(path, Some(digest("1")));
        assert_eq!(
            appeared.map(|c| (c.before, c.after)),
            Some((None, Some(digest("1"))))
        );
        assert_eq!(digests.update(path, Some(digest("1"))), None);
        let changed = digests.update(path, Some(digest("2")));
        assert_eq!(
            changed.map(|c| (c.before, c.after)),
            Some((Some(digest("1")), Some(digest("2"))))
        );
        let gone = digests.update(path, None);
        assert_eq!(
            gone.map(|c| (c.before, c.after)),
            Some((Some(digest("2")), None))
        );
        assert_eq!(digests.update(path, None), None);
        assert_eq!(digests.paths_under(Path::new("")).count(), 0);
    }

    #[test]
    fn describe_names_the_first_change_and_counts_the_rest() {
        let change = |path: &str, before: Option<&str>, after: Option<&str>| Change {
            path: PathBuf::from(path),
            before: before.map(digest),
            after: after.map(digest),
        };
        assert_eq!(describe(&[]), None);
        let one = [change("data/a.csv", Some("1"), Some("2"))];
        assert_eq!(
            describe(&one),
            Some(format!(
                "data/a.csv changed ({} → {})",
                &digest("1")[..12],
                &digest("2")[..12]
            ))
        );
        let three = [
            change("data/a.csv", None, Some("1")),
            change("data/b.csv", Some("1"), None),
            change("data/c.csv", Some("1"), Some("3")),
        ];
        assert_eq!(
            describe(&three),
            Some(format!(
                "data/a.csv changed (absent → {}), and 2 more",
                &digest("1")[..12]
            ))
        );
    }

    #[test]
    fn paths_under_selects_by_whole_components() {
        let mut digests = Digests::default();
        for path in ["data/in/a.csv", "data/in/sub/b.csv", "data/inbox/c.csv"] {
            digests.update(Path::new(path), Some(digest(path)));
        }
        let under: Vec<_> = digests.paths_under(Path::new("data/in")).collect();
        assert_eq!(
            under,
            [
                &PathBuf::from("data/in/a.csv"),
                &PathBuf::from("data/in/sub/b.csv")
            ]
        );
        assert_eq!(digests.paths_under(Path::new("")).count(), 3);
    }
}
