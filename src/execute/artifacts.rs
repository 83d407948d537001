//! Hashing a task's declared artifacts: through the [`DigestMemo`], and for
//! several large files, on several threads.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use dag_state::ArtifactRecord;

use crate::cache::DigestMemo;
pub use crate::cache::hash_file;

/// Below this many bytes in all, files are hashed one after another:
/// starting threads would cost more than it saves.
const PARALLEL_MIN_BYTES: u64 = 4 << 20;

/// A declared artifact: name, path as declared (relative), absolute path.
#[derive(Debug, Clone)]
pub struct Declared {
    pub name: String,
    pub path: String,
    pub absolute: std::path::PathBuf,
}

/// Hashes each declared artifact; fails naming the first (in declaration
/// order) that is missing or unreadable.
pub fn hash_all(
    declared: &[Declared],
    kind: &str,
    memo: &DigestMemo<'_>,
) -> Result<Vec<ArtifactRecord>, String> {
    let hash_one = |artifact: &Declared| {
        let (digest, size) = memo
            .hash(&artifact.absolute)
            .map_err(|error| describe(kind, artifact, &error))?;
        Ok(ArtifactRecord {
            name: artifact.name.clone(),
            path: artifact.path.clone(),
            digest,
            size,
        })
    };
    let total: u64 = declared
        .iter()
        .filter_map(|artifact| std::fs::metadata(&artifact.absolute).ok())
        .map(|metadata| metadata.len())
        .sum();
    if declared.len() < 2 || total < PARALLEL_MIN_BYTES {
        return declared.iter().map(hash_one).collect();
    }
    parallel_map(declared, hash_one).into_iter().collect()
}

fn describe(kind: &str, artifact: &Declared, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => format!(
            "{kind} `{}` does not exist: `{}`",
            artifact.name, artifact.path
        ),
        _ => format!(
            "cannot read {kind} `{}` at `{}`: {error}",
            artifact.name, artifact.path
        ),
    }
}

/// `items.iter().map(f)` on up to one scoped thread per core, in order.
///
/// Scoped threads rather than rayon's global pool: operators use that pool
/// (the random forest fits its trees there), and hashing queued behind a
/// long fit would hold up tasks that have nothing to do with it.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if workers < 2 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(index) else {
                            return done;
                        };
                        done.push((index, f(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_map_keeps_the_order_of_its_items() {
        let items: Vec<u32> = (0..1000).collect();
        let doubled = parallel_map(&items, |n| n * 2);
        assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>());
    }

    #[test]
    fn large_inputs_hashed_in_parallel_match_one_by_one_and_report_the_first_missing()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut declared = Vec::new();
        for index in 0..3u8 {
            let bytes = vec![index; 3 << 20];
            let path = dir.path().join(format!("part{index}.bin"));
            std::fs::write(&path, &bytes)?;
            declared.push(Declared {
                name: format!("part{index}"),
                path: format!("part{index}.bin"),
                absolute: path,
            });
        }
        let hashed = hash_all(&declared, "input", &DigestMemo::disabled())?;
        for (index, artifact) in hashed.iter().enumerate() {
            let bytes = vec![index as u8; 3 << 20];
            assert_eq!(artifact.digest, blake3::hash(&bytes).to_hex().to_string());
            assert_eq!(artifact.name, format!("part{index}"));
        }
        declared.insert(
            1,
            Declared {
                name: "gone".into(),
                path: "gone.bin".into(),
                absolute: dir.path().join("gone.bin"),
            },
        );
        let error = hash_all(&declared, "input", &DigestMemo::disabled()).err();
        assert_eq!(
            error.as_deref(),
            Some("input `gone` does not exist: `gone.bin`")
        );
        Ok(())
    }
}
