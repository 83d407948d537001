//! Helpers of the `serve` tests: a registry filled once by the shipped
//! lifecycle, `dag serve` on a free loopback port, and plain HTTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::Project;

/// A state directory template with versions 1 and 2 of `obesity`
/// (different digests), `production` and `champion` on 1, `challenger` on 2.
pub fn registry_template() -> &'static Path {
    static TEMPLATE: OnceLock<Project> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let project = crate::lifecycle::lifecycle_project();
            for trees in ["20", "12"] {
                let output = project.dag(&[
                    "run",
                    "obesity",
                    "--param",
                    &format!("n_trees={trees}"),
                    "--param",
                    "cv_folds=2",
                ]);
                assert!(
                    output.status.success(),
                    "dag run obesity failed:\n{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            for (version, alias) in [("1", "production"), ("1", "champion"), ("2", "challenger")] {
                let output =
                    project.dag(&["models", "promote", "obesity", version, "--alias", alias]);
                assert!(output.status.success(), "{output:?}");
            }
            project
        })
        .path()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// A private copy of the template registry.
pub fn project_with_models() -> Project {
    let project = Project::new();
    copy_dir(
        &registry_template().join(".dag/models"),
        &project.path().join(".dag/models"),
    );
    project
}

pub struct Served {
    pub child: Child,
    pub addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(project: &Project, extra: &[&str], token: Option<&str>) -> Served {
    let mut args = vec!["serve", "--addr", "127.0.0.1:0", "--poll-ms", "50"];
    args.extend_from_slice(extra);
    let mut command = project.command(&args);
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    match token {
        Some(token) => command.env("DAG_API_TOKEN", token),
        None => command.env_remove("DAG_API_TOKEN"),
    };
    let mut child = command.spawn().expect("start dag serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Served { child, addr }
}

pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub fn request(addr: &str, method: &str, path: &str, body: &[u8], headers: &[&str]) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send head");
    // The server may answer (413) before reading a large body and close.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    Reply {
        status,
        body: body.to_string(),
    }
}

pub fn get(addr: &str, path: &str) -> Reply {
    request(addr, "GET", path, b"", &[])
}

pub fn post(addr: &str, path: &str, body: &Value) -> Reply {
    request(addr, "POST", path, body.to_string().as_bytes(), &[])
}

/// The first row of the raw data set, without its label.
pub fn record() -> Value {
    json!({
        "Gender": "Female", "Age": 21, "Height": 1.62, "Weight": 64,
        "family_history_with_overweight": "yes", "FAVC": "no", "FCVC": 2, "NCP": 3,
        "CAEC": "Sometimes", "SMOKE": "no", "CH2O": 2, "SCC": "no", "FAF": 0, "TUE": 1,
        "CALC": "no", "MTRANS": "Public_Transportation"
    })
}

pub fn with(field: &str, value: Value) -> Value {
    let mut record = record();
    record[field] = value;
    record
}

pub fn metric(addr: &str, line_start: &str) -> Option<f64> {
    get(addr, "/metrics")
        .body
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
}

pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn served_version(addr: &str) -> Value {
    post(addr, "/predict", &record()).json()["model"]["version"].clone()
}
