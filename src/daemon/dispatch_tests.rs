//! The dispatcher's policies, persistence and drain, on a real store.

use super::*;
use crate::record::Recorder;

struct Fixture {
    dispatcher: Arc<Dispatcher>,
    _recorder: Recorder,
    _dir: tempfile::TempDir,
}

fn fixture(overlap: &str) -> Result<Fixture, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("dags"))?;
    std::fs::write(
        dir.path().join("dags/slow.yaml"),
        format!(
            "name: slow\nschedule: {{ cron: \"0 0 1 1 *\", overlap: {overlap} }}\n\
             tasks:\n  t:\n    operator: noop\n    params: {{ sleep_ms: 300 }}\n"
        ),
    )?;
    let (store, _) = dag_state::Store::open(&dir.path().join(".dag/db"))?;
    let store = Arc::new(store);
    let recorder = Recorder::spawn(Arc::clone(&store), None);
    let registry = Arc::new(crate::ops::registry());
    let engine = Engine {
        registry: Arc::clone(&registry),
        store,
        recorder: recorder.handle(),
        workdir: dir.path().to_path_buf(),
        state_dir: dir.path().join(".dag"),
        log_limit: dag_operators::DEFAULT_LOG_LIMIT,
        notifications: Default::default(),
    };
    let mut dags = DagSet::default();
    dags.reload(&dir.path().join("dags"), &registry);
    Ok(Fixture {
        dispatcher: Dispatcher::new(engine, dags),
        _recorder: recorder,
        _dir: dir,
    })
}

fn cron_fire() -> Submission {
    Submission {
        fire: Fire {
            dag: "slow".into(),
            trigger: Trigger {
                kind: "cron".into(),
                detail: String::new(),
            },
            logical_date: None,
            params: BTreeMap::new(),
            due_ms: now_ms(),
        },
        explicit: false,
        options: RunOptions::default(),
    }
}

async fn settle(dispatcher: &Dispatcher) {
    while !dispatcher.active().is_empty() || !dispatcher.queued().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn statuses(dispatcher: &Dispatcher) -> Vec<RunStatus> {
    let mut runs = dispatcher
        .engine
        .store
        .runs(Some("slow"), 10)
        .unwrap_or_default();
    runs.sort_by_key(|r| r.started_at_ms);
    runs.iter().map(|r| r.status).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_drops_a_fire_that_finds_the_dag_busy_but_requests_queue()
-> Result<(), Box<dyn std::error::Error>> {
    let f = fixture("skip")?;
    let first = f.dispatcher.submit(cron_fire())?;
    assert!(
        matches!(first, Accepted::Started { tasks: 1, .. }),
        "{first:?}"
    );
    let second = f.dispatcher.submit(cron_fire())?;
    assert!(matches!(second, Accepted::Skipped { .. }), "{second:?}");
    let mut asked = cron_fire();
    asked.explicit = true;
    let third = f.dispatcher.submit(asked)?;
    assert!(
        matches!(third, Accepted::Queued { position: 1, .. }),
        "{third:?}"
    );
    settle(&f.dispatcher).await;
    assert_eq!(statuses(&f.dispatcher), vec![RunStatus::Succeeded; 2]);
    assert!(
        f.dispatcher
            .metrics
            .render()
            .contains("dag_fires_skipped_total{dag=\"slow\"} 1")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_runs_fires_one_after_another() -> Result<(), Box<dyn std::error::Error>> {
    let f = fixture("queue")?;
    f.dispatcher.submit(cron_fire())?;
    let second = f.dispatcher.submit(cron_fire())?;
    assert!(matches!(second, Accepted::Queued { .. }), "{second:?}");
    assert_eq!(f.dispatcher.active().len(), 1);
    settle(&f.dispatcher).await;
    assert_eq!(statuses(&f.dispatcher), vec![RunStatus::Succeeded; 2]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_previous_cancels_the_running_run_for_the_new_fire()
-> Result<(), Box<dyn std::error::Error>> {
    let f = fixture("cancel_previous")?;
    f.dispatcher.submit(cron_fire())?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = f.dispatcher.submit(cron_fire())?;
    assert!(matches!(second, Accepted::Queued { .. }), "{second:?}");
    settle(&f.dispatcher).await;
    assert_eq!(
        statuses(&f.dispatcher),
        vec![RunStatus::Cancelled, RunStatus::Succeeded]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_dags_and_params_are_refused_and_drain_stops_everything()
-> Result<(), Box<dyn std::error::Error>> {
    let f = fixture("queue")?;
    let mut unknown = cron_fire();
    unknown.fire.dag = "slo".into();
    let error = f.dispatcher.submit(unknown).err().map(|e| e.to_string());
    assert!(error.is_some_and(|e| e.contains("did you mean `slow`")));
    let mut bad = cron_fire();
    bad.fire
        .params
        .insert("nope".into(), serde_json::Value::Null);
    assert!(matches!(
        f.dispatcher.submit(bad),
        Err(SubmitError::Invalid(_))
    ));

    let running = f.dispatcher.submit(cron_fire())?;
    let queued = f.dispatcher.submit(cron_fire())?;
    f.dispatcher.drain(Duration::from_millis(20)).await;
    assert!(matches!(
        f.dispatcher.submit(cron_fire()),
        Err(SubmitError::ShuttingDown)
    ));
    assert!(f.dispatcher.active().is_empty() && f.dispatcher.queued().is_empty());
    let store = &f.dispatcher.engine.store;
    let status = |id: Option<&str>| {
        store
            .run(id.unwrap_or_default())
            .ok()
            .flatten()
            .map(|r| r.status)
    };
    assert_eq!(status(running.run_id()), Some(RunStatus::Interrupted));
    assert_eq!(
        status(queued.run_id()),
        Some(RunStatus::Cancelled),
        "a dropped queued run never starts, and says so"
    );
    let events = store.events(queued.run_id().unwrap_or_default())?;
    assert_eq!(
        events.last().map(|e| e.detail["reason"].clone()),
        Some(serde_json::json!("the daemon shut down before it started"))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_run_is_in_the_store_before_submit_returns()
-> Result<(), Box<dyn std::error::Error>> {
    let f = fixture("queue")?;
    // No recorder flush in between: what `submit` returned is durable.
    let started = f.dispatcher.submit(cron_fire())?;
    let queued = f.dispatcher.submit(cron_fire())?;
    for accepted in [&started, &queued] {
        let id = accepted.run_id().ok_or("accepted without an id")?;
        assert!(f.dispatcher.engine.store.run(id)?.is_some(), "{accepted:?}");
    }
    let waiting = f.dispatcher.engine.store.queued_runs()?;
    assert!(
        waiting
            .iter()
            .any(|(run, _)| Some(run.run_id.as_str()) == queued.run_id()),
        "the queued run and its request are stored"
    );
    settle(&f.dispatcher).await;
    assert!(f.dispatcher.engine.store.queued_runs()?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_task_to_force_is_refused() -> Result<(), Box<dyn std::error::Error>> {
    let f = fixture("queue")?;
    let mut forced = cron_fire();
    forced.options.force_tasks = vec!["nope".into()];
    let error = f.dispatcher.submit(forced).err();
    assert!(
        matches!(&error, Some(SubmitError::Invalid(ExecuteError::UnknownTask { name, .. })) if name == "nope"),
        "{error:?}"
    );
    assert!(f.dispatcher.engine.store.runs(None, 10)?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_accepted_before_a_crash_start_under_their_ids_or_end_with_a_reason()
-> Result<(), Box<dyn std::error::Error>> {
    let f = fixture("queue")?;
    let store = Arc::clone(&f.dispatcher.engine.store);
    // What a crashed daemon leaves: accepted runs, recorded as queued.
    let dag = f.dispatcher.dag("slow").ok_or("slow is loaded")?;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = new_run_id();
        let (record, request) = queued_record(&id, &dag, &cron_fire());
        store.enqueue_run(record, request)?;
        ids.push(id);
    }
    let mut gone = cron_fire();
    gone.fire.dag = "deleted".into();
    let mut record = queued_record("orphan", &dag, &gone).0;
    record.dag = "deleted".into();
    store.enqueue_run(record, serde_json::json!({"explicit": true, "due_ms": 0}))?;

    assert_eq!(f.dispatcher.recover_queue(), 2);
    settle(&f.dispatcher).await;
    for id in &ids {
        let run = store.run(id)?.ok_or("recovered run missing")?;
        assert_eq!(run.status, RunStatus::Succeeded, "{id}");
    }
    let orphan = store.run("orphan")?.ok_or("orphan missing")?;
    assert_eq!(orphan.status, RunStatus::Cancelled);
    let reason = store
        .events("orphan")?
        .last()
        .map(|e| e.detail["reason"].clone());
    assert!(
        reason
            .as_ref()
            .and_then(|r| r.as_str())
            .is_some_and(|r| r.contains("no DAG named `deleted`")),
        "{reason:?}"
    );
    assert!(store.queued_runs()?.is_empty());
    Ok(())
}
