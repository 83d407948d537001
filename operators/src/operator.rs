//! The [`Operator`] trait and the values that cross it.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use serde_json::Value;

use crate::{Context, OperatorError};

/// A boxed, sendable future; the return type of [`Operator::execute`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A unit of work that a DAG task names with `operator: <name>`.
///
/// Implementations are stateless: every input arrives in the [`Context`].
pub trait Operator: Send + Sync + 'static {
    /// The name DAG files use, e.g. `shell` or `ml.train`.
    fn name(&self) -> &'static str;

    /// Bumped whenever a change in behaviour should invalidate cached outputs.
    fn version(&self) -> &'static str {
        "1"
    }

    /// One line for `dag operators`.
    fn description(&self) -> &'static str;

    /// Names of the values [`Outcome::values`] will hold, so that
    /// `{{ tasks.<id>.outputs.<name> }}` can be checked at load time.
    /// Declared artifact outputs are addressable too and need not be listed.
    fn value_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether the operator may produce values beyond [`value_names`](Self::value_names)
    /// (a subprocess decides its own), so references to other names are allowed.
    fn open_values(&self) -> bool {
        false
    }

    /// Whether an unchanged task may be skipped as up to date. Operators with
    /// side effects the engine cannot see (a shell command) say no; the
    /// engine still caches such a task when it declares outputs.
    fn cacheable(&self) -> bool {
        true
    }

    /// Whether the effect of an earlier success still holds, for operators
    /// whose result lives partly outside their declared outputs (an alias in
    /// the model registry, a verdict against the registry's champion). The
    /// engine asks before it declares a task up to date or restores its
    /// outputs from the run cache; `Err(reason)` makes the task run again,
    /// and the reason is recorded with it. Called off the async runtime; it
    /// may read files, and should be quick.
    fn effect_holds(&self, earlier: &Earlier<'_>) -> Result<(), String> {
        let _ = earlier;
        Ok(())
    }

    /// Whether an attempt starts processes whose effects outlive a crash
    /// of the engine (a shell command). The engine makes such an attempt's
    /// start durable before it runs, so a `kill -9` cannot hide it.
    fn starts_processes(&self) -> bool {
        false
    }

    /// The JSON Schema of the task's `params`, derived from the operator's
    /// params type (descriptions are its doc comments); `None` for an
    /// operator without params. `dag schema`, `dag operators NAME` and
    /// `docs/operators.md` are made from it.
    fn params_schema(&self) -> Option<Value> {
        None
    }

    /// The artifacts a task of this operator reads and writes, by name.
    fn ports(&self) -> Ports {
        Ports::default()
    }

    /// Checks a task declaration at load time, before anything runs.
    /// Returns every problem found, not just the first.
    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem>;

    /// Runs one attempt. Long CPU-bound work belongs in [`run_blocking`].
    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>>;
}

/// One named input or output artifact of an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    pub name: &'static str,
    /// Whether a task must declare it.
    pub required: bool,
    /// What the file holds, in a few words.
    pub about: &'static str,
}

impl Port {
    pub const fn required(name: &'static str, about: &'static str) -> Self {
        Self {
            name,
            required: true,
            about,
        }
    }

    pub const fn optional(name: &'static str, about: &'static str) -> Self {
        Self {
            name,
            required: false,
            about,
        }
    }
}

/// The inputs and outputs an operator knows by name. `any_inputs` /
/// `any_outputs`: it also accepts names of the task's choosing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ports {
    pub inputs: &'static [Port],
    pub outputs: &'static [Port],
    pub any_inputs: Option<&'static str>,
    pub any_outputs: Option<&'static str>,
}

impl Ports {
    /// No named artifacts; the base of a `const` with some.
    pub const NONE: Self = Self {
        inputs: &[],
        outputs: &[],
        any_inputs: None,
        any_outputs: None,
    };
}

/// The JSON Schema of `T` as a JSON value, for [`Operator::params_schema`].
pub fn schema_of<T: schemars::JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null)
}

/// What [`Operator::check`] sees of a task: params rendered with the DAG's
/// default params, and the declared input and output artifact names → paths.
#[derive(Debug, Clone, Copy)]
pub struct TaskSpec<'a> {
    pub params: &'a Value,
    pub inputs: &'a BTreeMap<String, String>,
    pub outputs: &'a BTreeMap<String, String>,
}

/// An earlier success of a task, as [`Operator::effect_holds`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Earlier<'a> {
    /// The task's params, rendered for the run asking.
    pub params: &'a Value,
    /// The values that success returned ([`Outcome::values`]).
    pub values: &'a BTreeMap<String, Value>,
    /// The state directory (the model registry lives under it).
    pub state_dir: &'a Path,
}

/// One problem in a task declaration found by [`Operator::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the task: `params`, `params.n_trees`, `inputs`, `outputs.model`.
    pub at: String,
    /// Lowercase, no trailing period, identifiers in backticks.
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            at: at.into(),
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// What an attempt produced besides its artifact files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Values addressable downstream as `{{ tasks.<id>.outputs.<name> }}`.
    pub values: BTreeMap<String, Value>,
    /// Numeric metrics recorded with the attempt (`accuracy`, `rows_out`, ...).
    pub metrics: BTreeMap<String, f64>,
    /// When set, the task succeeded but every task downstream of it is
    /// skipped with this reason (a quality gate that rejects a model, a drift
    /// check that finds nothing to retrain for).
    pub short_circuit: Option<String>,
    /// One human line for the end-of-run summary.
    pub summary: Option<String>,
}

impl Outcome {
    pub fn value(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.values.insert(name.into(), value.into());
        self
    }

    pub fn metric(mut self, name: impl Into<String>, value: f64) -> Self {
        self.metrics.insert(name.into(), value);
        self
    }

    pub fn summary(mut self, line: impl Into<String>) -> Self {
        self.summary = Some(line.into());
        self
    }

    pub fn short_circuit(mut self, reason: impl Into<String>) -> Self {
        self.short_circuit = Some(reason.into());
        self
    }
}

/// Runs CPU-bound operator work on the blocking pool.
///
/// Cancellation is cooperative: the closure should poll
/// `ctx.cancel.is_cancelled()` between units of work. If the token fires
/// first, this returns [`OperatorError::Cancelled`] at once and the closure's
/// result, when it comes, is dropped.
pub fn run_blocking<'a, F>(
    ctx: &'a Context,
    work: F,
) -> BoxFuture<'a, Result<Outcome, OperatorError>>
where
    F: FnOnce(Context) -> Result<Outcome, OperatorError> + Send + 'static,
{
    let owned = ctx.clone();
    Box::pin(async move {
        let handle = tokio::task::spawn_blocking(move || work(owned));
        tokio::select! {
            joined = handle => match joined {
                Ok(result) => result,
                Err(join_error) => Err(OperatorError::Panicked(join_error.to_string())),
            },
            () = ctx.cancel.cancelled() => Err(OperatorError::Cancelled),
        }
    })
}
