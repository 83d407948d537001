//! A bounded, seeded fuzz harness in the normal test run: mutations of the
//! shipped DAG files and of the dataset go through the parser, the
//! checker and the data operators, and a sample through the real binary.
//! Every case must end — a diagnostic, an error, a success — within a time
//! bound, in a process whose address space is limited, without a panic
//! (the binary's exit code 101).
//!
//! The in-process cases run in a child process (this test binary again,
//! running only [`mutation_worker`]) under `RLIMIT_AS`, so a case that
//! blows up memory kills the child and fails the test instead of the
//! machine. A longer run, by hand:
//!
//! ```text
//! DAG_FUZZ_CASES=200000 DAG_FUZZ_CSV_CASES=2000 DAG_FUZZ_SEED=7 \
//!     cargo test --release --test cli fuzz:: -- --nocapture
//! ```

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::support::{Project, repo_root};

/// The child's address space.
const MEMORY_BOUND: u64 = 2 << 30;
/// The longest one in-process case may take.
const CASE_BOUND: Duration = Duration::from_secs(5);
/// The longest the whole child may take.
const CHILD_BOUND: Duration = Duration::from_secs(120);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    env_number("DAG_FUZZ_SEED", 0xF022_5EED) | 1
}

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// Pieces of YAML and CSV syntax worth throwing in: anchors and aliases,
/// merges, templates, flow brackets, tags, directives, odd scalars.
const TOKENS: &[&str] = &[
    "&a ",
    "*a",
    "<<: *a",
    "{{ ",
    " }}",
    "{{ params.",
    "{{ tasks.",
    "[",
    "]",
    "{",
    "}",
    "- ",
    ": ",
    "\n",
    "\t",
    "'",
    "\"",
    "#",
    "!!binary ",
    "%YAML 1.2\n---\n",
    "---\n",
    "...\n",
    "99999999999999999999",
    "-0.0",
    ".nan",
    "~",
    "null",
    "include: [",
    "needs: [",
    "operator: ",
    "\u{feff}",
    "é",
    "\r\n",
    ",",
    ",,,,",
    "\"\"",
    "NaN",
    "1e999",
    "\0",
];

/// One seeded mutation of `bytes`.
fn mutate(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(8) {
            0 if !out.is_empty() => {
                let index = at.min(out.len() - 1);
                out[index] ^= 1 << rng.below(8);
            }
            1 => {
                let byte = u8::try_from(rng.below(256)).unwrap_or(0);
                out.insert(at, byte);
            }
            2 => {
                let end = (at + rng.below(64)).min(out.len());
                out.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(256)).min(out.len());
                let piece = out[at..end].to_vec();
                for _ in 0..=rng.below(8) {
                    out.splice(at..at, piece.iter().copied());
                }
            }
            4 => out.truncate(at),
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                out.splice(at..at, token.iter().copied());
            }
        }
    }
    out
}

fn shipped_dags() -> BTreeMap<PathBuf, Vec<u8>> {
    let dir = repo_root().join("dags");
    std::fs::read_dir(&dir)
        .expect("dags/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read a DAG");
            (
                PathBuf::from("dags").join(p.file_name().unwrap_or_default()),
                bytes,
            )
        })
        .collect()
}

/// The first `rows` lines of the dataset.
fn csv_sample(rows: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(repo_root().join("data/raw/ObesityDataSet.csv"))
        .expect("the dataset");
    text.lines()
        .take(rows)
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

/// Runs `case` catching a panic; fails the worker naming the case (with
/// its seed and index, to replay) on a panic or a case over the bound.
fn run_case(kind: &str, index: u64, input: &[u8], case: impl FnOnce()) {
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(case));
    let took = started.elapsed();
    let shown = String::from_utf8_lossy(&input[..input.len().min(300)]).into_owned();
    assert!(
        outcome.is_ok(),
        "{kind} case {index} (DAG_FUZZ_SEED={}) panicked on input starting:\n{shown}",
        seed()
    );
    assert!(
        took < CASE_BOUND,
        "{kind} case {index} (DAG_FUZZ_SEED={}) took {took:?} on input starting:\n{shown}",
        seed()
    );
}

fn dag_cases(cases: u64, rng: &mut Rng) {
    let corpus = shipped_dags();
    let names: Vec<&PathBuf> = corpus.keys().collect();
    let registry = dag::ops::registry();
    for index in 0..cases {
        let target = names[rng.below(names.len())];
        let mutated = mutate(rng, &corpus[target]);
        // The mutated file is loaded; the shipped ones are its includes.
        run_case("DAG", index, &mutated, || {
            let mut read = |path: &Path| -> Result<String, dag::parse::ReadError> {
                let key = path.strip_prefix("./").unwrap_or(path);
                let bytes = if key == target.as_path() {
                    Some(&mutated)
                } else {
                    corpus.get(key)
                };
                let bytes = bytes.ok_or_else(|| {
                    dag::parse::ReadError::Io(std::io::Error::from(std::io::ErrorKind::NotFound))
                })?;
                String::from_utf8(bytes.clone()).map_err(|_| {
                    dag::parse::ReadError::Io(std::io::Error::from(std::io::ErrorKind::InvalidData))
                })
            };
            if let Err(diagnostics) = dag::parse::load_dag(target, &mut read, &registry) {
                // Rendering is part of what a user gets.
                let rendered: usize = diagnostics.iter().map(|d| d.render(true).len()).sum();
                assert!(rendered < 1 << 20, "{rendered} bytes of diagnostics");
            }
        });
    }
}

/// The `clean` task of the shipped data DAG, and `validate` after it.
fn csv_cases(cases: u64, rng: &mut Rng) {
    let registry = Arc::new(dag::ops::registry());
    let data_dag =
        dag::parse::load_dag_file(&repo_root().join("dags/obesity_data.yaml"), &registry)
            .unwrap_or_else(|d| panic!("the shipped data DAG: {}", d[0].render(false)));
    let clean_params = dag::render::render_value(
        &data_dag.tasks["clean"].params,
        &dag::render::Scope {
            params: &data_dag.params,
            run: None,
            outputs: None,
            secrets: None,
        },
    )
    .expect("render the clean params");
    let sample = csv_sample(120);
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for index in 0..cases {
        let mutated = mutate(rng, &sample);
        let raw = dir.path().join("raw.csv");
        std::fs::write(&raw, &mutated).expect("write the case");
        run_case("CSV", index, &mutated, || {
            let mut ctx = dag_operators::Context::detached(dir.path(), clean_params.clone());
            ctx.inputs.insert("raw".into(), raw.clone());
            ctx.outputs
                .insert("data".into(), dir.path().join("clean.parquet"));
            ctx.outputs
                .insert("report".into(), dir.path().join("quality.json"));
            let clean = registry.get("data.clean").expect("data.clean");
            let cleaned = runtime.block_on(clean.execute(&ctx));
            assert!(
                !matches!(cleaned, Err(dag_operators::OperatorError::Panicked(_))),
                "{cleaned:?}"
            );
            if cleaned.is_ok() {
                let mut ctx = dag_operators::Context::detached(dir.path(), serde_json::Value::Null);
                ctx.inputs
                    .insert("data".into(), dir.path().join("clean.parquet"));
                ctx.inputs.insert(
                    "expectations".into(),
                    repo_root().join("dags/expectations/obesity.yaml"),
                );
                ctx.outputs
                    .insert("report".into(), dir.path().join("validation.json"));
                let validate = registry.get("data.validate").expect("data.validate");
                let checked = runtime.block_on(validate.execute(&ctx));
                assert!(
                    !matches!(checked, Err(dag_operators::OperatorError::Panicked(_))),
                    "{checked:?}"
                );
            }
        });
    }
}

/// The in-process cases; run by [`shipped_dags_and_the_dataset_survive_seeded_mutations`]
/// in a child process with a limited address space.
#[test]
#[ignore = "runs inside the fuzz test's memory-limited child process"]
fn mutation_worker() {
    let mut rng = Rng(seed());
    let started = Instant::now();
    dag_cases(env_number("DAG_FUZZ_CASES", 3000), &mut rng);
    let dags_took = started.elapsed();
    csv_cases(env_number("DAG_FUZZ_CSV_CASES", 60), &mut rng);
    eprintln!(
        "fuzz: seed {}, DAG cases in {dags_took:?}, all in {:?}",
        seed(),
        started.elapsed()
    );
}

#[test]
fn shipped_dags_and_the_dataset_survive_seeded_mutations() {
    let exe = std::env::current_exe().expect("this test binary");
    let mut child = std::process::Command::new(exe);
    child
        .args([
            "--ignored",
            "--exact",
            "fuzz::mutation_worker",
            "--nocapture",
        ])
        .current_dir(repo_root());
    // SAFETY: setrlimit is async-signal-safe and only affects the child.
    unsafe {
        child.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: MEMORY_BOUND,
                rlim_max: MEMORY_BOUND,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = child.spawn().expect("start the worker");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > CHILD_BOUND {
            let _ = child.kill();
            panic!("the fuzz worker ran longer than {CHILD_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "the fuzz worker failed: {status:?} (its output is above)"
    );
}

#[test]
fn mutated_dag_files_never_crash_the_binary() {
    let mut rng = Rng(seed() ^ 0xB1);
    let corpus = shipped_dags();
    let names: Vec<&PathBuf> = corpus.keys().collect();
    let project = Project::new();
    for (name, bytes) in &corpus {
        std::fs::write(project.path().join(name), bytes).expect("copy a DAG");
    }
    std::fs::create_dir_all(project.path().join("dags/expectations")).expect("dir");
    for index in 0..env_number("DAG_FUZZ_BINARY_CASES", 40) {
        let target = names[rng.below(names.len())];
        let mutated = mutate(&mut rng, &corpus[target]);
        std::fs::write(project.path().join(target), &mutated).expect("write the case");
        let mut command = project.command(&["validate", "dags"]);
        // SAFETY: as above.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 1 << 30,
                    rlim_max: 1 << 30,
                };
                libc::setrlimit(libc::RLIMIT_AS, &limit);
                Ok(())
            });
        }
        let started = Instant::now();
        let output = command.output().expect("run dag validate");
        assert!(
            matches!(output.status.code(), Some(0 | 2)),
            "case {index} (DAG_FUZZ_SEED={}): {:?}\n{}",
            seed(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            started.elapsed() < CASE_BOUND,
            "case {index} took {:?}",
            started.elapsed()
        );
        std::fs::write(project.path().join(target), &corpus[target]).expect("restore");
    }
}
