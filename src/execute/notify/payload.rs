//! The JSON a notification carries, and its Slack form.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

use crate::model::HookEvent;

/// Most bytes of a task's log a notification quotes.
const EXCERPT_BYTES: u64 = 2048;

#[derive(Debug, Clone, Serialize)]
pub struct Payload {
    pub event: HookEvent,
    pub dag: String,
    pub run_id: String,
    /// The task, for task-level events and a task's retry.
    pub task: Option<String>,
    /// `failed`, `succeeded`, `retrying` or `late`.
    pub status: String,
    pub reason: Option<String>,
    pub attempt: Option<u32>,
    pub trigger: String,
    /// The end of the task's latest attempt log.
    pub log_excerpt: Option<String>,
    /// The run's page in the web UI, when a daemon serves it.
    pub link: Option<String>,
    pub at: String,
}

impl Payload {
    pub fn body(&self, slack: bool) -> String {
        if slack {
            serde_json::json!({ "text": self.text() }).to_string()
        } else {
            serde_json::to_string(self).unwrap_or_default()
        }
    }

    /// One human line (and the log excerpt), for chat.
    fn text(&self) -> String {
        let subject = match &self.task {
            Some(task) => format!("task `{task}` of `{}`", self.dag),
            None => format!("run of `{}`", self.dag),
        };
        let mut text = format!("dag: {subject} {} (run {})", self.status, self.run_id);
        if let Some(reason) = &self.reason {
            text.push_str(&format!(": {reason}"));
        }
        if let Some(link) = &self.link {
            text.push_str(&format!(" <{link}>"));
        }
        if let Some(excerpt) = &self.log_excerpt {
            text.push_str(&format!("\n```\n{excerpt}\n```"));
        }
        text
    }
}

/// The last [`EXCERPT_BYTES`] of a log, starting on a line boundary.
pub fn log_excerpt(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(EXCERPT_BYTES);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = Vec::with_capacity(EXCERPT_BYTES as usize);
    file.take(EXCERPT_BYTES).read_to_end(&mut bytes).ok()?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if start > 0
        && let Some(newline) = text.find('\n')
    {
        text.drain(..=newline);
    }
    let text = text.trim_end().to_string();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Payload {
        Payload {
            event: HookEvent::Failure,
            dag: "etl".into(),
            run_id: "r1".into(),
            task: Some("load".into()),
            status: "failed".into(),
            reason: Some("exit status 3".into()),
            attempt: Some(2),
            trigger: "cli".into(),
            log_excerpt: Some("boom".into()),
            link: None,
            at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn the_json_form_names_the_event_and_the_slack_form_is_one_text() {
        let json: serde_json::Value =
            serde_json::from_str(&payload().body(false)).unwrap_or_default();
        assert_eq!(json["event"], "on_failure");
        assert_eq!(json["task"], "load");
        assert_eq!(json["attempt"], 2);
        let slack: serde_json::Value =
            serde_json::from_str(&payload().body(true)).unwrap_or_default();
        let text = slack["text"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("dag: task `load` of `etl` failed (run r1): exit status 3"),
            "{text}"
        );
        assert!(text.contains("boom"));
    }

    #[test]
    fn the_excerpt_is_the_end_of_the_log_from_a_line_start() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.1.log");
        let mut text = String::new();
        for i in 0..1000 {
            text.push_str(&format!("line {i}\n"));
        }
        std::fs::write(&path, &text)?;
        let excerpt = log_excerpt(&path).unwrap_or_default();
        assert!(excerpt.ends_with("line 999"), "{excerpt}");
        assert!(excerpt.starts_with("line "), "{excerpt}");
        assert!(excerpt.len() <= 2048);
        assert_eq!(log_excerpt(&dir.path().join("missing.log")), None);
        Ok(())
    }
}
