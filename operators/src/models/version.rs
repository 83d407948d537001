//! The registry's records: [`ModelVersion`] (the `dag models list --json`
//! shape), [`RegisterInfo`], [`AliasMove`] and [`Rollback`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ml::FeatureImportance;
use crate::models::{AliasEvent, GateRecord};

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
    /// Input name → the registry's copy of that data under `blobs/`, so the
    /// data a version was trained and tested on stays readable after the
    /// files it came from are overwritten.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data_blobs: BTreeMap<String, String>,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub task_id: Option<String>,
    /// Per-class labels declared at registration, by annotation name
    /// (`risk` → class → `high`); the server adds each to its answers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, BTreeMap<String, String>>,
    /// Permutation importance of the raw input columns on held-out rows,
    /// most important first, from the `ml.evaluate` report registered as
    /// the version's metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub importance: Vec<FeatureImportance>,
    /// Gate verdicts on this version, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateRecord>,
}

/// What a registration records besides the model file itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisterInfo {
    pub metrics: BTreeMap<String, f64>,
    pub params: Value,
    pub data_digests: BTreeMap<String, String>,
    /// Input name → blob file name, from [`ModelRegistry::store_data`](crate::models::ModelRegistry::store_data).
    #[serde(default)]
    pub data_blobs: BTreeMap<String, String>,
    pub run_id: Option<String>,
    pub task_id: Option<String>,
    /// Per-class labels declared at registration, by annotation name
    /// (`risk` → class → `high`); the server adds each to its answers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub importance: Vec<FeatureImportance>,
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

/// What `rollback` did: the alias's move, the aliases that moved back with
/// it (moved to the rolled-back version by the same promotion), and why any
/// other alias on that version stayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    #[serde(flatten)]
    pub moved: AliasMove,
    pub followed: Vec<AliasMove>,
    pub stayed: Vec<String>,
}

impl std::fmt::Display for Rollback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.moved)?;
        for follower in &self.followed {
            write!(f, "; {follower} (moved with {})", self.moved.alias)?;
        }
        for note in &self.stayed {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

/// An alias's current target, the targets it had before (oldest first, the
/// stack `rollback` pops), and every move it made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasState {
    pub current: u32,
    #[serde(default)]
    pub history: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<AliasEvent>,
}
