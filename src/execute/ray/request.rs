//! The body of `POST /api/jobs/` for one attempt: the entrypoint that runs
//! `dag task-exec`, the executor's resources, and the runtime environment
//! with the task's variables added; and the absolute paths the workers get.

use std::path::{Path, PathBuf};

use dag_operators::Context;
use serde_json::{Map, Value, json};

use crate::model::RayExecutor;

/// The body of `POST /api/jobs/`.
pub fn job_request(
    spec: &RayExecutor,
    ctx: &Context,
    job_id: &str,
    binary: &Path,
    context_path: &Path,
) -> Value {
    let mut runtime_env = spec.runtime_env.clone();
    let mut env_vars = match runtime_env.remove("env_vars") {
        Some(Value::Object(vars)) => vars,
        _ => Map::new(),
    };
    // A shell task's own `env`, so it is set for everything the job starts.
    if let Some(Value::Object(vars)) = ctx.params.get("env") {
        for (name, value) in vars {
            if let Value::String(value) = value {
                env_vars.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    for (name, value) in [
        ("DAG_RUN_ID", ctx.run_id.clone()),
        ("DAG_TASK_ID", ctx.task_id.clone()),
        ("DAG_ATTEMPT", ctx.attempt.to_string()),
    ] {
        env_vars.insert(name.into(), Value::String(value));
    }
    runtime_env.insert("env_vars".into(), Value::Object(env_vars));
    let mut request = json!({
        "entrypoint": format!(
            "{} task-exec {}",
            shell_quote(&binary.to_string_lossy()),
            shell_quote(&context_path.to_string_lossy())
        ),
        "submission_id": job_id,
        "runtime_env": runtime_env,
        "metadata": {
            "dag": ctx.dag, "run_id": ctx.run_id, "task_id": ctx.task_id,
            "attempt": ctx.attempt.to_string(),
        },
    });
    if let Some(cpus) = spec.num_cpus {
        request["entrypoint_num_cpus"] = json!(cpus);
    }
    if let Some(gpus) = spec.num_gpus {
        request["entrypoint_num_gpus"] = json!(gpus);
    }
    if let Some(memory) = spec.memory {
        request["entrypoint_memory"] = json!(memory);
    }
    if !spec.resources.is_empty() {
        request["entrypoint_resources"] = json!(spec.resources);
    }
    request
}

/// The workers do not share the engine's working directory: every path
/// they are given is absolute.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

pub fn absolute_all(
    paths: &std::collections::BTreeMap<String, PathBuf>,
) -> std::collections::BTreeMap<String, PathBuf> {
    paths
        .iter()
        .map(|(name, path)| (name.clone(), absolute(path)))
        .collect()
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    #[test]
    fn resources_runtime_env_and_a_quoted_entrypoint() {
        let spec = RayExecutor {
            address: "http://127.0.0.1:8265".into(),
            num_cpus: Some(1.0),
            num_gpus: None,
            memory: Some(2 << 30),
            resources: BTreeMap::from([("tpu".to_string(), 2.0)]),
            runtime_env: json!({ "env_vars": { "A": "1" }, "pip": ["x"] })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            dag_binary: None,
            poll_interval: Duration::from_millis(200),
        };
        let mut ctx = Context::detached("/p", json!({ "command": "true", "env": { "B": "2" } }));
        ctx.run_id = "r1".into();
        ctx.task_id = "t".into();
        ctx.attempt = 2;
        let body = job_request(
            &spec,
            &ctx,
            "r1-t-2",
            Path::new("/opt/it's/dag"),
            Path::new("/p/.dag/remote/r1/t.2/context.json"),
        );
        assert_eq!(
            body["entrypoint"],
            r"'/opt/it'\''s/dag' task-exec '/p/.dag/remote/r1/t.2/context.json'"
        );
        assert_eq!(body["submission_id"], "r1-t-2");
        assert_eq!(body["entrypoint_num_cpus"], 1.0);
        assert!(body.get("entrypoint_num_gpus").is_none());
        assert_eq!(body["entrypoint_memory"], 2u64 << 30);
        assert_eq!(body["entrypoint_resources"]["tpu"], 2.0);
        let env = &body["runtime_env"]["env_vars"];
        assert_eq!(
            (env["A"].as_str(), env["B"].as_str()),
            (Some("1"), Some("2"))
        );
        assert_eq!(env["DAG_ATTEMPT"], "2");
        assert_eq!(body["runtime_env"]["pip"][0], "x");
        assert_eq!(body["metadata"]["attempt"], "2");
    }
}
