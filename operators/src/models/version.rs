//! The registry's records: [`ModelVersion`] (the `dag models list --json`
//! shape), [`RegisterInfo`], [`AliasMove`], and an alias's [`AliasState`]
//! with the [`AliasEvent`]s that moved it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One registered version of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: u32,
    /// blake3 hex of the model file, also its blob name.
    pub digest: String,
    /// Aliases currently pointing here (filled in from the alias file).
    #[serde(default)]
    pub aliases: Vec<String>,
    pub metrics: BTreeMap<String, f64>,
    /// RFC 3339.
    pub created_at: String,
    #[serde(default)]
    pub params: Value,
    /// Input name → blake3 of the data the model was trained on.
    #[serde(default)]
    pub data_digests: BTreeMap<String, String>,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub task_id: Option<String>,
}

/// What a registration records besides the model file itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisterInfo {
    pub metrics: BTreeMap<String, f64>,
    pub params: Value,
    pub data_digests: BTreeMap<String, String>,
    pub run_id: Option<String>,
    pub task_id: Option<String>,
}

/// The effect of pointing an alias somewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasMove {
    pub alias: String,
    pub from: Option<u32>,
    pub to: u32,
}

impl std::fmt::Display for AliasMove {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.from {
            Some(from) => write!(f, "{}: v{from} → v{}", self.alias, self.to),
            None => write!(f, "{}: (none) → v{}", self.alias, self.to),
        }
    }
}

/// An alias's current target and the targets it had before, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasState {
    pub current: u32,
    /// Where a rollback goes: the targets before `current`, oldest first.
    #[serde(default)]
    pub history: Vec<u32>,
    /// Every move of the alias, oldest first (none for files written before
    /// moves were recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<AliasEvent>,
}

/// One recorded move of an alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasEvent {
    /// RFC 3339.
    pub at: String,
    pub from: Option<u32>,
    pub to: u32,
    /// `set` (promote, register, the `models.promote` operator) or `rollback`.
    pub action: String,
}
