//! `shell`: runs a command in its own process group.
//!
//! stdout and stderr are copied into the attempt's log, which keeps a
//! bounded number of bytes. On timeout, cancellation or the attempt being
//! dropped, the whole process group is killed, and so is every process
//! carrying the attempt's tag (one that left the group with `setsid`); the
//! command dies with the engine (`PR_SET_PDEATHSIG`). See `process_tree`.
//!
//! This is also the subprocess protocol for operators written in any
//! language: the child gets `DAG_CONTEXT` (a JSON file describing the
//! attempt) and `DAG_OUTCOME` (a path it may write a JSON object to:
//! `{"values": {..}, "metrics": {..}, "summary": "..", "short_circuit": ".."}`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::process_tree::{
    PROCESS_TAG_VAR, attempt_tag, die_with_parent, kill_tagged, pdeathsig_wrapper,
};
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
};

pub struct Shell;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Run with `sh -c`.
    command: Option<String>,
    /// Run directly, no shell.
    argv: Option<Vec<String>>,
    /// Extra environment variables. Values may be strings, numbers or booleans (a single `{{ params.port }}`
    /// template renders to the param's own type); they reach the child as text.
    #[serde(default, deserialize_with = "scalar_strings")]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    env: BTreeMap<String, String>,
    /// Working directory, relative to the project root.
    cwd: Option<String>,
}

pub(crate) fn scalar_strings<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, Value>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(name, value)| match value {
            Value::String(s) => Ok((name, s)),
            Value::Number(n) => Ok((name, n.to_string())),
            Value::Bool(b) => Ok((name, b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "`env.{name}` must be a string, a number or a boolean, not {}",
                match other {
                    Value::Null => "null",
                    Value::Array(_) => "a list",
                    _ => "a mapping",
                }
            ))),
        })
        .collect()
}

impl Params {
    fn problems(&self) -> Vec<Problem> {
        match (&self.command, &self.argv) {
            (Some(_), Some(_)) => {
                vec![Problem::new("params", "give `command` or `argv`, not both")]
            }
            (None, None) => vec![
                Problem::new("params", "missing `command` or `argv`")
                    .with_help("add `command: \"echo hello\"` or `argv: [echo, hello]`"),
            ],
            (None, Some(argv)) if argv.is_empty() => {
                vec![Problem::new("params.argv", "`argv` is empty")]
            }
            _ => Vec::new(),
        }
    }
}

/// The JSON a child may write to `DAG_OUTCOME`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChildOutcome {
    #[serde(default)]
    values: BTreeMap<String, Value>,
    #[serde(default)]
    metrics: BTreeMap<String, f64>,
    summary: Option<String>,
    short_circuit: Option<String>,
}

impl Operator for Shell {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn description(&self) -> &'static str {
        "runs `command` with `sh -c`, or `argv` directly, in its own process group"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[],
            outputs: &[],
            any_inputs: Some("any files the command reads, hashed for caching and lineage"),
            any_outputs: Some("any files the command writes; each must exist after success"),
        };
        PORTS
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["exit_code"]
    }

    fn open_values(&self) -> bool {
        true
    }

    fn cacheable(&self) -> bool {
        false
    }

    fn starts_processes(&self) -> bool {
        true
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        match parse_params::<Params>(spec.params) {
            Ok(params) => params.problems(),
            Err(problem) => vec![problem],
        }
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        Box::pin(run(ctx))
    }
}

async fn run(ctx: &Context) -> Result<Outcome, OperatorError> {
    let params: Params = parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
    if let Some(problem) = params.problems().into_iter().next() {
        return Err(OperatorError::Params(problem.message));
    }
    let program: Vec<&str> = match (&params.command, &params.argv) {
        (Some(script), _) => vec!["sh", "-c", script],
        (None, Some(argv)) if !argv.is_empty() => argv.iter().map(String::as_str).collect(),
        (None, Some(_)) => return Err(OperatorError::Params("`argv` is empty".into())),
        (None, None) => return Err(OperatorError::Params("missing `command` or `argv`".into())),
    };
    let process = Process {
        program: &program,
        env: &params.env,
        cwd: params.cwd.as_deref(),
    };
    let mut outcome = run_process(ctx, &process, |failure| {
        format!("command failed with {}{}", failure.how, failure.log)
    })
    .await?;
    // A process that exits non-zero fails the attempt, so a success is 0.
    outcome.values.insert("exit_code".into(), json!(0));
    Ok(outcome)
}

/// A process run under the subprocess protocol (see the module docs).
pub(crate) struct Process<'a> {
    /// The program and its arguments.
    pub program: &'a [&'a str],
    pub env: &'a BTreeMap<String, String>,
    /// Working directory, relative to the project root.
    pub cwd: Option<&'a str>,
}

/// How a process ended unsuccessfully, for the operator's error message.
pub(crate) struct Failure {
    /// `exit status 3` or `killed by a signal`.
    pub how: String,
    /// ` (log: PATH)`, or empty without a log file.
    pub log: String,
}

/// The scratch files of an attempt: its context, its outcome, and any
/// other file a wrapper around the process wants (`{task}.{attempt}.{name}`).
pub(crate) fn scratch_file(ctx: &Context, name: &str) -> PathBuf {
    scratch_dir(ctx).join(format!("{}.{}.{name}", ctx.task_id, ctx.attempt))
}

/// Runs `process` to the end: logs copied, the attempt's context written to
/// `DAG_CONTEXT`, the outcome read from `DAG_OUTCOME`; a timeout,
/// cancellation or drop kills its process group and tagged stragglers.
/// A non-zero exit is an error with the message `failed` makes of it.
pub(crate) async fn run_process(
    ctx: &Context,
    process: &Process<'_>,
    failed: impl FnOnce(Failure) -> String,
) -> Result<Outcome, OperatorError> {
    let scratch = scratch_dir(ctx);
    std::fs::create_dir_all(&scratch).map_err(|e| OperatorError::io("create", &scratch, e))?;
    let context_path = scratch_file(ctx, "context.json");
    let outcome_path = scratch_file(ctx, "outcome.json");
    let _ = std::fs::remove_file(&outcome_path);
    let described = serde_json::to_vec_pretty(&describe(ctx))
        .map_err(|e| OperatorError::failed(e.to_string()))?;
    std::fs::write(&context_path, described)
        .map_err(|e| OperatorError::io("write", &context_path, e))?;

    let program = process.program;
    let Some(first) = program.first() else {
        return Err(OperatorError::Params("no program to run".into()));
    };
    // The task dies with the engine either way: through `setpriv` when it
    // can (no fork of the engine), or by a prctl between fork and exec.
    let wrapper = pdeathsig_wrapper();
    let mut command = match wrapper {
        Some(setpriv) => {
            let mut command = tokio::process::Command::new(setpriv);
            command.args(["--pdeathsig", "KILL", "--"]).args(program);
            command
        }
        None => {
            let mut command = tokio::process::Command::new(first);
            command.args(program.iter().skip(1));
            command
        }
    };
    let tag = ctx
        .process_tag
        .clone()
        .unwrap_or_else(|| attempt_tag(&ctx.state_dir, &ctx.run_id, &ctx.task_id, ctx.attempt));
    command
        .current_dir(
            process
                .cwd
                .map_or_else(|| ctx.workdir.clone(), |cwd| ctx.workdir.join(cwd)),
        )
        .envs(process.env)
        .env("DAG_RUN_ID", &ctx.run_id)
        .env("DAG_TASK_ID", &ctx.task_id)
        .env("DAG_ATTEMPT", ctx.attempt.to_string())
        .env("DAG_CONTEXT", &context_path)
        .env("DAG_OUTCOME", &outcome_path)
        .env(PROCESS_TAG_VAR, &tag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: `die_with_parent` only calls prctl, getppid and _exit, which
    // are async-signal-safe, as code between fork and exec must be.
    let parent = unsafe { libc::getpid() };
    if wrapper.is_none() {
        unsafe {
            command.pre_exec(move || die_with_parent(parent));
        }
    }
    let mut child = command
        .spawn()
        .map_err(|error| OperatorError::failed(format!("cannot start `{first}`: {error}")))?;
    let output = OutputCopy::start(&mut child, &ctx.log);
    let group = GroupGuard {
        pgid: child.id().and_then(|pid| i32::try_from(pid).ok()),
        tag: Some(tag.clone()),
    };
    let status = tokio::select! {
        status = child.wait() => status.map_err(|e| OperatorError::failed(format!("waiting for the command failed: {e}"))),
        () = ctx.cancel.cancelled() => {
            group.kill_group();
            let _ = child.wait().await;
            kill_escaped(&tag).await;
            output.finish(&tag).await;
            return Err(OperatorError::Cancelled);
        }
    };
    // The leader exited; stragglers in its group go with it, and any that
    // left the group and still hold its output are found by their tag.
    group.kill_group();
    output.finish(&tag).await;
    let status = status?;
    let _ = std::fs::remove_file(&context_path);
    let code = status.code();
    if !status.success() {
        let how = match code {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        };
        let log = ctx
            .log
            .path()
            .map(|p| format!(" (log: {})", p.display()))
            .unwrap_or_default();
        return Err(OperatorError::failed(failed(Failure { how, log })));
    }
    read_outcome(&outcome_path)
}

fn scratch_dir(ctx: &Context) -> PathBuf {
    ctx.state_dir.join("tmp").join(&ctx.run_id)
}

fn describe(ctx: &Context) -> Value {
    json!({
        "dag": ctx.dag,
        "run_id": ctx.run_id,
        "task_id": ctx.task_id,
        "attempt": ctx.attempt,
        "logical_date": ctx.logical_date,
        "params": ctx.params,
        "inputs": ctx.inputs,
        "outputs": ctx.outputs,
        "workdir": ctx.workdir,
    })
}

fn read_outcome(path: &std::path::Path) -> Result<Outcome, OperatorError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Outcome::default()),
        Err(error) => return Err(OperatorError::io("read", path, error)),
    };
    let _ = std::fs::remove_file(path);
    let child: ChildOutcome = serde_json::from_str(&text).map_err(|error| {
        OperatorError::failed(format!(
            "the command wrote an invalid outcome to `DAG_OUTCOME`: {error}"
        ))
    })?;
    Ok(Outcome {
        values: child.values,
        metrics: child.metrics,
        short_circuit: child.short_circuit,
        summary: child.summary,
    })
}

/// How long the output of a finished command may stay open (held by a
/// process that left its group) before the holders are hunted by tag.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// Kills, on a blocking thread, every process with the attempt's tag.
async fn kill_escaped(tag: &str) {
    let tag = tag.to_string();
    if let Ok(killed) = tokio::task::spawn_blocking(move || kill_tagged(&tag)).await
        && killed > 0
    {
        tracing::debug!(
            killed,
            "killed processes that left the task's process group"
        );
    }
}

/// The child's stdout and stderr, copied into the attempt's (bounded) log.
struct OutputCopy {
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl OutputCopy {
    fn start(child: &mut tokio::process::Child, log: &crate::LogSink) -> Self {
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(copy_into(stdout, log.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(copy_into(stderr, log.clone())));
        }
        Self { readers }
    }

    /// Waits for the output to end. Output still open after
    /// [`OUTPUT_GRACE`] is held by a process that left the group: those are
    /// killed by tag, and the copy stops.
    async fn finish(mut self, tag: &str) {
        let deadline = tokio::time::Instant::now() + OUTPUT_GRACE;
        for reader in &mut self.readers {
            if tokio::time::timeout_at(deadline, &mut *reader)
                .await
                .is_err()
            {
                kill_escaped(tag).await;
                if tokio::time::timeout(OUTPUT_GRACE, &mut *reader)
                    .await
                    .is_err()
                {
                    reader.abort();
                }
            }
        }
    }
}

async fn copy_into(mut source: impl tokio::io::AsyncRead + Unpin, log: crate::LogSink) {
    use tokio::io::AsyncReadExt;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match source.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => log.write(&buffer[..read]),
        }
    }
}

/// The command's processes: its group is killed by [`Self::kill_group`].
/// Dropped without that (the attempt abandoned mid-run), it kills the
/// group and every process with the attempt's tag.
struct GroupGuard {
    pgid: Option<i32>,
    tag: Option<String>,
}

impl GroupGuard {
    fn kill_group(mut self) {
        self.tag = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // SAFETY: kill(2) with a negative pid signals the group; no memory is touched.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        if let Some(tag) = self.tag.take() {
            kill_tagged(&tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::LogSink;

    fn context(dir: &std::path::Path, params: Value) -> Context {
        let mut ctx = Context::detached(dir, params);
        ctx.log = LogSink::at(dir.join("task.log"));
        ctx
    }

    #[tokio::test]
    async fn output_goes_to_the_log_and_outcome_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = r#"echo hello; echo oops >&2; printf '{"metrics":{"rows":3},"values":{"k":"v"}}' > "$DAG_OUTCOME""#;
        let ctx = context(dir.path(), json!({ "command": script }));
        let outcome = Shell.execute(&ctx).await.expect("command succeeds");
        assert_eq!(outcome.metrics.get("rows"), Some(&3.0));
        assert_eq!(outcome.values.get("k"), Some(&json!("v")));
        let log = std::fs::read_to_string(dir.path().join("task.log")).expect("log written");
        assert!(log.contains("hello") && log.contains("oops"), "{log}");
    }

    #[tokio::test]
    async fn non_zero_exit_fails_with_the_status() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = context(dir.path(), json!({ "argv": ["sh", "-c", "exit 3"] }));
        let error = Shell.execute(&ctx).await.expect_err("exit 3 fails");
        assert!(error.to_string().contains("exit status 3"), "{error}");
    }

    #[tokio::test]
    async fn cancellation_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("grandchild.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", marker.display());
        let ctx = context(dir.path(), json!({ "command": script }));
        let cancel = ctx.cancel.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move { Shell.execute(&ctx).await.map(|_| ()) });
        while !marker.exists() && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pid: i32 = std::fs::read_to_string(&marker)
            .expect("pid file")
            .trim()
            .parse()
            .expect("a pid");
        cancel.cancel();
        let result = task.await.expect("task joins");
        assert!(matches!(result, Err(OperatorError::Cancelled)));
        // The grandchild must be gone (reaped by init, or a zombie for a moment).
        let mut alive = true;
        for _ in 0..100 {
            // SAFETY: signal 0 only checks for existence.
            let exists = unsafe { libc::kill(pid, 0) } == 0;
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |s| s.contains(") Z"));
            if !exists || zombie {
                alive = false;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive, "grandchild {pid} outlived its cancelled task");
    }

    /// Waits until `pid` is gone (or a zombie); false if it outlived 10 s.
    async fn dies(pid: i32) -> bool {
        for _ in 0..500 {
            // SAFETY: signal 0 only checks for existence.
            let exists = unsafe { libc::kill(pid, 0) } == 0;
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |s| s.contains(") Z"));
            if !exists || zombie {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_grandchild_that_left_the_group_with_setsid_dies_with_the_attempt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("escaped.pid");
        let script = format!("setsid sleep 60 & echo $! > {}; wait", marker.display());
        let ctx = context(dir.path(), json!({ "command": script }));
        let cancel = ctx.cancel.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move { Shell.execute(&ctx).await.map(|_| ()) });
        while !marker.exists() && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pid: i32 = std::fs::read_to_string(&marker)
            .expect("pid file")
            .trim()
            .parse()
            .expect("a pid");
        cancel.cancel();
        let result = task.await.expect("task joins");
        assert!(matches!(result, Err(OperatorError::Cancelled)));
        assert!(
            dies(pid).await,
            "the setsid grandchild {pid} outlived its task"
        );
    }

    #[tokio::test]
    async fn a_flood_of_output_keeps_a_bounded_log_with_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = context(
            dir.path(),
            json!({
                "command": "echo START; head -c 5000000 /dev/zero | tr '\\0' x; echo; echo THE END"
            }),
        );
        ctx.log = LogSink::with_limit(dir.path().join("task.log"), 64 * 1024);
        Shell.execute(&ctx).await.expect("command succeeds");
        let dropped = ctx.log.finish();
        let log = std::fs::read_to_string(dir.path().join("task.log")).expect("log written");
        assert!(log.len() < 64 * 1024 + 300, "{} bytes kept", log.len());
        assert!(
            log.starts_with("START\n") && log.ends_with("THE END\n"),
            "{}",
            log.len()
        );
        assert!(dropped > 4_900_000, "{dropped}");
        assert!(log.contains(&format!("[dag: {dropped} bytes of output dropped here")));
    }

    #[test]
    fn command_and_argv_are_exclusive_and_one_is_required() {
        let spec = |params: Value| {
            let empty = BTreeMap::new();
            Shell.check(&TaskSpec {
                params: &params,
                inputs: &empty,
                outputs: &empty,
            })
        };
        assert_eq!(spec(json!({"command": "true"})), vec![]);
        assert_eq!(spec(json!({})).len(), 1);
        assert_eq!(spec(json!({"command": "a", "argv": ["b"]})).len(), 1);
        assert_eq!(spec(json!({"comand": "true"}))[0].at, "params.comand");
    }
}
