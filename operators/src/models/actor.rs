//! [`Actor`] and [`AliasEvent`]: who moved an alias, when, and from which
//! run — the registry's history, kept with the aliases it explains.
//!
//! An alias moved by a DAG task names the DAG, run and task; one moved by a
//! person names the command and, when the environment says, the user. The
//! registry records events; reading a story out of them is the caller's.

use serde::{Deserialize, Serialize};

/// Who moved an alias.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The command a person ran (`dag models rollback`), for moves by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The user who ran it, from `$USER`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

impl Actor {
    /// A person running `command`.
    pub fn by_hand(command: &str) -> Self {
        Self {
            command: Some(command.to_string()),
            user: std::env::var("USER").ok().filter(|u| !u.is_empty()),
            ..Self::default()
        }
    }

    /// Task `task_id` of run `run_id` of DAG `dag`.
    pub fn task(dag: &str, run_id: &str, task_id: &str) -> Self {
        Self {
            dag: Some(dag.to_string()),
            run_id: Some(run_id.to_string()),
            task_id: Some(task_id.to_string()),
            ..Self::default()
        }
    }

    /// The task an operator context belongs to.
    pub fn of_context(ctx: &crate::Context) -> Self {
        Self::task(&ctx.dag, &ctx.run_id, &ctx.task_id)
    }

    /// Whether a person (not a DAG run) made the move.
    pub fn is_by_hand(&self) -> bool {
        self.run_id.is_none()
    }

    /// Whether two moves were made by the same task of the same run.
    pub fn same_task(&self, other: &Actor) -> bool {
        self.run_id.is_some() && self.run_id == other.run_id && self.task_id == other.task_id
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.run_id, &self.command) {
            (Some(run), _) => write!(
                f,
                "run {run} of `{}` (task `{}`)",
                self.dag.as_deref().unwrap_or("?"),
                self.task_id.as_deref().unwrap_or("?")
            ),
            (None, Some(command)) => match &self.user {
                Some(user) => write!(f, "`{command}` by {user}"),
                None => write!(f, "`{command}`"),
            },
            (None, None) => f.write_str("an unknown actor"),
        }
    }
}

/// How an alias moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    /// Pointed at a version (registration, promotion, `dag models promote`).
    Set,
    /// Moved back to the version it pointed at before its last move.
    Rollback,
}

/// One move of one alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasEvent {
    /// Order of the event among every alias move of the model, from 1.
    pub seq: u64,
    /// RFC 3339.
    pub at: String,
    pub alias: String,
    pub from: Option<u32>,
    pub to: u32,
    pub kind: MoveKind,
    pub by: Actor,
    /// Why, when the move followed another (`with production`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl std::fmt::Display for AliasEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = self
            .from
            .map_or_else(|| "(none)".to_string(), |v| format!("v{v}"));
        let kind = match self.kind {
            MoveKind::Set => "",
            MoveKind::Rollback => " (rollback)",
        };
        write!(
            f,
            "#{} {} {}: {from} → v{}{kind} by {}",
            self.seq, self.at, self.alias, self.to, self.by
        )?;
        if let Some(note) = &self.note {
            write!(f, ", {note}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_by_runs_and_by_hand_read_as_who_did_them() {
        let run = Actor::task("obesity", "r1", "promote");
        assert_eq!(run.to_string(), "run r1 of `obesity` (task `promote`)");
        assert!(!run.is_by_hand());
        let hand = Actor {
            command: Some("dag models rollback".into()),
            user: Some("ana".into()),
            ..Actor::default()
        };
        assert_eq!(hand.to_string(), "`dag models rollback` by ana");
        assert!(hand.is_by_hand());
        assert!(run.same_task(&Actor::task("obesity", "r1", "promote")));
        assert!(!run.same_task(&Actor::task("obesity", "r2", "promote")));
        assert!(!hand.same_task(&hand));
    }
}
