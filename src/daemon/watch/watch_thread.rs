//! [`WatchThread`]: one thread per watching DAG that owns the OS watcher,
//! debounces its events into bursts, confirms changes by digest and sends
//! one [`Fire`] per burst that changed content.
//!
//! A thread rather than a task because hashing is blocking file I/O of any
//! size; the async runtime only ever sees the finished `Fire`.
//!
//! A burst ends when no relevant event has arrived for the debounce time.
//! It has no upper length on purpose: a file copied over a minute fires
//! once, when the copy is done, instead of with half its bytes. Events on
//! paths no glob can match do not extend a burst, so the engine's own busy
//! files cannot hold a fire back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use super::digests::{Digests, describe, digest_of};
use super::scan::{is_ignored, matching_under, targets};
use super::{Fire, WatchError};
use crate::execute::now_ms;
use crate::workspace::glob::Glob;
use dag_state::Trigger;

/// Where fires go; emptied by the handle's drop so that no fire can be sent
/// once the handle is gone, even from a burst that was being hashed.
pub(super) type FireSlot = Arc<Mutex<Option<UnboundedSender<Fire>>>>;

#[derive(Debug)]
pub(super) enum Message {
    Event(notify::Result<notify::Event>),
    Stop,
}

pub(super) struct WatchThread {
    dag: String,
    root: PathBuf,
    globs: Vec<Glob>,
    debounce: Duration,
    watcher: RecommendedWatcher,
    watched: Vec<(PathBuf, RecursiveMode)>,
    digests: Digests,
    fires: FireSlot,
}

/// The relevant events since the last quiet period.
#[derive(Debug, Default)]
struct Burst {
    paths: BTreeSet<PathBuf>,
    /// The OS dropped events (queue overflow) or reported an error: look
    /// at everything again.
    rescan: bool,
    last_event_ms: i64,
    deadline: Option<Instant>,
}

impl Burst {
    fn extend(&mut self, debounce: Duration) {
        self.last_event_ms = now_ms();
        self.deadline = Some(Instant::now() + debounce);
    }
}

impl WatchThread {
    /// Starts watching the glob targets; fails if the OS refuses any of
    /// them (for example, out of inotify watches).
    pub(super) fn start(
        dag: String,
        root: PathBuf,
        globs: Vec<Glob>,
        debounce: Duration,
        mut watcher: RecommendedWatcher,
        fires: FireSlot,
    ) -> Result<Self, WatchError> {
        let watched = targets(&root, &globs);
        for (path, mode) in &watched {
            watcher
                .watch(path, *mode)
                .map_err(|source| WatchError::Watch {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(Self {
            dag,
            root,
            globs,
            debounce,
            watcher,
            watched,
            digests: Digests::default(),
            fires,
        })
    }

    /// Records the baseline, signals `ready`, then handles events until
    /// told to stop or nobody listens for fires any more.
    pub(super) fn run(mut self, inbox: Receiver<Message>, ready: tokio::sync::watch::Sender<bool>) {
        for path in matching_under(&self.root, Path::new(""), &self.globs) {
            let digest = digest_of(&self.root.join(&path));
            self.digests.update(&path, digest);
        }
        ready.send_replace(true);
        let mut burst = Burst::default();
        loop {
            let received = match burst.deadline {
                Some(deadline) => {
                    inbox.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                }
                None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let message = match received {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    if !self.settle(std::mem::take(&mut burst)) {
                        return;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            match message {
                Message::Stop => return,
                Message::Event(Ok(event)) => self.note(&mut burst, event),
                Message::Event(Err(error)) => {
                    tracing::warn!("file watcher for `{}`: {error}", self.dag);
                    burst.rescan = true;
                    burst.extend(self.debounce);
                }
            }
        }
    }

    fn note(&self, burst: &mut Burst, event: notify::Event) {
        // Opening a file to hash it is itself an event; reads never change
        // content.
        if let EventKind::Access(kind) = event.kind
            && kind != AccessKind::Close(AccessMode::Write)
        {
            return;
        }
        let mut relevant = event.need_rescan();
        burst.rescan |= relevant;
        for path in event.paths {
            if self.is_relevant(&path) {
                burst.paths.insert(path);
                relevant = true;
            }
        }
        if relevant {
            burst.extend(self.debounce);
        }
    }

    fn is_relevant(&self, path: &Path) -> bool {
        path.strip_prefix(&self.root).is_ok_and(|relative| {
            !is_ignored(relative)
                && self
                    .globs
                    .iter()
                    .any(|glob| glob.matches(relative) || glob.could_contain(relative))
        })
    }

    /// Re-hashes what the burst touched and sends one fire if any content
    /// changed. Returns `false` when fires can no longer be delivered.
    fn settle(&mut self, burst: Burst) -> bool {
        let mut candidates = BTreeSet::new();
        let mut directories = Vec::new();
        for path in &burst.paths {
            let Ok(relative) = path.strip_prefix(&self.root) else {
                continue;
            };
            if self.globs.iter().any(|glob| glob.matches(relative)) {
                candidates.insert(relative.to_path_buf());
            }
            if self.globs.iter().any(|glob| glob.could_contain(relative)) {
                directories.push(relative.to_path_buf());
            }
        }
        if burst.rescan {
            directories.push(PathBuf::new());
        }
        if !directories.is_empty() {
            // Watch first, then list: a file created in between is seen
            // by both, never by neither.
            self.refresh_watches(&directories, burst.rescan);
            for directory in &directories {
                candidates.extend(self.digests.paths_under(directory).cloned());
                candidates.extend(matching_under(&self.root, directory, &self.globs));
            }
        }
        let changes: Vec<_> = candidates
            .iter()
            .filter_map(|path| {
                let digest = digest_of(&self.root.join(path));
                self.digests.update(path, digest)
            })
            .collect();
        let Some(detail) = describe(&changes) else {
            tracing::info!(dag = %self.dag, "file events changed no watched content; no run");
            return true;
        };
        self.send(Fire {
            dag: self.dag.clone(),
            trigger: Trigger {
                kind: "watch".into(),
                detail,
            },
            logical_date: None,
            params: BTreeMap::new(),
            due_ms: burst.last_event_ms,
        })
    }

    /// Moves watches to where the globs now point after directories were
    /// created or removed. A target at or below a touched directory is
    /// watched again even if its path is unchanged, since a directory
    /// removed and recreated is a new directory to the OS.
    fn refresh_watches(&mut self, touched: &[PathBuf], everything: bool) {
        let wanted = targets(&self.root, &self.globs);
        for (path, mode) in &wanted {
            let recreated = touched
                .iter()
                .any(|directory| path.starts_with(self.root.join(directory)));
            let unchanged =
                !everything && !recreated && self.watched.contains(&(path.clone(), *mode));
            if unchanged {
                continue;
            }
            if let Err(error) = self.watcher.watch(path, *mode) {
                tracing::warn!(
                    "file watcher for `{}` cannot watch `{}`: {error}",
                    self.dag,
                    path.display()
                );
            }
        }
        self.watched = wanted;
    }

    fn send(&self, fire: Fire) -> bool {
        let slot = self.fires.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .is_some_and(|sender| sender.send(fire).is_ok())
    }
}
