//! `/runs/{run_id}/logs/{task}?attempt=N`: an attempt's log (its output and
//! the operator's log lines), followed live while the attempt runs. The
//! file is the one the store recorded for the attempt, read only if it is
//! inside the state directory.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use dag_state::{AttemptRecord, AttemptStatus, Store};

use crate::ui::UiState;
use crate::ui::error::{PageError, blocking};
use crate::ui::form::Form;
use crate::ui::html::{Html, Seg, html};
use crate::ui::layout::{Section, Viewer, page, status_label, status_word, time};

/// The most of a log a page shows (its end).
pub const SHOWN_BYTES: u64 = 1 << 20;

/// The attempt of `task` in `run_id` (the last one without `attempt`).
pub fn find_attempt(
    store: &Store,
    run_id: &str,
    task: &str,
    attempt: Option<u32>,
) -> Result<(AttemptRecord, Vec<u32>), PageError> {
    let of_task: Vec<AttemptRecord> = store
        .attempts(run_id)?
        .into_iter()
        .filter(|a| a.task_id == task)
        .collect();
    let numbers = of_task.iter().map(|a| a.attempt).collect();
    let chosen = match attempt {
        Some(n) => of_task.into_iter().find(|a| a.attempt == n),
        None => of_task.into_iter().last(),
    };
    chosen.map(|a| (a, numbers)).ok_or_else(|| {
        PageError::not_found(format!(
            "no attempt{} of task `{task}` in run `{run_id}`",
            attempt.map(|n| format!(" {n}")).unwrap_or_default()
        ))
    })
}

/// The attempt's log file, if it exists and lies inside `state_dir`.
pub fn log_file(
    state_dir: &std::path::Path,
    attempt: &AttemptRecord,
) -> Result<Option<PathBuf>, PageError> {
    let Some(path) = &attempt.log_path else {
        return Ok(None);
    };
    let root = std::fs::canonicalize(state_dir).map_err(|e| PageError::internal(&e))?;
    match std::fs::canonicalize(path) {
        Ok(real) if real.starts_with(&root) => Ok(Some(real)),
        Ok(_) => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "the recorded log path is outside the state directory",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PageError::internal(&e)),
    }
}

/// Bytes `[from, from + limit)` of `path`, cut back to whole UTF-8
/// characters; returns the text and the offset after it.
pub fn read_from(path: &std::path::Path, from: u64, limit: u64) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    let whole = match std::str::from_utf8(&bytes) {
        Ok(_) => bytes.len(),
        // A character cut at the end waits for the next read; invalid
        // bytes in the middle are replaced.
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => bytes.len(),
    };
    let text = String::from_utf8_lossy(&bytes[..whole]).into_owned();
    Ok((text, from + whole as u64))
}

pub struct LogPage {
    pub run_id: String,
    pub task: String,
    pub attempt: AttemptRecord,
    pub attempts: Vec<u32>,
    pub text: String,
    /// Bytes of the file before `text` (not shown).
    pub skipped: u64,
    /// Where following picks up.
    pub offset: u64,
}

pub async fn show(
    State(ui): State<Arc<UiState>>,
    viewer: Viewer,
    Path((run_id, task)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let asked = Form::parse(query.as_deref().unwrap_or(""))
        .get("attempt")
        .map(|a| {
            a.parse::<u32>()
                .map_err(|_| PageError::bad_request("`attempt` must be a number"))
        })
        .transpose()?;
    let store = ui.store();
    let state_dir = ui.daemon.state_dir.clone();
    let (id, name) = (run_id.clone(), task.clone());
    let view = blocking(move || {
        let (attempt, attempts) = find_attempt(&store, &id, &name, asked)?;
        let (text, skipped, offset) = match log_file(&state_dir, &attempt)? {
            Some(path) => {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                let skipped = size.saturating_sub(SHOWN_BYTES);
                let (text, offset) =
                    read_from(&path, skipped, SHOWN_BYTES).map_err(|e| PageError::internal(&e))?;
                (text, skipped, offset)
            }
            None => (String::new(), 0, 0),
        };
        Ok(LogPage {
            run_id: id,
            task: name,
            attempt,
            attempts,
            text,
            skipped,
            offset,
        })
    })
    .await?;
    Ok(page(
        &viewer,
        Section::Dags,
        &format!("{task} log"),
        &render(&view),
    ))
}

pub fn render(view: &LogPage) -> Html {
    let running = view.attempt.status == AttemptStatus::Running;
    let mut out = Html::new();
    html!(
        out,
        "<h1>Log of <code>{}</code>, attempt {}</h1><p class=\"lead\">run <a href=\"/runs/{}#task-{}\">{}</a> · started {} · \
         <span data-log-note>{}</span></p>",
        view.task,
        view.attempt.attempt,
        Seg(&view.run_id),
        Seg(&view.task),
        view.run_id,
        time(view.attempt.started_at_ms),
        if running {
            "running: following live".to_string()
        } else {
            format!(
                "attempt finished: {}",
                status_label(&status_word(&view.attempt.status))
            )
        }
    );
    if view.attempts.len() > 1 {
        html!(out, "<p>Attempts: ");
        for number in &view.attempts {
            html!(
                out,
                "<a href=\"/runs/{}/logs/{}?attempt={}\">{}</a> ",
                Seg(&view.run_id),
                Seg(&view.task),
                number,
                number
            );
        }
        html!(out, "</p>");
    }
    if let Some(error) = &view.attempt.error {
        html!(out, "<div class=\"error-box\">{}</div>", error);
    }
    if view.skipped > 0 {
        html!(
            out,
            "<p class=\"muted\">The first {} bytes are not shown.</p>",
            view.skipped
        );
    }
    if running {
        let mut stream = Html::new();
        html!(
            stream,
            "/runs/{}/logs/{}/stream?attempt={}&offset={}",
            Seg(&view.run_id),
            Seg(&view.task),
            view.attempt.attempt,
            view.offset
        );
        html!(
            out,
            "<pre class=\"log\" id=\"log\" tabindex=\"0\" data-log-stream=\"{}\">{}</pre>",
            stream,
            view.text
        );
    } else if view.text.is_empty() {
        html!(
            out,
            "<p class=\"muted\">This attempt wrote no output.</p><pre class=\"log\" id=\"log\" data-finished=\"true\"></pre>"
        );
    } else {
        html!(
            out,
            "<pre class=\"log\" id=\"log\" tabindex=\"0\" data-finished=\"true\">{}</pre>",
            view.text
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_before_a_cut_character_and_resume_there() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("log");
        std::fs::write(&path, "é<b>\n".as_bytes())?;
        let (first, offset) = read_from(&path, 0, 1)?;
        assert_eq!((first.as_str(), offset), ("", 0));
        let (whole, offset) = read_from(&path, 0, 100)?;
        assert_eq!((whole.as_str(), offset), ("é<b>\n", 6));
        let (rest, offset) = read_from(&path, 2, 100)?;
        assert_eq!((rest.as_str(), offset), ("<b>\n", 6));
        Ok(())
    }

    #[test]
    fn log_lines_are_escaped_and_a_running_attempt_is_followed() {
        let view = LogPage {
            run_id: "r/1".into(),
            task: "t".into(),
            attempt: AttemptRecord {
                run_id: "r/1".into(),
                task_id: "t".into(),
                attempt: 1,
                status: AttemptStatus::Running,
                started_at_ms: 0,
                finished_at_ms: None,
                exit_code: None,
                error: None,
                log_path: None,
                metrics: Default::default(),
                placement: None,
            },
            attempts: vec![1],
            text: "<script>alert(1)</script>\n\"><img src=x onerror=alert(2)>".into(),
            skipped: 0,
            offset: 57,
        };
        let html = render(&view).into_string();
        assert!(
            !html.contains("<script>") && !html.contains("<img"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("data-log-stream=\"/runs/r%2F1/logs/t/stream?attempt=1&offset=57\""),
            "{html}"
        );
    }

    #[test]
    fn a_log_path_outside_the_state_directory_is_refused() -> std::io::Result<()> {
        let state = tempfile::tempdir()?;
        let elsewhere = tempfile::tempdir()?;
        let outside = elsewhere.path().join("secret.log");
        std::fs::write(&outside, "secret")?;
        let inside = state.path().join("logs/r/t.1.log");
        std::fs::create_dir_all(state.path().join("logs/r"))?;
        std::fs::write(&inside, "fine")?;
        let attempt = |path: &std::path::Path| AttemptRecord {
            run_id: "r".into(),
            task_id: "t".into(),
            attempt: 1,
            status: AttemptStatus::Succeeded,
            started_at_ms: 0,
            finished_at_ms: Some(1),
            exit_code: None,
            error: None,
            log_path: Some(path.to_string_lossy().into_owned()),
            metrics: Default::default(),
            placement: None,
        };
        assert!(log_file(state.path(), &attempt(&inside)).is_ok_and(|p| p.is_some()));
        let refused = log_file(state.path(), &attempt(&outside));
        assert!(refused.is_err_and(|e| e.status == StatusCode::FORBIDDEN));
        // A link inside the state directory to a file outside is outside.
        let link = state.path().join("logs/r/t.2.log");
        std::os::unix::fs::symlink(&outside, &link)?;
        assert!(log_file(state.path(), &attempt(&link)).is_err());
        Ok(())
    }
}
