//! [`reload_off_loop`]: reloading the DAG directory without holding up the
//! daemon's loop or its API.
//!
//! The files are parsed on a blocking thread into a copy of the loaded set,
//! which is swapped in when done; the lock the API reads is held only for
//! the swap. Each file's load is bounded by the set's
//! [`ParseLimits`](crate::parse::ParseLimits), time included, so a hostile
//! file delays a reload by at most that long and ends as a load error.

use std::path::Path;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use dag_operators::Registry;

use super::dags::Reload;
use super::dispatch::Dispatcher;
use crate::parse::ParseLimits;

/// How long the daemon gives one DAG file (with its includes) to load.
pub const LOAD_TIME_LIMIT: Duration = Duration::from_secs(5);

/// The limits the daemon loads DAG files within.
pub fn daemon_parse_limits() -> ParseLimits {
    ParseLimits {
        time: Some(LOAD_TIME_LIMIT),
        ..ParseLimits::default()
    }
}

/// Reloads `dags_dir` on a blocking thread and swaps the result in.
pub async fn reload_off_loop(
    dispatcher: &Arc<Dispatcher>,
    dags_dir: &Path,
    registry: &Arc<Registry>,
) -> Reload {
    let current = dispatcher
        .dags
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let registry = Arc::clone(registry);
    let dir = dags_dir.to_path_buf();
    let reloaded = tokio::task::spawn_blocking(move || {
        let mut next = current;
        let report = next.reload(&dir, &registry);
        (next, report)
    })
    .await;
    match reloaded {
        Ok((next, report)) => {
            *dispatcher
                .dags
                .write()
                .unwrap_or_else(PoisonError::into_inner) = next;
            report
        }
        Err(error) => {
            tracing::error!("reloading the DAG directory failed: {error}");
            Reload::default()
        }
    }
}
