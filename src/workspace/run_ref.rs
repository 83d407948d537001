//! Run references: a run id, or `latest` / `latest~N` (the newest run, or
//! the one N runs before it), wherever a command takes a run id.

use dag_state::Store;

/// `Some(n)` for `latest~n` (`latest` is `latest~0`), `None` for a plain id.
pub fn relative_run(text: &str) -> Option<usize> {
    let rest = text.strip_prefix("latest")?;
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix('~')?.parse().ok()
}

/// The run id `text` names, given the newest runs (newest first) when it
/// is relative. Most runs a reference may reach back.
pub const MAX_BACK: usize = 10_000;

/// The id `text` names: itself, or the `n`-th newest of `newest`.
pub fn pick_run(text: &str, newest: &[String]) -> Result<String, String> {
    let Some(back) = relative_run(text) else {
        return Ok(text.to_string());
    };
    newest.get(back).cloned().ok_or_else(|| match newest.len() {
        0 => "no runs yet, so `latest` names none".to_string(),
        n => format!("`{text}` reaches back further than the {n} runs on record"),
    })
}

/// Resolves `text` against the store's run history.
pub fn resolve_run_ref(store: &Store, text: &str) -> Result<String, String> {
    let Some(back) = relative_run(text) else {
        return Ok(text.to_string());
    };
    if back >= MAX_BACK {
        return Err(format!("`{text}` reaches back more than {MAX_BACK} runs"));
    }
    let runs = store
        .runs(None, back + 1)
        .map_err(|e| format!("cannot list runs: {e}"))?;
    let ids: Vec<String> = runs.into_iter().map(|r| r.run_id).collect();
    pick_run(text, &ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_and_latest_tilde_n_count_back_from_the_newest_run() {
        assert_eq!(relative_run("latest"), Some(0));
        assert_eq!(relative_run("latest~2"), Some(2));
        assert_eq!(relative_run("latest~"), None);
        assert_eq!(relative_run("latest~x"), None);
        assert_eq!(relative_run("20260101-abc"), None);
        let newest = vec!["c".to_string(), "b".to_string(), "a".to_string()];
        assert_eq!(pick_run("latest", &newest), Ok("c".into()));
        assert_eq!(pick_run("latest~2", &newest), Ok("a".into()));
        assert_eq!(pick_run("b", &newest), Ok("b".into()));
        let too_far = pick_run("latest~3", &newest).expect_err("only 3 runs");
        assert!(too_far.contains("further than the 3 runs"), "{too_far}");
        assert!(
            pick_run("latest", &[])
                .expect_err("no runs")
                .contains("no runs yet")
        );
    }
}
