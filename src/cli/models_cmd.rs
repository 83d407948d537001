//! `dag models list|show|promote|rollback|export|history`: the model registry.

use dag_operators::ml::{ExportOrigin, OnnxExport, export_onnx, write_atomic};
use dag_operators::models::{ModelRegistry, ModelVersion};

use super::args::{ExportFormat, Global, ModelsArgs, ModelsCommand};
use super::{CliResult, Exit, Failure};
use crate::record::error_chain;

pub fn models(global: &Global, args: &ModelsArgs) -> CliResult {
    let registry =
        ModelRegistry::open(&global.state_dir).map_err(|e| Failure::internal(error_chain(&e)))?;
    let user_error = |e: dag_operators::models::RegistryError| Failure::invalid(error_chain(&e));
    match &args.command {
        ModelsCommand::List { name, json } => {
            let versions = registry.list(name.as_deref()).map_err(user_error)?;
            if *json {
                print_json(&versions);
            } else if versions.is_empty() {
                println!("no models registered yet");
            } else {
                for version in &versions {
                    println!("{}", line(version));
                }
            }
        }
        ModelsCommand::Show { model, json } => {
            let version = find_version(&registry, model)?;
            if *json {
                print_json(&version);
            } else {
                println!("{}", line(&version));
                println!("  digest     {}", version.digest);
                println!("  created    {}", version.created_at);
                if let (Some(run), Some(task)) = (&version.run_id, &version.task_id) {
                    println!("  trained by run {run}, task `{task}`");
                }
                for (input, digest) in &version.data_digests {
                    println!("  data       {input} {digest}");
                }
                println!("  params     {}", version.params);
                for (i, feature) in version.importance.iter().take(5).enumerate() {
                    let heading = if i == 0 { "importance" } else { "" };
                    println!(
                        "  {heading:<10} {:<24} {:+.4} ± {:.4}",
                        feature.feature, feature.mean, feature.std
                    );
                }
            }
        }
        ModelsCommand::Promote {
            model,
            version,
            alias,
            json,
        } => {
            let number = parse_version(version)?;
            let moved = registry
                .set_alias(model, alias, number)
                .map_err(user_error)?;
            if *json {
                print_json(&moved);
            } else {
                println!("{model} {moved}");
            }
        }
        ModelsCommand::Export {
            model,
            format: ExportFormat::Onnx,
            output,
            json,
        } => {
            let version = find_version(&registry, model)?;
            let loaded = registry.load_verified(&version).map_err(user_error)?;
            let origin = ExportOrigin {
                name: &version.name,
                version: version.version,
                digest: &version.digest,
            };
            let OnnxExport { bytes, inputs } =
                export_onnx(&loaded, &origin).map_err(|e| Failure::invalid(error_chain(&e)))?;
            write_atomic(output, &bytes).map_err(|e| {
                Failure::invalid(format!("cannot write `{}`: {e}", output.display()))
            })?;
            let exported = Exported {
                model: &version.name,
                version: version.version,
                kind: loaded.kind(),
                format: "onnx",
                path: output.display().to_string(),
                bytes: bytes.len(),
                digest: blake3::hash(&bytes).to_hex().to_string(),
                inputs: inputs
                    .into_iter()
                    .map(|(name, kind)| ExportInput { name, kind })
                    .collect(),
                classes: loaded.classes(),
            };
            if *json {
                print_json(&exported);
            } else {
                println!(
                    "wrote {} ({} bytes): {}@v{} {} as ONNX, inputs are the {} raw columns ([rows, 1] each), outputs `label` and `probabilities`",
                    exported.path,
                    exported.bytes,
                    exported.model,
                    exported.version,
                    exported.kind,
                    exported.inputs.len()
                );
            }
        }
        ModelsCommand::History { model, json } => {
            let events = registry.history(model).map_err(user_error)?;
            if *json {
                print_json(&events);
            } else {
                events.iter().for_each(|event| println!("{event}"));
            }
        }
        ModelsCommand::Rollback { model, alias, json } => {
            let moved = registry.rollback(model, alias).map_err(user_error)?;
            if *json {
                print_json(&moved);
            } else {
                println!("{model} {moved}");
            }
        }
    }
    Ok(Exit::Success)
}

/// What `dag models export --json` prints.
#[derive(serde::Serialize)]
struct Exported<'a> {
    model: &'a str,
    version: u32,
    kind: &'a str,
    format: &'a str,
    path: String,
    bytes: usize,
    /// blake3 of the written file.
    digest: String,
    /// The graph inputs in order, each shaped `[rows, 1]`.
    inputs: Vec<ExportInput>,
    classes: &'a [String],
}

#[derive(serde::Serialize)]
struct ExportInput {
    name: String,
    /// The element type: `double` or `string`.
    #[serde(rename = "type")]
    kind: &'static str,
}

/// `NAME` (the latest version), `NAME@3`, `NAME@v3` or `NAME@ALIAS`.
fn find_version(registry: &ModelRegistry, model: &str) -> Result<ModelVersion, Failure> {
    let (name, reference) = model.split_once('@').unwrap_or((model, "latest"));
    if reference != "latest" {
        return registry
            .resolve(name, reference)
            .map_err(|e| Failure::invalid(error_chain(&e)));
    }
    registry
        .list(Some(name))
        .map_err(|e| Failure::invalid(error_chain(&e)))?
        .into_iter()
        .max_by_key(|v| v.version)
        .ok_or_else(|| {
            Failure::invalid(format!(
                "no versions of model `{name}`; `dag models list` shows them"
            ))
        })
}

fn parse_version(text: &str) -> Result<u32, Failure> {
    text.trim_start_matches('v').parse().map_err(|_| {
        Failure::invalid(format!(
            "`{text}` is not a version number (e.g. `3` or `v3`)"
        ))
    })
}

fn line(version: &ModelVersion) -> String {
    let aliases = if version.aliases.is_empty() {
        String::new()
    } else {
        format!(" ({})", version.aliases.join(", "))
    };
    let metrics: Vec<String> = ["accuracy", "f1_macro"]
        .iter()
        .filter_map(|k| version.metrics.get(*k).map(|v| format!("{k}={v:.4}")))
        .collect();
    format!(
        "{} v{}{aliases}  {}  {}",
        version.name,
        version.version,
        metrics.join(" "),
        &version.digest[..12.min(version.digest.len())]
    )
}

fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
