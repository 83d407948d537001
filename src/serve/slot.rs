//! [`ModelSlot`]: the model currently answering for one alias, swapped
//! atomically. A request clones the `Arc` once and keeps that model until it
//! has answered, so a swap never changes a model under a request.
//!
//! The slot only holds models; deciding what to load is the watcher's job.

use std::sync::{Arc, PoisonError, RwLock};

use dag_operators::ml::TrainedModel;
use dag_operators::models::ModelVersion;

/// A verified model and the registry record it was loaded from.
#[derive(Debug)]
pub struct LoadedModel {
    pub version: ModelVersion,
    pub model: TrainedModel,
}

#[derive(Debug, Default)]
pub struct ModelSlot {
    current: RwLock<Option<Arc<LoadedModel>>>,
}

impl ModelSlot {
    /// The model in use, if one was loaded.
    pub fn get(&self) -> Option<Arc<LoadedModel>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `model` in use and returns the one it replaces.
    pub fn swap(&self, model: Arc<LoadedModel>) -> Option<Arc<LoadedModel>> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        current.replace(model)
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

    #[test]
    fn a_held_model_survives_a_swap() {
        let (_dir, registry, versions) = registry_with_versions(2);
        let load = |v: &ModelVersion| {
            Arc::new(LoadedModel {
                version: v.clone(),
                model: registry.load_verified(v).unwrap(),
            })
        };
        let slot = ModelSlot::default();
        assert!(slot.get().is_none());
        slot.swap(load(&versions[0]));
        let held = slot.get().unwrap();
        let replaced = slot.swap(load(&versions[1])).unwrap();
        assert_eq!(replaced.version.version, 1);
        assert_eq!(held.version.version, 1);
        assert_eq!(slot.get().unwrap().version.version, 2);
    }
}
