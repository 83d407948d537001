//! [`collect_garbage`]: one `dag gc`, planned and (unless a dry run)
//! applied, summarised as [`GcSummary`] — the `dag gc --json` shape, which
//! a daemon also answers `POST /api/gc` with.

use std::path::Path;

use dag_state::Store;
use serde::{Deserialize, Serialize};

use super::gc::{GcError, GcReport, plan_gc};
use super::run_cache::{CacheEntry, RunCache};

/// `dag gc --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GcSummary {
    pub dry_run: bool,
    pub keep_runs: usize,
    /// Removed, or with `--dry-run` to be removed.
    pub removed: Vec<GcEntry>,
    pub freed_bytes: u64,
    pub kept: usize,
    pub kept_bytes: u64,
    pub runs_kept: usize,
    pub model_versions: usize,
    /// Remembered digests of files that no longer exist (forgotten, or to be).
    pub forgotten_digests: usize,
    pub failed: Vec<GcFailure>,
}

/// One file `dag gc` removed (or would).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GcEntry {
    /// `null` for a temporary file left by a process that died.
    pub digest: Option<String>,
    pub path: String,
    pub bytes: u64,
}

/// A file `dag gc` could not remove, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GcFailure {
    pub path: String,
    pub error: String,
}

impl From<&CacheEntry> for GcEntry {
    fn from(entry: &CacheEntry) -> Self {
        Self {
            digest: entry.digest.clone(),
            path: entry.path.to_string_lossy().into_owned(),
            bytes: entry.size,
        }
    }
}

/// Plans a collection of the run cache beside `store` and, unless
/// `dry_run`, applies it, removing also the temporary files killed
/// restores and registry writes left. Planning only reads; if it fails nothing is
/// removed.
pub fn collect_garbage(
    store: &Store,
    state_dir: &Path,
    keep_runs: usize,
    dry_run: bool,
) -> Result<GcSummary, GcError> {
    let cache = RunCache::beside(store);
    let plan = plan_gc(store, &cache, state_dir, keep_runs)?;
    let report = if dry_run {
        GcReport {
            removed: plan.remove.clone(),
            failed: Vec::new(),
            forgotten_digests: plan.stale_digests.len(),
        }
    } else {
        let mut report = plan.apply(store, &cache);
        // Temporary files of killed restores and registry writes go too.
        report.removed.extend(super::sweep_restores(cache.root()));
        if state_dir.join("models").is_dir()
            && let Ok(registry) = dag_operators::models::ModelRegistry::open(state_dir)
        {
            report
                .removed
                .extend(
                    registry
                        .remove_stale_temporaries()
                        .into_iter()
                        .map(|(path, size)| CacheEntry {
                            digest: None,
                            path,
                            size,
                        }),
                );
        }
        report
    };
    Ok(GcSummary {
        dry_run,
        keep_runs,
        removed: report.removed.iter().map(GcEntry::from).collect(),
        freed_bytes: report.freed_bytes(),
        kept: plan.keep.len(),
        kept_bytes: plan.bytes_kept(),
        runs_kept: plan.runs_kept,
        model_versions: plan.model_versions,
        forgotten_digests: report.forgotten_digests,
        failed: report
            .failed
            .iter()
            .map(|(entry, error)| GcFailure {
                path: entry.path.to_string_lossy().into_owned(),
                error: error.clone(),
            })
            .collect(),
    })
}
