//! Moving aliases: [`ModelRegistry::set_alias_by`], [`ModelRegistry::rollback_by`]
//! and the history they leave ([`ModelRegistry::history`]).
//!
//! Every move is logged with who made it. A rollback undoes a promotion:
//! the aliases that the same task moved to the rolled-back version go back
//! with it (the deployment DAG moves `champion` and `production` together,
//! so rolling back `production` rolls back `champion` too); an alias that
//! reached that version some other way stays, and the result says so.

use std::collections::BTreeMap;

use crate::models::registry::{check_name, write_json};
use crate::models::version::AliasState;
use crate::models::{
    Actor, AliasEvent, AliasMove, ModelRegistry, MoveKind, RegistryError, Rollback,
};

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn next_seq(aliases: &BTreeMap<String, AliasState>) -> u64 {
    aliases
        .values()
        .flat_map(|state| state.log.iter().map(|event| event.seq))
        .max()
        .unwrap_or(0)
        + 1
}

impl ModelRegistry {
    /// Points `alias` at `version` by hand (`dag models promote`).
    pub fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: u32,
    ) -> Result<AliasMove, RegistryError> {
        self.set_alias_by(name, alias, version, &Actor::by_hand("dag models promote"))
    }

    /// Points `alias` at `version`, remembering where it pointed before and
    /// who moved it. An alias already there is left alone and nothing is logged.
    pub fn set_alias_by(
        &self,
        name: &str,
        alias: &str,
        version: u32,
        by: &Actor,
    ) -> Result<AliasMove, RegistryError> {
        check_name("alias", alias)?;
        let _lock = self.lock()?;
        self.get(name, version)?;
        let mut aliases = self.aliases(name)?;
        let seq = next_seq(&aliases);
        let state = aliases.entry(alias.to_string()).or_default();
        let from = (state.current != 0).then_some(state.current);
        let moved = AliasMove {
            alias: alias.into(),
            from,
            to: version,
        };
        if from == Some(version) {
            return Ok(moved);
        }
        if let Some(from) = from {
            state.history.push(from);
        }
        state.current = version;
        state.log.push(AliasEvent {
            seq,
            at: now(),
            alias: alias.into(),
            from,
            to: version,
            kind: MoveKind::Set,
            by: by.clone(),
            note: None,
        });
        write_json(&self.model_dir(name).join("aliases.json"), &aliases)?;
        Ok(moved)
    }

    /// Rolls `alias` back by hand (`dag models rollback`).
    pub fn rollback(&self, name: &str, alias: &str) -> Result<Rollback, RegistryError> {
        self.rollback_by(name, alias, &Actor::by_hand("dag models rollback"))
    }

    /// Moves `alias` back to the version it pointed at before its last move,
    /// and with it every alias the same task moved to the same version.
    pub fn rollback_by(
        &self,
        name: &str,
        alias: &str,
        by: &Actor,
    ) -> Result<Rollback, RegistryError> {
        let _lock = self.lock()?;
        let mut aliases = self.aliases(name)?;
        let Some(state) = aliases.get(alias) else {
            return Err(RegistryError::UnknownReference {
                name: name.into(),
                reference: alias.into(),
            });
        };
        if state.history.is_empty() {
            return Err(RegistryError::NoHistory {
                name: name.into(),
                alias: alias.into(),
            });
        }
        let leaving = state.current;
        let promotion = state
            .log
            .last()
            .filter(|e| e.to == leaving)
            .map(|e| e.by.clone());
        let mut followers = Vec::new();
        let mut stayed = Vec::new();
        for (other, other_state) in &aliases {
            if other == alias || other_state.current != leaving {
                continue;
            }
            let last = other_state.log.last().filter(|e| e.to == leaving);
            match (last, &promotion) {
                (Some(event), Some(promoter)) if event.by.same_task(promoter) => {
                    if other_state.history.is_empty() {
                        stayed.push(format!(
                            "`{other}` stays at v{leaving}: it has no earlier version"
                        ));
                    } else {
                        followers.push(other.clone());
                    }
                }
                (Some(event), _) => stayed.push(format!(
                    "`{other}` stays at v{leaving}: {} moved it there, not the promotion being undone",
                    event.by
                )),
                (None, _) => stayed.push(format!(
                    "`{other}` stays at v{leaving}: it was not moved there with `{alias}`"
                )),
            }
        }
        let mut seq = next_seq(&aliases);
        let at = now();
        let mut undo = |target: &str, note: Option<String>| -> Option<AliasMove> {
            let state = aliases.get_mut(target)?;
            let to = state.history.pop()?;
            let from = Some(state.current);
            state.current = to;
            state.log.push(AliasEvent {
                seq,
                at: at.clone(),
                alias: target.into(),
                from,
                to,
                kind: MoveKind::Rollback,
                by: by.clone(),
                note,
            });
            seq += 1;
            Some(AliasMove {
                alias: target.into(),
                from,
                to,
            })
        };
        let moved = undo(alias, None).ok_or_else(|| RegistryError::NoHistory {
            name: name.into(),
            alias: alias.into(),
        })?;
        let followed = followers
            .iter()
            .filter_map(|other| undo(other, Some(format!("with {alias}"))))
            .collect();
        write_json(&self.model_dir(name).join("aliases.json"), &aliases)?;
        Ok(Rollback {
            moved,
            followed,
            stayed,
        })
    }

    /// Every alias of model `name` with its target, rollback stack and
    /// recorded moves.
    pub fn alias_states(&self, name: &str) -> Result<BTreeMap<String, AliasState>, RegistryError> {
        check_name("model name", name)?;
        self.aliases(name)
    }

    /// Every alias move of `name`, oldest first.
    pub fn history(&self, name: &str) -> Result<Vec<AliasEvent>, RegistryError> {
        check_name("model name", name)?;
        if !self.model_dir(name).join("versions").exists() {
            return Err(RegistryError::UnknownModel { name: name.into() });
        }
        let mut events: Vec<AliasEvent> = self
            .aliases(name)?
            .into_values()
            .flat_map(|state| state.log)
            .collect();
        events.sort_by_key(|event| event.seq);
        Ok(events)
    }

    /// The version `alias` points at, `None` when it points nowhere (yet).
    pub fn alias_target(&self, name: &str, alias: &str) -> Result<Option<u32>, RegistryError> {
        match self.resolve(name, alias) {
            Ok(version) => Ok(Some(version.version)),
            Err(RegistryError::UnknownModel { .. } | RegistryError::UnknownReference { .. }) => {
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }

    /// The newest move of `alias` away from `version`, if it has left it.
    pub fn last_move_away(
        &self,
        name: &str,
        alias: &str,
        version: u32,
    ) -> Result<Option<AliasEvent>, RegistryError> {
        let aliases = self.aliases(name)?;
        let Some(state) = aliases.get(alias) else {
            return Ok(None);
        };
        if state.current == version {
            return Ok(None);
        }
        Ok(state
            .log
            .iter()
            .rev()
            .find(|event| event.from == Some(version))
            .cloned())
    }
}
