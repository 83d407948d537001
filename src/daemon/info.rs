//! `<state_dir>/daemon.json`: how the CLI finds a running daemon.
//!
//! The daemon writes it (atomically) once its API listens and removes it on
//! a clean exit. A file left by a daemon that died is stale: the CLI checks
//! that the pid is alive *and* that the address answers before trusting it,
//! so a crash never leaves the CLI talking to nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "daemon.json";

/// Environment variable holding the API's bearer token.
pub use crate::auth::TOKEN_VAR;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    pub addr: SocketAddr,
    /// Where the prediction server listens when the daemon runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serve_addr: Option<SocketAddr>,
    /// Whether requests must carry `Authorization: Bearer $DAG_API_TOKEN`.
    pub token_required: bool,
    pub started_at_ms: i64,
    pub version: String,
    /// The project root the daemon resolves relative paths against.
    pub workdir: PathBuf,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Written by a daemon from the moment it starts until `daemon.json` is
/// published: the window in which it may hold the store without answering
/// yet. It holds the daemon's pid.
pub const STARTING_FILE: &str = "daemon.starting";

/// Removes the starting file when dropped, if it is still this process's.
#[derive(Debug)]
pub struct Starting {
    path: PathBuf,
}

impl Drop for Starting {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            == Some(std::process::id());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Marks this process as a daemon starting up for `state_dir`.
pub fn mark_starting(state_dir: &Path) -> std::io::Result<Starting> {
    std::fs::create_dir_all(state_dir)?;
    let path = state_dir.join(STARTING_FILE);
    std::fs::write(&path, std::process::id().to_string())?;
    Ok(Starting { path })
}

/// The pid of a daemon that is starting up for `state_dir` (alive, and not
/// yet answering), if any.
pub fn starting(state_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(state_dir.join(STARTING_FILE)).ok()?;
    let pid = text.trim().parse::<u32>().ok()?;
    pid_alive(pid).then_some(pid)
}

pub fn write(state_dir: &Path, info: &DaemonInfo) -> std::io::Result<()> {
    let target = path(state_dir);
    let temp = state_dir.join(format!(".{FILE_NAME}.{}", std::process::id()));
    let bytes = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, &target)
}

/// Removes the file if it is still this process's.
pub fn remove_own(state_dir: &Path) {
    if read(state_dir).is_some_and(|info| info.pid == std::process::id()) {
        let _ = std::fs::remove_file(path(state_dir));
    }
}

/// The file's content, if it exists and parses.
pub fn read(state_dir: &Path) -> Option<DaemonInfo> {
    let bytes = std::fs::read(path(state_dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The running daemon for `state_dir`: the file exists, its pid is alive and
/// its address accepts connections.
pub fn running(state_dir: &Path) -> Option<DaemonInfo> {
    let info = read(state_dir)?;
    if !pid_alive(info.pid) {
        return None;
    }
    std::net::TcpStream::connect_timeout(&info.addr, Duration::from_millis(500)).ok()?;
    Some(info)
}

pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be
    // signalled; it sends nothing.
    let result = unsafe { libc::kill(pid, 0) };
    let exists = result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    // An exited process whose parent has not reaped it yet (a zombie) can
    // still be signalled, but it is not running.
    exists && !is_zombie(pid)
}

/// Whether `/proc` shows `pid` as exited but not yet reaped (state `Z`).
fn is_zombie(pid: libc::pid_t) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ...`; `comm` may hold spaces and parentheses.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exited_child_not_yet_reaped_is_not_alive() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        // Until reaped it stays a zombie; wait for it to get there.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pid_alive(pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "pid {pid} still alive"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(is_zombie(libc::pid_t::try_from(pid).expect("pid")));
        child.wait().expect("reap");
        assert!(!pid_alive(pid));
        assert!(pid_alive(std::process::id()));
    }

    fn info(pid: u32, addr: SocketAddr) -> DaemonInfo {
        DaemonInfo {
            pid,
            addr,
            serve_addr: None,
            token_required: false,
            started_at_ms: 0,
            version: "test".into(),
            workdir: PathBuf::from("."),
        }
    }

    #[test]
    fn a_live_listener_is_running_and_a_dead_pid_or_closed_port_is_not() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        assert!(running(dir.path()).is_none());
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        write(dir.path(), &info(std::process::id(), addr))?;
        assert_eq!(running(dir.path()).map(|i| i.addr), Some(addr));

        // A pid that cannot exist.
        write(dir.path(), &info(u32::MAX, addr))?;
        assert!(running(dir.path()).is_none());

        drop(listener);
        write(dir.path(), &info(std::process::id(), addr))?;
        assert!(running(dir.path()).is_none());

        std::fs::write(path(dir.path()), b"{ not json")?;
        assert!(read(dir.path()).is_none());
        remove_own(dir.path());
        assert!(
            path(dir.path()).exists(),
            "not ours to remove: it does not parse"
        );
        write(dir.path(), &info(std::process::id(), addr))?;
        remove_own(dir.path());
        assert!(!path(dir.path()).exists());
        Ok(())
    }
}
