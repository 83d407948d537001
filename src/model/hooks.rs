//! [`Hooks`]: who hears about a run or a task — `on_failure`,
//! `on_success`, `on_retry` and `on_sla_miss` targets (a webhook or a
//! command), and the `sla` whose miss fires the last. Declared at DAG and
//! at task level; delivering them is the executor's (`execute::notify`).

use std::time::Duration;

use serde::Serialize;

/// Where a notification goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookTarget {
    /// A JSON POST; `slack` sends Slack's `{"text": ..}` shape instead.
    Webhook { url: String, slack: bool },
    /// `sh -c command`, with the JSON on stdin.
    Command { command: String },
}

impl HookTarget {
    /// How records and logs name the target: a webhook by its origin only,
    /// since paths and queries of webhook URLs often carry tokens.
    pub fn describe(&self) -> String {
        match self {
            Self::Webhook { url, .. } => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
                let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
                let host = host.rsplit('@').next().unwrap_or_default();
                let more = if rest.len() > host.len() { "/…" } else { "" };
                format!("webhook {scheme}://{host}{more}")
            }
            Self::Command { command } => {
                let first: String = command.chars().take(40).collect();
                let more = if first.len() < command.len() {
                    "…"
                } else {
                    ""
                };
                format!("command `{first}{more}`")
            }
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HookEvent {
    #[serde(rename = "on_failure")]
    Failure,
    #[serde(rename = "on_success")]
    Success,
    #[serde(rename = "on_retry")]
    Retry,
    #[serde(rename = "on_sla_miss")]
    SlaMiss,
}

impl HookEvent {
    pub fn key(self) -> &'static str {
        match self {
            Self::Failure => "on_failure",
            Self::Success => "on_success",
            Self::Retry => "on_retry",
            Self::SlaMiss => "on_sla_miss",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub on_failure: Vec<HookTarget>,
    pub on_success: Vec<HookTarget>,
    pub on_retry: Vec<HookTarget>,
    pub on_sla_miss: Vec<HookTarget>,
    /// A run (or task) still going after this long fires `on_sla_miss`.
    pub sla: Option<Duration>,
}

impl Hooks {
    pub fn targets(&self, event: HookEvent) -> &[HookTarget] {
        match event {
            HookEvent::Failure => &self.on_failure,
            HookEvent::Success => &self.on_success,
            HookEvent::Retry => &self.on_retry,
            HookEvent::SlaMiss => &self.on_sla_miss,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.on_failure.is_empty()
            && self.on_success.is_empty()
            && self.on_retry.is_empty()
            && self.on_sla_miss.is_empty()
            && self.sla.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_are_named_by_origin_so_tokens_in_paths_stay_out_of_records() {
        let slack = HookTarget::Webhook {
            url: "https://hooks.slack.com/services/T000/B000/SECRET".into(),
            slack: true,
        };
        assert_eq!(slack.describe(), "webhook https://hooks.slack.com/…");
        let bare = HookTarget::Webhook {
            url: "http://127.0.0.1:9000".into(),
            slack: false,
        };
        assert_eq!(bare.describe(), "webhook http://127.0.0.1:9000");
        let userinfo = HookTarget::Webhook {
            url: "http://user:pw@example.com/x".into(),
            slack: false,
        };
        assert!(
            !userinfo.describe().contains("pw"),
            "{}",
            userinfo.describe()
        );
        let command = HookTarget::Command {
            command: "x".repeat(100),
        };
        assert!(command.describe().ends_with("…`"));
    }
}
