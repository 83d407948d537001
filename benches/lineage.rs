//! Lineage benchmark (release build): `cargo bench --bench lineage`.
//!
//! A store holding 10,000 runs of a 6-task chain (each run reads new raw
//! data, so every run has its own digests), committed in batches of 100
//! runs; then a full upstream walk from the last run's last artifact back to
//! its raw input. The walk runs several times; the median and the best are
//! reported. Goal: 50 ms or less.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dag::lineage::{Start, upstream};
use dag_state::{
    ArtifactRecord, RunRecord, RunStatus, Store, TaskRecord, TaskStatus, Trigger, Write,
};

const RUNS: usize = 10_000;
const CHAIN: usize = 6;
const BATCH: usize = 100;

fn digest(run: usize, step: usize) -> String {
    blake3::hash(format!("{run}/{step}").as_bytes())
        .to_hex()
        .to_string()
}

fn artifact(step: usize, run: usize) -> ArtifactRecord {
    ArtifactRecord {
        name: "data".into(),
        path: format!("data/step{step}.parquet"),
        digest: digest(run, step),
        size: 1024,
    }
}

fn run_writes(run: usize) -> Vec<Write> {
    let run_id = format!("20250101-{run:06}-bench");
    let mut writes = vec![Write::Run(RunRecord {
        run_id: run_id.clone(),
        dag: "chain".into(),
        spec_hash: "spec".into(),
        spec_path: None,
        params: BTreeMap::new(),
        trigger: Trigger {
            kind: "cli".into(),
            detail: String::new(),
        },
        status: RunStatus::Succeeded,
        logical_date: String::new(),
        started_at_ms: run as i64,
        finished_at_ms: Some(run as i64 + 1),
        resumed_from: None,
        env: None,
    })];
    for step in 0..CHAIN {
        writes.push(Write::Task(TaskRecord {
            run_id: run_id.clone(),
            task_id: format!("step{step}"),
            operator: "shell".into(),
            status: TaskStatus::Succeeded,
            attempts: 1,
            reason: None,
            started_at_ms: Some(run as i64),
            finished_at_ms: Some(run as i64 + 1),
            metrics: BTreeMap::new(),
            values: BTreeMap::new(),
            cache_key: Some(digest(run, step + 100)),
            fingerprint: None,
            summary: None,
            definition: None,
            // step 0 reads the raw file (artifact "step 0"), step k writes "step k+1".
            inputs: vec![artifact(step, run)],
            outputs: vec![artifact(step + 1, run)],
        }));
    }
    writes
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open(&dir.path().join("db"))?;
    let started = Instant::now();
    for first in (0..RUNS).step_by(BATCH) {
        let writes: Vec<_> = (first..first + BATCH).flat_map(run_writes).collect();
        store.commit(writes)?;
    }
    println!(
        "populate: {RUNS} runs x {CHAIN} tasks in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let last = RUNS - 1;
    let start = Start::Artifact {
        path: Some(format!("data/step{CHAIN}.parquet")),
        digest: digest(last, CHAIN),
    };
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..21 {
        let began = Instant::now();
        let graph = upstream(&store, &start)?;
        times.push(began.elapsed());
        // 7 artifacts and 6 tasks: the whole chain, nothing from other runs.
        assert_eq!(graph.nodes.len(), 2 * CHAIN + 1);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "upstream walk over {} runs: median {:.3} ms, best {:.3} ms (goal <= 50 ms)",
        RUNS,
        ms(times[times.len() / 2]),
        ms(times[0])
    );
    Ok(())
}
