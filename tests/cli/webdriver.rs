//! A small WebDriver client for the browser tests: ChromeDriver over HTTP on
//! loopback, driving Debian's headless Chromium. [`Browser::start`] starts
//! both; dropping the browser ends the session and stops ChromeDriver and
//! every process it started, by pid.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Where `DAG_UI_SCREENSHOTS` is unset, screenshots are not written.
pub const SCREENSHOTS_VAR: &str = "DAG_UI_SCREENSHOTS";
/// How long a condition may take to become true.
pub const DEADLINE: Duration = Duration::from_secs(30);

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One Chromium session; at most one runs at a time in this test binary
/// (the guard serialises the browser tests on a shared machine).
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// A page element, by its WebDriver reference.
#[derive(Debug, Clone)]
pub struct Element(String);

fn turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How many ChromeDrivers to start before giving up, when one exits at
/// start (another process took its port in between).
const DRIVER_ATTEMPTS: usize = 3;

/// A ChromeDriver answering on loopback, and its port.
fn start_driver() -> (Child, u16) {
    for _ in 0..DRIVER_ATTEMPTS {
        let port = free_port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let started = Instant::now();
        loop {
            if let Ok(Some(_)) = driver.try_wait() {
                break;
            }
            if let Ok((200, status)) = http(port, "GET", "/status", None)
                && status["value"]["ready"] == true
            {
                return (driver, port);
            }
            if started.elapsed() >= DEADLINE {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("chromedriver did not answer on port {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("chromedriver exited at start {DRIVER_ATTEMPTS} times");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `(status, body)` of one HTTP/1.1 request to `127.0.0.1:port`.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    // ChromeDriver may keep the connection open: read by the length it
    // announces rather than to the end of the stream.
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let (head, mut payload) = loop {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            break split_head(&raw)
                .unwrap_or((String::from_utf8_lossy(&raw).into_owned(), Vec::new()));
        }
        raw.extend_from_slice(&buffer[..read]);
        if let Some(split) = split_head(&raw) {
            break split;
        }
    };
    let lower = head.to_ascii_lowercase();
    let length = lower.lines().find_map(|line| {
        line.strip_prefix("content-length:")
            .and_then(|n| n.trim().parse::<usize>().ok())
    });
    let chunked = lower.contains("transfer-encoding: chunked");
    loop {
        let complete = match length {
            Some(length) => payload.len() >= length,
            None if chunked => payload.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if complete {
            break;
        }
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        payload.extend_from_slice(&buffer[..read]);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let payload = String::from_utf8_lossy(&payload).into_owned();
    let payload = if chunked { dechunk(&payload) } else { payload };
    Ok((
        status,
        serde_json::from_str(&payload).unwrap_or(Value::Null),
    ))
}

/// The head of a response and what came after it, once the head is complete.
fn split_head(raw: &[u8]) -> Option<(String, Vec<u8>)> {
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((
        String::from_utf8_lossy(&raw[..at]).into_owned(),
        raw[at + 4..].to_vec(),
    ))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// The pids of every process descended from `root`, read from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces and parens.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(
            parent_of
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    found.remove(0);
    found
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium session. Fails, saying
    /// how to install them, when either is missing.
    pub fn start() -> Self {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "`{binary}` is missing: the browser tests need Debian's Chromium and ChromeDriver. \
                 Install them with `apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver` \
                 (`.ci/run` does this)"
            );
        }
        let turn = turn();
        let (driver, port) = start_driver();
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let mut browser = Self {
            driver,
            port,
            session: String::new(),
            _profile: profile,
            _turn: turn,
        };
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let (status, answer) =
            http(port, "POST", "/session", Some(&capabilities)).expect("create a session");
        assert_eq!(status, 200, "chromium did not start: {answer}");
        browser.session = answer["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let body = body.or_else(|| (method == "POST").then(|| json!({})));
        let (status, answer) = http(self.port, method, &path, body.as_ref())
            .unwrap_or_else(|e| panic!("chromedriver: {method} {path}: {e}"));
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Every element matching `css` now.
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        self.call(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        )
        .as_array()
        .map(|found| {
            found
                .iter()
                .filter_map(|e| e[ELEMENT_KEY].as_str().map(|id| Element(id.to_string())))
                .collect()
        })
        .unwrap_or_default()
    }

    /// The first element matching `css`, waiting for it to appear.
    pub fn find(&self, css: &str) -> Element {
        self.wait_for(&format!("an element matching `{css}`"), || {
            self.find_all(css).into_iter().next()
        })
    }

    pub fn click(&self, element: &Element) {
        self.call("POST", &format!("/element/{}/click", element.0), None);
    }

    pub fn text(&self, element: &Element) -> String {
        self.call("GET", &format!("/element/{}/text", element.0), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        self.call(
            "GET",
            &format!("/element/{}/attribute/{name}", element.0),
            None,
        )
        .as_str()
        .map(String::from)
    }

    /// Replaces an input's value by typing `text`.
    pub fn type_into(&self, element: &Element, text: &str) {
        self.call("POST", &format!("/element/{}/clear", element.0), None);
        self.call(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        );
    }

    /// Runs `script` (a function body) in the page; its return value.
    pub fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// The text of the first element matching `css`, read in one step (so
    /// a part of the page the script replaces cannot go stale in between).
    pub fn query_text(&self, css: &str) -> Option<String> {
        let css = serde_json::to_string(css).unwrap_or_default();
        self.script(&format!(
            "const e = document.querySelector({css}); return e ? e.textContent.trim() : null;"
        ))
        .as_str()
        .map(String::from)
    }

    /// An attribute of the first element matching `css`, read in one step.
    pub fn query_attribute(&self, css: &str, name: &str) -> Option<String> {
        let (css, name) = (
            serde_json::to_string(css).unwrap_or_default(),
            serde_json::to_string(name).unwrap_or_default(),
        );
        self.script(&format!(
            "const e = document.querySelector({css}); return e ? e.getAttribute({name}) : null;"
        ))
        .as_str()
        .map(String::from)
    }

    /// Activates the first element matching `css` (a link or a button), in
    /// one step, waiting for it to exist.
    pub fn press(&self, css: &str) {
        let quoted = serde_json::to_string(css).unwrap_or_default();
        self.wait_for(&format!("`{css}` to press"), || {
            (self.script(&format!(
                "const e = document.querySelector({quoted}); if (!e) return false; e.click(); return true;"
            )) == Value::Bool(true))
            .then_some(())
        });
    }

    /// Makes the page see `prefers-color-scheme: <scheme>` (through
    /// ChromeDriver's DevTools command endpoint).
    pub fn prefer_color_scheme(&self, scheme: &str) {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({
                "cmd": "Emulation.setEmulatedMedia",
                "params": {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
            })),
        );
    }

    /// The page's visible text.
    pub fn body_text(&self) -> String {
        self.text(&self.find("body"))
    }

    /// Waits until `probe` gives a value; fails after [`DEADLINE`].
    pub fn wait_for<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            if let Some(value) = probe() {
                return value;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "timed out waiting for {what} on {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes a PNG of the window to `$DAG_UI_SCREENSHOTS/<name>.png`, when
    /// that variable is set.
    pub fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os(SCREENSHOTS_VAR).map(PathBuf::from) else {
            return;
        };
        let encoded = self.call("GET", "/screenshot", None);
        let bytes = decode_base64(encoded.as_str().unwrap_or_default());
        assert!(bytes.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::create_dir_all(&dir).expect("create the screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), bytes).expect("write the screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = http(self.port, "DELETE", &path, None);
        }
        let started_by_us = descendants(self.driver.id());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        for pid in started_by_us {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// Standard base64 (with padding), as WebDriver sends screenshots.
pub fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter_map(value) {
        buffer = (buffer << 6) | u32::from(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

#[test]
fn base64_decodes_with_and_without_padding() {
    assert_eq!(decode_base64("aGVsbG8="), b"hello");
    assert_eq!(decode_base64("aGk="), b"hi");
    assert_eq!(decode_base64("YWJj"), b"abc");
    assert_eq!(decode_base64("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
}
