//! Environments: `--env NAME` layers `envs/NAME.yaml` over a DAG's param
//! defaults, is recorded with the run, shown by `runs show` and `runs diff`,
//! checked like `--param`, and a daemon started with one refuses runs that
//! ask for another.

use crate::daemon_support::Daemon;
use crate::support::Project;

const DAG: &str = r#"
name: greet
params: { word: hello, times: 1, out: data/greeting.txt }
tasks:
  say:
    operator: shell
    cache: false
    params: { command: "mkdir -p data && printf '{{ params.word }} x{{ params.times }}' > {{ params.out }}" }
"#;

fn project() -> Project {
    let project = Project::new();
    project.write("dags/greet.yaml", DAG);
    project.write(
        "envs/staging.yaml",
        "params: { word: bonjour, unrelated: 1 }\ndags:\n  greet: { times: 2 }\n",
    );
    project
}

fn greeting(project: &Project) -> String {
    std::fs::read_to_string(project.path().join("data/greeting.txt")).expect("greeting")
}

#[test]
fn an_environment_layers_params_is_recorded_and_diffed() {
    let project = project();
    let (code, plain) = project.json(&["run", "greet", "--json"]);
    assert_eq!(code, 0, "{plain:#}");
    assert_eq!(greeting(&project), "hello x1");
    assert!(plain.get("env").is_none(), "{plain:#}");

    let (code, staged) = project.json(&["run", "greet", "--env", "staging", "--json"]);
    assert_eq!(code, 0, "{staged:#}");
    assert_eq!(greeting(&project), "bonjour x2");
    assert_eq!(staged["env"], "staging");
    assert_eq!(staged["params"]["word"], "bonjour");
    assert!(staged["params"].get("unrelated").is_none(), "{staged:#}");

    // `--param` wins over the environment; `DAG_ENV` names it too.
    let output = project
        .command(&["run", "greet", "--param", "times=5", "--json"])
        .env("DAG_ENV", "staging")
        .output()
        .expect("run");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(greeting(&project), "bonjour x5");

    let staged_id = staged["run_id"].as_str().expect("id");
    let shown = project.dag(&["runs", "show", staged_id]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("env       staging\n"),
        "{shown:?}"
    );
    let plain_id = plain["run_id"].as_str().expect("id");
    let diff = project.dag(&["runs", "diff", plain_id, staged_id]);
    assert!(
        String::from_utf8_lossy(&diff.stdout).contains("environment: (none) → staging"),
        "{diff:?}"
    );
}

#[test]
fn environment_mistakes_are_refused_with_what_to_fix() {
    let project = project();
    let missing = project.dag(&["run", "greet", "--env", "prod"]);
    assert_eq!(missing.status.code(), Some(2));
    let text = String::from_utf8_lossy(&missing.stderr);
    assert!(
        text.contains("no environment `prod`") && text.contains("known: staging"),
        "{text}"
    );

    project.write("envs/typo.yaml", "dags:\n  greet: { time: 2 }\n");
    let typo = project.dag(&["run", "greet", "--env", "typo"]);
    assert_eq!(typo.status.code(), Some(2));
    let text = String::from_utf8_lossy(&typo.stderr);
    assert!(
        text.contains("`dags.greet.time` is not a param of `greet`; did you mean `times`?"),
        "{text}"
    );

    project.write("envs/mistyped.yaml", "params: { times: many }\n");
    let mistyped = project.dag(&["run", "greet", "--env", "mistyped"]);
    assert_eq!(mistyped.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&mistyped.stderr).contains("envs/mistyped.yaml: "),
        "{mistyped:?}"
    );

    project.write("envs/broken.yaml", "params:\n  word: [unclosed\n");
    let broken = project.dag(&["run", "greet", "--env", "broken"]);
    assert_eq!(broken.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("envs/broken.yaml:"),
        "{broken:?}"
    );

    let escape = project.dag(&["run", "greet", "--env", "../dags/greet"]);
    assert_eq!(escape.status.code(), Some(2));
    assert!(
        !project.path().join("data/greeting.txt").exists(),
        "nothing ran"
    );
}

#[test]
fn a_daemon_runs_with_its_environment_and_refuses_another() {
    let project = project();
    let _daemon = Daemon::start(&project, &["--env", "staging"]);
    let (code, status) = project.json(&["daemon", "status", "--json"]);
    assert_eq!(code, 0, "{status:#}");
    assert_eq!(status["env"], "staging");

    let other = project.dag(&["run", "greet", "--env", "prod"]);
    assert_eq!(other.status.code(), Some(2), "{other:?}");
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("runs DAGs with environment `staging`"),
        "{other:?}"
    );
    let output = project.dag(&["run", "greet"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(greeting(&project), "bonjour x2");
    let (_, runs) = project.json(&["runs", "--json"]);
    let run_id = runs[0]["run_id"].as_str().expect("a run").to_string();
    let (_, shown) = project.json(&["runs", "show", &run_id, "--json"]);
    assert_eq!(shown["env"], "staging", "{shown:#}");
}
