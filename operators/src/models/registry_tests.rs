//! Tests of [`ModelRegistry`]: versions, aliases and their history,
//! rollback, stored data and gate verdicts.

#![expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]

use std::collections::BTreeMap;

use crate::ml::test_fixtures::tiny_model;
use crate::models::{
    Actor, AliasMove, EvaluationRows, GateRecord, ModelRegistry, MoveKind, RegisterInfo,
    RegistryError, ScoredVersion,
};

fn setup() -> (tempfile::TempDir, ModelRegistry) {
    let dir = tempfile::tempdir().unwrap();
    let registry = ModelRegistry::open(&dir.path().join(".dag")).unwrap();
    (dir, registry)
}

#[test]
fn versions_are_numbered_and_listed_with_aliases() {
    let (dir, registry) = setup();
    let model = tiny_model(dir.path(), 1);
    let info = RegisterInfo {
        metrics: BTreeMap::from([("accuracy".into(), 0.9)]),
        ..Default::default()
    };
    let v1 = registry.register("obesity", &model, info.clone()).unwrap();
    let v2 = registry
        .register("obesity", &tiny_model(dir.path(), 2), info)
        .unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    registry.set_alias("obesity", "champion", 2).unwrap();
    let listed = registry.list(Some("obesity")).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].aliases, ["champion"]);
    assert_eq!(listed[0].metrics["accuracy"], 0.9);
    assert_eq!(registry.resolve("obesity", "champion").unwrap().version, 2);
    assert_eq!(registry.resolve("obesity", "1").unwrap().digest, v1.digest);
    assert_eq!(registry.list(None).unwrap().len(), 2);
}

#[test]
fn rollback_returns_to_the_previous_target_then_reports_no_history() {
    let (dir, registry) = setup();
    let model = tiny_model(dir.path(), 1);
    registry
        .register("m", &model, RegisterInfo::default())
        .unwrap();
    registry
        .register("m", &model, RegisterInfo::default())
        .unwrap();
    let first = registry.set_alias("m", "production", 1).unwrap();
    assert_eq!(
        first,
        AliasMove {
            alias: "production".into(),
            from: None,
            to: 1
        }
    );
    registry.set_alias("m", "production", 2).unwrap();
    let back = registry.rollback("m", "production").unwrap();
    assert!(back.followed.is_empty());
    assert_eq!(
        back.moved,
        AliasMove {
            alias: "production".into(),
            from: Some(2),
            to: 1
        }
    );
    let error = registry.rollback("m", "production").unwrap_err();
    assert!(matches!(error, RegistryError::NoHistory { .. }), "{error}");
}

#[test]
fn unknown_model_version_and_alias_are_clear_errors() {
    let (dir, registry) = setup();
    registry
        .register("m", &tiny_model(dir.path(), 1), RegisterInfo::default())
        .unwrap();
    assert_eq!(
        registry.resolve("other", "1").unwrap_err().to_string(),
        "unknown model `other`"
    );
    assert_eq!(
        registry.get("m", 9).unwrap_err().to_string(),
        "model `m` has no version 9"
    );
    assert!(
        registry
            .resolve("m", "champion")
            .unwrap_err()
            .to_string()
            .contains("`champion`")
    );
    assert!(registry.set_alias("m", "champion", 4).is_err());
}

#[test]
fn tampered_blob_is_refused_with_both_digests() {
    let (dir, registry) = setup();
    let version = registry
        .register("m", &tiny_model(dir.path(), 1), RegisterInfo::default())
        .unwrap();
    std::fs::write(registry.blob_path(&version.digest), b"{}").unwrap();
    let message = registry.load_verified(&version).unwrap_err().to_string();
    assert!(
        message.contains(&version.digest) && message.contains("blobs"),
        "{message}"
    );
}

#[test]
fn loads_a_verified_model() {
    let (dir, registry) = setup();
    let version = registry
        .register("m", &tiny_model(dir.path(), 1), RegisterInfo::default())
        .unwrap();
    assert_eq!(
        registry.load_verified(&version).unwrap().classes(),
        ["high", "low", "mid"]
    );
}

#[test]
fn failed_registration_leaves_the_registry_intact() {
    let (dir, registry) = setup();
    registry
        .register("m", &tiny_model(dir.path(), 1), RegisterInfo::default())
        .unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, b"not a model").unwrap();
    assert!(matches!(
        registry.register("m", &garbage, RegisterInfo::default()),
        Err(RegistryError::Model { .. })
    ));
    assert_eq!(registry.list(Some("m")).unwrap().len(), 1);
    assert_eq!(
        std::fs::read_dir(dir.path().join(".dag/models/blobs"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn names_that_could_escape_the_registry_are_rejected() {
    let (dir, registry) = setup();
    let model = tiny_model(dir.path(), 1);
    for bad in ["../x", "blobs", "7", ""] {
        assert!(matches!(
            registry.register(bad, &model, RegisterInfo::default()),
            Err(RegistryError::InvalidName { .. })
        ));
    }
}

#[test]
fn corrupt_metadata_names_the_file() {
    let (dir, registry) = setup();
    registry
        .register("m", &tiny_model(dir.path(), 1), RegisterInfo::default())
        .unwrap();
    std::fs::write(dir.path().join(".dag/models/m/versions/1.json"), b"{").unwrap();
    let message = registry.get("m", 1).unwrap_err().to_string();
    assert!(
        message.contains("1.json") && message.contains("corrupt"),
        "{message}"
    );
}

fn two_versions(dir: &std::path::Path, registry: &ModelRegistry) {
    for seed in [1, 2] {
        registry
            .register("m", &tiny_model(dir, seed), RegisterInfo::default())
            .unwrap();
    }
}

#[test]
fn rolling_back_production_moves_back_the_aliases_its_promotion_moved() {
    let (dir, registry) = setup();
    two_versions(dir.path(), &registry);
    let first = Actor::task("d", "r1", "promote");
    let second = Actor::task("d", "r2", "promote");
    for alias in ["champion", "production"] {
        registry.set_alias_by("m", alias, 1, &first).unwrap();
        registry.set_alias_by("m", alias, 2, &second).unwrap();
    }
    let rollback = registry.rollback("m", "production").unwrap();
    assert_eq!(
        rollback.to_string(),
        "production: v2 → v1; champion: v2 → v1 (moved with production)"
    );
    assert_eq!(registry.resolve("m", "champion").unwrap().version, 1);
    let history = registry.history("m").unwrap();
    let last: Vec<(String, MoveKind, Option<String>)> = history[history.len() - 2..]
        .iter()
        .map(|e| (e.alias.clone(), e.kind, e.note.clone()))
        .collect();
    assert_eq!(
        last,
        [
            ("production".into(), MoveKind::Rollback, None),
            (
                "champion".into(),
                MoveKind::Rollback,
                Some("with production".into())
            )
        ]
    );
    assert!(history.last().unwrap().by.is_by_hand());
    assert_eq!(
        history.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
}

#[test]
fn an_alias_moved_separately_stays_and_the_rollback_says_why() {
    let (dir, registry) = setup();
    two_versions(dir.path(), &registry);
    registry
        .set_alias_by("m", "production", 1, &Actor::task("d", "r1", "promote"))
        .unwrap();
    registry
        .set_alias_by("m", "production", 2, &Actor::task("d", "r2", "promote"))
        .unwrap();
    registry.set_alias("m", "champion", 2).unwrap();
    let rollback = registry.rollback("m", "production").unwrap();
    assert!(rollback.followed.is_empty());
    assert_eq!(rollback.stayed.len(), 1);
    assert!(
        rollback.stayed[0].starts_with("`champion` stays at v2: `dag models promote`"),
        "{}",
        rollback.stayed[0]
    );
    assert_eq!(registry.resolve("m", "champion").unwrap().version, 2);
}

#[test]
fn history_names_who_moved_each_alias_and_skips_moves_to_where_it_is() {
    let (dir, registry) = setup();
    two_versions(dir.path(), &registry);
    let run = Actor::task("obesity", "r9", "register_forest");
    registry.set_alias_by("m", "challenger", 1, &run).unwrap();
    let again = registry.set_alias_by("m", "challenger", 1, &run).unwrap();
    assert_eq!((again.from, again.to), (Some(1), 1));
    registry.set_alias("m", "challenger", 2).unwrap();
    let history = registry.history("m").unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0].by.run_id.as_deref(), Some("r9"));
    assert_eq!(history[1].by.command.as_deref(), Some("dag models promote"));
    let away = registry.last_move_away("m", "challenger", 1).unwrap();
    assert_eq!(away.map(|e| e.seq), Some(2));
    assert!(
        registry
            .last_move_away("m", "challenger", 2)
            .unwrap()
            .is_none()
    );
    assert_eq!(registry.alias_target("m", "champion").unwrap(), None);
    assert_eq!(registry.alias_target("m", "challenger").unwrap(), Some(2));
}

#[test]
fn stored_data_is_readable_by_version_and_refused_when_tampered() {
    let (dir, registry) = setup();
    let train = dir.path().join("train.parquet");
    std::fs::write(&train, b"rows").unwrap();
    let (digest, blob) = registry.store_data(&train).unwrap();
    assert_eq!(blob, format!("{digest}.parquet"));
    let info = RegisterInfo {
        data_digests: BTreeMap::from([("train".into(), digest.clone())]),
        data_blobs: BTreeMap::from([("train".into(), blob)]),
        ..RegisterInfo::default()
    };
    let version = registry
        .register("m", &tiny_model(dir.path(), 1), info)
        .unwrap();
    std::fs::write(&train, b"overwritten").unwrap();
    let stored = registry.data_file(&version, "train").unwrap();
    assert_eq!(std::fs::read(&stored).unwrap(), b"rows");
    let missing = registry
        .data_file(&version, "test")
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("no stored `test` data (it has: train)"),
        "{missing}"
    );
    std::fs::write(&stored, b"tampered").unwrap();
    assert!(matches!(
        registry.data_file(&version, "train"),
        Err(RegistryError::DigestMismatch { .. })
    ));
    let found = registry
        .find_registered("m", &version.digest, &version.data_digests)
        .unwrap();
    assert_eq!(found.map(|v| v.version), Some(1));
    assert!(
        registry
            .find_registered("m", &version.digest, &BTreeMap::new())
            .unwrap()
            .is_none()
    );
}

#[test]
fn gate_verdicts_are_kept_with_the_version() {
    let (dir, registry) = setup();
    let version = registry
        .register("m", &tiny_model(dir.path(), 1), RegisterInfo::default())
        .unwrap();
    registry.set_alias("m", "production", 1).unwrap();
    let record = GateRecord {
        passed: true,
        rows: EvaluationRows {
            count: 3,
            digest: "rows".into(),
        },
        challenger: ScoredVersion {
            version: 1,
            alias: None,
            digest: version.digest.clone(),
            metrics: BTreeMap::from([("accuracy".into(), 1.0)]),
        },
        champion: None,
        criteria: Vec::new(),
        tracked: Vec::new(),
        reasons: Vec::new(),
        at: Some("2026-01-01T00:00:00Z".into()),
        by: Some(Actor::task("d", "r", "gate")),
    };
    registry.record_gate("m", 1, record.clone()).unwrap();
    let stored = registry.get("m", 1).unwrap();
    assert_eq!(stored.gates, [record]);
    assert_eq!(stored.aliases, ["production"]);
}

#[test]
fn temporaries_of_dead_writers_are_removed_and_live_ones_kept() {
    let (dir, registry) = setup();
    let model_dir = dir.path().join(".dag/models/obesity");
    std::fs::create_dir_all(&model_dir).unwrap();
    // 4194305 is above any Linux pid_max: that writer is gone.
    let dead = model_dir.join(".aliases.json.4194305.tmp");
    let live = model_dir.join(format!(".aliases.json.{}.tmp", std::process::id()));
    std::fs::write(&dead, b"{").unwrap();
    std::fs::write(&live, b"{").unwrap();
    let removed = registry.remove_stale_temporaries();
    assert_eq!(removed, vec![(dead.clone(), 1)]);
    assert!(!dead.exists() && live.exists());
}
