//! [`Registry`]: operator names → operators.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Operator;

/// The operators a DAG file may name. Adding a built-in operator is one file
/// plus one line in [`Registry::builtin`].
#[derive(Clone, Default)]
pub struct Registry {
    operators: BTreeMap<&'static str, Arc<dyn Operator>>,
}

impl Registry {
    /// Every built-in operator.
    pub fn builtin() -> Self {
        let mut registry = Self::default();
        registry.add(crate::Noop);
        registry.add(crate::Shell);
        registry.add(crate::Python);
        registry.add(crate::data::Clean);
        registry.add(crate::data::Concat);
        registry.add(crate::data::Split);
        registry.add(crate::data::Validate);
        registry.add(crate::data::Synthesize);
        registry.add(crate::monitor::Drift);
        registry.add(crate::ml::Features);
        registry.add(crate::ml::Transform);
        registry.add(crate::ml::Train);
        registry.add(crate::ml::Evaluate);
        registry.add(crate::ml::Gate);
        registry.add(crate::ml::PredictBatch);
        registry.add(crate::models::Register);
        registry.add(crate::models::Promote);
        registry.add(crate::models::Data);
        registry
    }

    pub fn add(&mut self, operator: impl Operator) {
        self.operators.insert(operator.name(), Arc::new(operator));
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Operator>> {
        self.operators.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.operators.keys().copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Operator>> {
        self.operators.values()
    }
}
