//! A real local Ray head for the Ray executor's tests, from the project's
//! cached Python environment (`bash .ci/python-env`).
//!
//! Everything binds to 127.0.0.1 (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`,
//! `--node-ip-address`, every port chosen free on loopback), and the head
//! keeps its files in a private, short temporary directory (Ray's socket
//! paths must stay under ~107 bytes). It is stopped by the process group
//! the test started, never with `ray stop`, which would stop every Ray on
//! the machine. Job processes leave that group (Ray starts them in a
//! session of their own), so every process of a head carries a marker in
//! its environment, and stopping a head also kills what carries its marker.
//!
//! One shared head serves the tests of a test binary run ([`shared`]); a
//! watchdog beside it kills it when the test process is gone, however that
//! process ended. Tests that must kill a head start their own.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use dag::execute::ray::JobsApi;

use super::support::repo_root;

/// The environment variable marking every process of one head.
const MARK_VAR: &str = "DAG_TEST_RAY_HEAD";

/// How long a head may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// How many heads to start before giving up, when one exits at start (for
/// instance because another process took one of its ports in between).
const START_ATTEMPTS: usize = 3;

/// The interpreter of the project's test environment (installed on first
/// use; shared and cached between runs).
pub fn python() -> PathBuf {
    let output = Command::new("bash")
        .arg(repo_root().join(".ci/python-env"))
        .current_dir(repo_root())
        .stderr(Stdio::inherit())
        .output()
        .expect("run .ci/python-env");
    assert!(output.status.success(), ".ci/python-env failed");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

pub struct RayHead {
    /// `http://127.0.0.1:PORT`: the dashboard, where the Jobs API is.
    pub address: String,
    /// The watchdog shell, leader of the head's process group.
    child: Child,
    mark: String,
    _dir: tempfile::TempDir,
}

impl RayHead {
    /// Starts a head and waits until its Jobs API answers. A head that
    /// exits while starting is started again on other ports.
    pub fn start() -> Self {
        let python = python();
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let mut head = Self::launch(&python);
            match head.wait_ready() {
                Ok(()) => return head,
                Err(log) => failures.push(log),
            }
        }
        panic!(
            "no Ray head started in {START_ATTEMPTS} attempts; their logs:\n{}",
            failures.join("\n---\n")
        );
    }

    fn launch(python: &Path) -> Self {
        let ray = python.with_file_name("ray");
        // Short: Ray's socket paths live under it.
        let dir = tempfile::Builder::new()
            .prefix("rt")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let ports = free_ports(9);
        let mark = format!("{}-{}", std::process::id(), ports[0]);
        let args = [
            "start".to_string(),
            "--head".into(),
            "--block".into(),
            "--node-ip-address=127.0.0.1".into(),
            format!("--port={}", ports[0]),
            "--dashboard-host=127.0.0.1".into(),
            format!("--dashboard-port={}", ports[1]),
            format!("--dashboard-agent-listen-port={}", ports[2]),
            format!("--dashboard-agent-grpc-port={}", ports[3]),
            format!("--metrics-export-port={}", ports[4]),
            format!("--node-manager-port={}", ports[5]),
            format!("--object-manager-port={}", ports[6]),
            format!("--ray-client-server-port={}", ports[7]),
            format!("--runtime-env-agent-port={}", ports[8]),
            format!("--temp-dir={}", dir.path().display()),
            "--num-cpus=2".into(),
            "--include-dashboard=true".into(),
            "--disable-usage-stats".into(),
        ];
        // The watchdog: runs the head, and when the test process or the
        // head is gone, kills everything carrying the mark, then its group.
        let script = format!(
            r#""$0" "$@" > "{log}" 2>&1 &
while kill -0 {test} 2>/dev/null && kill -0 $! 2>/dev/null; do sleep 0.5; done
for p in /proc/[0-9]*; do
  [ "${{p#/proc/}}" = "$$" ] && continue
  tr '\0' '\n' < "$p/environ" 2>/dev/null | grep -qx "{MARK_VAR}={mark}" && kill -KILL "${{p#/proc/}}" 2>/dev/null
done
kill -KILL 0"#,
            log = dir.path().join("head.log").display(),
            test = std::process::id(),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&ray)
            .args(&args)
            .env("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            .env(MARK_VAR, &mark)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the Ray head");
        Self {
            address: format!("http://127.0.0.1:{}", ports[1]),
            child,
            mark,
            _dir: dir,
        }
    }

    pub fn api(&self) -> JobsApi {
        JobsApi::new(&self.address).expect("a valid address")
    }

    /// Waits until the head answers. `Err` with its log when it exited
    /// first; a head still starting after [`START_TIMEOUT`] fails the test.
    fn wait_ready(&mut self) -> Result<(), String> {
        let api = self.api();
        let deadline = Instant::now() + START_TIMEOUT;
        while api.jobs().is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Dropping the head kills what is left of it.
                return Err(format!("the head exited ({status}):\n{}", self.log()));
            }
            assert!(
                Instant::now() < deadline,
                "the Ray head at {} did not answer within {START_TIMEOUT:?}; its log:\n{}",
                self.address,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("head.log")).unwrap_or_default()
    }

    /// Kills the head: its process group (by the pid this test started),
    /// then every process carrying its mark.
    pub fn kill(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: signals the process group this guard created.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
        kill_marked(&self.mark);
    }
}

impl Drop for RayHead {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The head shared by this test binary's Ray tests, started on first use.
pub fn shared() -> &'static RayHead {
    static HEAD: OnceLock<RayHead> = OnceLock::new();
    HEAD.get_or_init(RayHead::start)
}

/// Ray tests run one at a time: the machine is small, and timing checks
/// should not depend on what else runs on the head.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `n` distinct free loopback ports: every listener is held until all are
/// chosen, so the kernel cannot hand out one port twice.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("a bound address").port())
        .collect()
}

/// SIGKILLs every process whose environment holds `MARK_VAR=mark`.
fn kill_marked(mark: &str) {
    let wanted = format!("{MARK_VAR}={mark}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if carries(&entry.path(), &wanted) {
            // SAFETY: a plain kill(2) of a process found carrying the mark.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

fn carries(proc_dir: &Path, wanted: &str) -> bool {
    std::fs::read(proc_dir.join("environ"))
        .map(|environ| {
            environ
                .split(|&b| b == 0)
                .any(|entry| entry == wanted.as_bytes())
        })
        .unwrap_or(false)
}
