//! [`AliasWatcher`]: follows one alias of one model and swaps the version it
//! points at into a [`ModelSlot`] once that version loads and verifies.
//!
//! A version that fails (digest mismatch, unreadable or garbage file) is
//! never swapped in: the previous model keeps answering, the failure is
//! logged and counted once, and the same target is retried only after
//! [`RETRY_FAILED`]. It polls (cheap: one small JSON read) rather than using
//! file notifications, so it also sees aliases moved on other machines
//! sharing the state directory.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use dag_operators::models::ModelRegistry;

use crate::record::error_chain;
use crate::serve::metrics::{Metrics, Role};
use crate::serve::slot::{LoadedModel, ModelSlot};

/// How long a target that failed to load is left alone before a new try.
pub const RETRY_FAILED: Duration = Duration::from_secs(5);

/// What one poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// The alias still points at the model in use (or at a known failure).
    Unchanged,
    /// The alias cannot be resolved (no such model or alias yet).
    Unresolved,
    Swapped {
        from: Option<u32>,
        to: u32,
    },
    Refused {
        version: u32,
    },
}

pub struct AliasWatcher {
    registry: ModelRegistry,
    name: String,
    alias: String,
    role: Role,
    slot: Arc<ModelSlot>,
    metrics: Arc<Metrics>,
    /// (version, digest) that failed, and when.
    failed: Option<(u32, String, Instant)>,
}

impl AliasWatcher {
    pub fn new(
        registry: ModelRegistry,
        name: &str,
        alias: &str,
        role: Role,
        slot: Arc<ModelSlot>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            registry,
            name: name.into(),
            alias: alias.into(),
            role,
            slot,
            metrics,
            failed: None,
        }
    }

    /// Resolves the alias and swaps its target in if it is new and verifies.
    pub fn poll(&mut self) -> PollOutcome {
        let target = match self.registry.resolve(&self.name, &self.alias) {
            Ok(target) => target,
            Err(error) => {
                tracing::debug!(
                    model = %self.name,
                    alias = %self.alias,
                    "cannot resolve: {}",
                    error_chain(&error)
                );
                return PollOutcome::Unresolved;
            }
        };
        let current = self.slot.get();
        if current.as_ref().is_some_and(|c| {
            c.version.version == target.version && c.version.digest == target.digest
        }) {
            self.failed = None;
            return PollOutcome::Unchanged;
        }
        let known_failure = self
            .failed
            .as_ref()
            .filter(|(version, digest, _)| *version == target.version && *digest == target.digest);
        if known_failure.is_some_and(|(_, _, at)| at.elapsed() < RETRY_FAILED) {
            return PollOutcome::Unchanged;
        }
        let first_failure = known_failure.is_none();
        match self.registry.load_verified(&target) {
            Ok(model) => {
                let to = target.version;
                let from = current.map(|c| c.version.version);
                self.slot.swap(Arc::new(LoadedModel {
                    version: target,
                    model,
                }));
                self.failed = None;
                self.metrics.model_in_use(self.role, to);
                self.metrics.swapped(self.role);
                tracing::info!(
                    model = %self.name,
                    alias = %self.alias,
                    "now serving v{to} (was {})",
                    from.map_or("none".to_string(), |v| format!("v{v}"))
                );
                PollOutcome::Swapped { from, to }
            }
            Err(error) => {
                if first_failure {
                    self.metrics.swap_failed(self.role);
                    tracing::error!(
                        model = %self.name,
                        alias = %self.alias,
                        "refusing v{}: {}; still serving {}",
                        target.version,
                        error_chain(&error),
                        current.map_or("nothing".to_string(), |c| format!("v{}", c.version.version))
                    );
                }
                let version = target.version;
                self.failed = Some((target.version, target.digest, Instant::now()));
                PollOutcome::Refused { version }
            }
        }
    }

    /// Polls every `interval` until `stop` receives or is dropped.
    pub fn run(mut self, interval: Duration, stop: &Receiver<()>) {
        loop {
            self.poll();
            match stop.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;
    use crate::serve::test_support::registry_with_versions;

    fn watcher(
        registry: ModelRegistry,
        alias: &str,
    ) -> (AliasWatcher, Arc<ModelSlot>, Arc<Metrics>) {
        let slot = Arc::new(ModelSlot::default());
        let metrics = Arc::new(Metrics::default());
        let watcher = AliasWatcher::new(
            registry,
            "obesity",
            alias,
            Role::Champion,
            Arc::clone(&slot),
            Arc::clone(&metrics),
        );
        (watcher, slot, metrics)
    }

    #[test]
    fn promotion_and_rollback_swap_the_served_version() {
        let (dir, registry, _) = registry_with_versions(2);
        let (mut watcher, slot, metrics) = watcher(registry, "production");
        assert_eq!(watcher.poll(), PollOutcome::Swapped { from: None, to: 1 });
        assert_eq!(watcher.poll(), PollOutcome::Unchanged);
        let registry = ModelRegistry::open(&dir.path().join(".dag")).unwrap();
        registry.set_alias("obesity", "production", 2).unwrap();
        assert_eq!(
            watcher.poll(),
            PollOutcome::Swapped {
                from: Some(1),
                to: 2
            }
        );
        assert_eq!(slot.get().unwrap().version.version, 2);
        registry.rollback("obesity", "production").unwrap();
        assert_eq!(
            watcher.poll(),
            PollOutcome::Swapped {
                from: Some(2),
                to: 1
            }
        );
        assert_eq!(metrics.swap_count(Role::Champion), 3);
    }

    #[test]
    fn corrupted_blob_is_never_swapped_in_and_counts_one_failure() {
        let (dir, registry, versions) = registry_with_versions(2);
        let blob = registry.blob_path(&versions[1].digest);
        let (mut watcher, slot, metrics) = watcher(registry, "production");
        watcher.poll();
        std::fs::write(&blob, b"{\"format\": \"garbage\"}").unwrap();
        let registry = ModelRegistry::open(&dir.path().join(".dag")).unwrap();
        registry.set_alias("obesity", "production", 2).unwrap();
        assert_eq!(watcher.poll(), PollOutcome::Refused { version: 2 });
        assert_eq!(watcher.poll(), PollOutcome::Unchanged);
        assert_eq!(slot.get().unwrap().version.version, 1);
        assert_eq!(metrics.swap_failure_count(Role::Champion), 1);
    }

    #[test]
    fn unknown_alias_leaves_the_slot_empty() {
        let (_dir, registry, _) = registry_with_versions(1);
        let (mut watcher, slot, _) = watcher(registry, "challenger");
        assert_eq!(watcher.poll(), PollOutcome::Unresolved);
        assert!(slot.get().is_none());
    }
}
