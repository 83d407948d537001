//! `dag gc`: delete run-cache entries nothing recent references. What counts
//! as referenced is [`crate::cache::plan_gc`]'s rule; this file prints.

use super::args::{GcArgs, Global};
use super::console::{out, outln};
use super::workspace::open_store;
use super::{CliResult, Exit, Failure};
use crate::cache::{GcSummary, collect_garbage};
use crate::record::error_chain;

pub fn gc(global: &Global, args: &GcArgs) -> CliResult {
    let store = open_store(global)?;
    let summary = collect_garbage(&store, &global.state_dir, args.keep_runs, args.dry_run)
        .map_err(|error| {
            Failure::internal(format!("{}; nothing was removed", error_chain(&error)))
        })?;
    print_summary(&summary, args.json)
}

/// Prints what a collection did (here or in a daemon) and picks the exit.
pub fn print_summary(json: &GcSummary, as_json: bool) -> CliResult {
    if as_json {
        outln!("{}", serde_json::to_string_pretty(json).unwrap_or_default());
    } else {
        out!("{}", render(json));
    }
    if json.failed.is_empty() {
        Ok(Exit::Success)
    } else {
        for failed in &json.failed {
            eprintln!("error: {}", failed.error);
        }
        Err(Failure::internal(format!(
            "{} run-cache entr{} could not be removed",
            json.failed.len(),
            if json.failed.len() == 1 { "y" } else { "ies" }
        )))
    }
}

fn render(json: &GcSummary) -> String {
    let (verb, freed) = if json.dry_run {
        ("would remove", "would free")
    } else {
        ("removed", "freed")
    };
    let mut out = String::new();
    for entry in &json.removed {
        let what = match &entry.digest {
            Some(digest) => digest.get(..16).unwrap_or(digest).to_string(),
            None => format!("temporary file {}", entry.path),
        };
        out.push_str(&format!("{verb}  {what}  {}\n", human_bytes(entry.bytes)));
    }
    let count = json.removed.len();
    out.push_str(&format!(
        "{verb} {count} run-cache entr{}, {freed} {}; kept {} ({}) referenced by {} run{} and {} model version{}\n",
        if count == 1 { "y" } else { "ies" },
        human_bytes(json.freed_bytes),
        json.kept,
        human_bytes(json.kept_bytes),
        json.runs_kept,
        if json.runs_kept == 1 { "" } else { "s" },
        json.model_versions,
        if json.model_versions == 1 { "" } else { "s" },
    ));
    if json.forgotten_digests > 0 {
        let verb = if json.dry_run {
            "would forget"
        } else {
            "forgot"
        };
        out.push_str(&format!(
            "{verb} the remembered digests of {} file{} that no longer exist\n",
            json.forgotten_digests,
            if json.forgotten_digests == 1 { "" } else { "s" }
        ));
    }
    out
}

/// `812 B`, `4.0 KiB`, `12.3 MiB`, `1.5 GiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_use_binary_units() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(4096), "4.0 KiB");
        assert_eq!(human_bytes(12_900_000), "12.3 MiB");
        assert_eq!(human_bytes(3 << 40), "3.0 TiB");
    }

    #[test]
    fn a_dry_run_says_what_it_would_do() {
        let json = GcSummary {
            dry_run: true,
            keep_runs: 5,
            removed: vec![crate::cache::GcEntry {
                digest: Some("ab".repeat(32)),
                path: "cache/ab/abab".into(),
                bytes: 2048,
            }],
            freed_bytes: 2048,
            kept: 2,
            kept_bytes: 10,
            runs_kept: 1,
            model_versions: 0,
            forgotten_digests: 1,
            failed: Vec::new(),
        };
        assert_eq!(
            render(&json),
            "would remove  abababababababab  2.0 KiB\n\
             would remove 1 run-cache entry, would free 2.0 KiB; kept 2 (10 B) referenced by 1 run and 0 model versions\n\
             would forget the remembered digests of 1 file that no longer exist\n"
        );
    }
}
