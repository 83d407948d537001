//! Keeping a task's processes bound to the task and to the engine.
//!
//! Every process a task starts carries [`PROCESS_TAG_VAR`] in its
//! environment, which its descendants inherit, even those that leave the
//! task's process group with `setsid`. The tag names the store (a digest of
//! the state directory), the run, the task and the attempt. So:
//!
//! - on a timeout or cancellation, [`kill_tagged`] finds and kills every
//!   process with the attempt's tag, not only its process group;
//! - the task's first process gets `PR_SET_PDEATHSIG` (SIGKILL): when the
//!   engine dies, even by `kill -9`, the kernel kills it;
//! - what survives the engine anyway (grandchildren whose parent died) is
//!   found at the next open of the store by [`find_tagged`] and killed there.
//!
//! This is Linux: it reads `/proc/<pid>/environ` and uses `prctl`. On other
//! platforms only the process group is killed. A process that clears its
//! own environment, or runs as another user, cannot be found this way.

use std::path::Path;

/// The environment variable holding a task process's tag.
pub const PROCESS_TAG_VAR: &str = "DAG_PROCESS_TAG";

/// Most rounds of [`kill_tagged`]: each round kills what it found, and a
/// process may have forked before it died.
const MAX_ROUNDS: usize = 50;

/// The tag of the store in `state_dir`: a short digest of its canonical
/// path, so that the tasks of another project are never touched.
pub fn store_tag(state_dir: &Path) -> String {
    let canonical = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let digest = blake3::hash(canonical.as_os_str().as_encoded_bytes());
    digest.to_hex()[..16].to_string()
}

/// The tag of one attempt: `<store tag>/<run>/<task>/<attempt>`.
pub fn attempt_tag(state_dir: &Path, run_id: &str, task_id: &str, attempt: u32) -> String {
    format!("{}/{run_id}/{task_id}/{attempt}", store_tag(state_dir))
}

/// A live process carrying a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub pid: i32,
    pub tag: String,
}

impl Tagged {
    /// `(run, task, attempt)` of the tag, if it has that shape.
    pub fn attempt(&self) -> Option<(&str, &str, u32)> {
        let mut parts = self.tag.splitn(4, '/');
        let (_store, run, task, attempt) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        Some((run, task, attempt.parse().ok()?))
    }
}

/// Live processes (other than this one) whose tag starts with `prefix`.
pub fn find_tagged(prefix: &str) -> Vec<Tagged> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let needle = format!("{PROCESS_TAG_VAR}={prefix}");
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        if u32::try_from(pid).ok() == Some(me) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let tag = environ
            .split(|byte| *byte == 0)
            .find(|var| var.starts_with(needle.as_bytes()))
            .and_then(|var| std::str::from_utf8(&var[PROCESS_TAG_VAR.len() + 1..]).ok());
        if let Some(tag) = tag {
            found.push(Tagged {
                pid,
                tag: tag.to_string(),
            });
        }
    }
    found
}

/// Kills every process whose tag is exactly `tag`, round after round until
/// none is left; returns how many were killed.
pub fn kill_tagged(tag: &str) -> usize {
    let mut killed = 0;
    for _ in 0..MAX_ROUNDS {
        let found: Vec<Tagged> = find_tagged(tag)
            .into_iter()
            .filter(|process| process.tag == tag && !is_zombie(process.pid))
            .collect();
        if found.is_empty() {
            break;
        }
        for process in &found {
            // SAFETY: kill(2) only sends a signal; no memory is touched.
            if unsafe { libc::kill(process.pid, libc::SIGKILL) } == 0 {
                killed += 1;
            }
        }
    }
    killed
}

/// A zombie has exited and waits for its parent; it cannot be killed and
/// holds nothing.
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(state == 'Z' || state == 'X')
        })
        .unwrap_or(true)
}

/// `setpriv` (util-linux) when it can set the parent-death signal: a task
/// started through it dies with the engine like one set up between fork and
/// exec, but the engine is not forked for it. A fork copies the page tables
/// of the whole engine, which costs milliseconds per task; `posix_spawn`,
/// which the standard library uses when no code runs between fork and
/// exec, does not. Probed once per process.
pub fn pdeathsig_wrapper() -> Option<&'static str> {
    static WRAPPER: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
    *WRAPPER.get_or_init(|| {
        const SETPRIV: &str = "/usr/bin/setpriv";
        let works = cfg!(target_os = "linux")
            && std::process::Command::new(SETPRIV)
                .args(["--pdeathsig", "KILL", "--", "true"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
        works.then_some(SETPRIV)
    })
}

/// Makes the calling (child) process die with SIGKILL when its parent
/// thread dies. Call between fork and exec; async-signal-safe.
#[cfg(target_os = "linux")]
pub fn die_with_parent(parent: libc::pid_t) -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid touch no memory.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The parent may have died before the prctl: then nothing would
        // ever send the signal.
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_parent: libc::pid_t) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::*;

    fn alive(pid: i32) -> bool {
        // SAFETY: signal 0 checks for existence only.
        let exists = unsafe { libc::kill(pid, 0) } == 0;
        exists && !is_zombie(pid)
    }

    #[test]
    fn tags_name_the_attempt_and_the_store() {
        let tag = attempt_tag(Path::new("/nonexistent/state"), "r1", "train", 2);
        let tagged = Tagged {
            pid: 1,
            tag: tag.clone(),
        };
        assert_eq!(tagged.attempt(), Some(("r1", "train", 2)));
        assert!(tag.starts_with(&store_tag(Path::new("/nonexistent/state"))));
        assert_ne!(store_tag(Path::new("/a")), store_tag(Path::new("/b")));
    }

    #[test]
    fn a_process_that_left_its_group_with_setsid_is_found_and_killed() -> std::io::Result<()> {
        let tag = format!("test/{}/escape/1", std::process::id());
        let dir = tempfile::tempdir()?;
        let pid_file = dir.path().join("pid");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "setsid sh -c 'echo $$ > {}; exec sleep 60' & wait",
                pid_file.display()
            ))
            .env(PROCESS_TAG_VAR, &tag)
            .spawn()?;
        let started = Instant::now();
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse::<i32>().ok())
            {
                break pid;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no pid file");
            std::thread::sleep(Duration::from_millis(10));
        };
        let killed = kill_tagged(&tag);
        assert!(killed >= 1, "nothing killed");
        let _ = child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) {
            assert!(
                Instant::now() < deadline,
                "the setsid grandchild {pid} survived"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(find_tagged(&tag).into_iter().all(|p| is_zombie(p.pid)));
        Ok(())
    }
}
