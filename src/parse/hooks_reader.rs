//! [`read_hooks`]: the notification keys of a DAG or a task (`on_failure`,
//! `on_success`, `on_retry`, `on_sla_miss`, `sla`) → [`Hooks`], with a
//! diagnostic for every malformed target.

use std::sync::Arc;

use super::fields::{Fields, wrong_type};
use super::node::{Node, Value};
use super::{Diagnostic, SourceFile};
use crate::model::{HookEvent, HookTarget, Hooks};

const TARGET_KEYS: &[&str] = &["webhook", "webhook_env", "format", "command"];
const EVENTS: [HookEvent; 4] = [
    HookEvent::Failure,
    HookEvent::Success,
    HookEvent::Retry,
    HookEvent::SlaMiss,
];

pub fn read_hooks(fields: &Fields<'_>, diagnostics: &mut Vec<Diagnostic>) -> Hooks {
    let mut hooks = Hooks {
        sla: fields.duration("sla", diagnostics),
        ..Hooks::default()
    };
    for event in EVENTS {
        let Some(node) = fields.node(event.key()) else {
            continue;
        };
        let targets = match &node.value {
            Value::Seq(items) => items
                .iter()
                .filter_map(|item| read_target(fields.file, item, event, diagnostics))
                .collect(),
            _ => read_target(fields.file, node, event, diagnostics)
                .into_iter()
                .collect(),
        };
        match event {
            HookEvent::Failure => hooks.on_failure = targets,
            HookEvent::Success => hooks.on_success = targets,
            HookEvent::Retry => hooks.on_retry = targets,
            HookEvent::SlaMiss => hooks.on_sla_miss = targets,
        }
    }
    if !hooks.on_sla_miss.is_empty()
        && hooks.sla.is_none()
        && let Some(node) = fields.node("on_sla_miss")
    {
        diagnostics.push(
            Diagnostic::new("dag::missing_key", "`on_sla_miss` without an `sla`")
                .at(fields.file, node.span)
                .help("add `sla: 30m`: how long a run (or task) may go before it is late"),
        );
    }
    hooks
}

fn read_target(
    file: &Arc<SourceFile>,
    node: &Node,
    event: HookEvent,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<HookTarget> {
    let what = format!("an `{}` target", event.key());
    if !matches!(node.value, Value::Map(_)) {
        diagnostics.push(
            wrong_type(file, node, "a mapping", &format!("`{}`", event.key()))
                .help("write `- webhook: http://host/path` or `- command: \"notify-send failed\"`"),
        );
        return None;
    }
    let fields = Fields::read(file, node, TARGET_KEYS, &what, diagnostics)?;
    let webhook = fields.string("webhook", diagnostics);
    let webhook_env = fields.string("webhook_env", diagnostics);
    let command = fields.string("command", diagnostics);
    let format = fields.string("format", diagnostics);
    let slack = match format.as_deref() {
        None | Some("json") => false,
        Some("slack") => true,
        Some(other) => {
            let span = fields.node("format").map_or(node.span, |n| n.span);
            diagnostics.push(
                Diagnostic::new(
                    "dag::bad_value",
                    format!("unknown webhook format `{other}`"),
                )
                .at(file, span)
                .help("use `json` (the default) or `slack`"),
            );
            false
        }
    };
    let given = [webhook.is_some(), webhook_env.is_some(), command.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        diagnostics.push(
            Diagnostic::new(
                "dag::bad_value",
                format!("{what} needs exactly one of `webhook`, `webhook_env` or `command`"),
            )
            .at(file, node.span)
            .help("`webhook: https://…` posts JSON; `webhook_env: VAR` reads the URL from an environment variable; `command:` gets the JSON on stdin"),
        );
        return None;
    }
    if let Some(command) = command {
        if command.trim().is_empty() {
            let span = fields.node("command").map_or(node.span, |n| n.span);
            diagnostics.push(
                Diagnostic::new("dag::bad_value", "the hook's `command` is empty").at(file, span),
            );
            return None;
        }
        return Some(HookTarget::Command { command });
    }
    if let Some(var) = webhook_env {
        return Some(HookTarget::Webhook {
            url: format!("env:{var}"),
            slack,
        });
    }
    let url = webhook?;
    if let Err(problem) = check_url(&url) {
        let span = fields.node("webhook").map_or(node.span, |n| n.span);
        diagnostics.push(
            Diagnostic::new("dag::bad_value", format!("bad webhook URL: {problem}"))
                .at(file, span)
                .help("write `http://host:port/path` or `https://host/path`"),
        );
        return None;
    }
    Some(HookTarget::Webhook { url, slack })
}

/// The URL has an `http` or `https` scheme and a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("`{url}` has no scheme"));
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!("scheme `{scheme}` is not `http` or `https`"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(format!("`{url}` has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dag_and_its_tasks_accept_every_hook_key() {
        for key in ["on_failure", "on_success", "on_retry", "on_sla_miss", "sla"] {
            assert!(super::super::DAG_KEYS.contains(&key), "{key}");
            assert!(super::super::TASK_KEYS.contains(&key), "{key}");
        }
    }

    #[test]
    fn urls_need_an_http_scheme_and_a_host() {
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url("https://hooks.slack.com/services/x").is_ok());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("http:///path").is_err());
        assert!(check_url("localhost:9000").is_err());
    }
}
