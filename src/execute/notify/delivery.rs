//! Delivering one notification to one target: a webhook POST (plain HTTP
//! here; `https` through the system's `curl`, so no TLS stack is compiled
//! in) or a shell command with the JSON on stdin. Each try is bounded in
//! time, and a failed delivery is tried again with backoff.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::model::HookTarget;

/// How long one try may take.
const TRY_TIMEOUT: Duration = Duration::from_secs(5);
/// Waits before the second and third tries.
const BACKOFF: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(2)];

/// What became of a delivery.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub tries: u32,
    pub error: Option<String>,
}

/// Tries up to three times; never panics, never blocks the caller's run.
pub async fn deliver(target: &HookTarget, body: &str) -> Delivered {
    let mut tries = 0;
    loop {
        tries += 1;
        let result = tokio::time::timeout(TRY_TIMEOUT, try_once(target, body))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {}s", TRY_TIMEOUT.as_secs())));
        match result {
            Ok(()) => return Delivered { tries, error: None },
            Err(error) => match BACKOFF.get(tries as usize - 1) {
                Some(wait) => {
                    tracing::debug!(target = %target.describe(), %error, "notification failed; trying again");
                    tokio::time::sleep(*wait).await;
                }
                None => {
                    return Delivered {
                        tries,
                        error: Some(error),
                    };
                }
            },
        }
    }
}

async fn try_once(target: &HookTarget, body: &str) -> Result<(), String> {
    match target {
        HookTarget::Command { command } => run_command(command, body).await,
        HookTarget::Webhook { url, .. } => {
            let url = resolve_url(url)?;
            if url.starts_with("https://") {
                post_with_curl(&url, body).await
            } else {
                let body = body.to_string();
                tokio::task::spawn_blocking(move || post_http(&url, &body))
                    .await
                    .map_err(|e| format!("delivery task failed: {e}"))?
            }
        }
    }
}

/// `env:VAR` (from `webhook_env:`) reads the URL when it is needed, so it
/// never sits in the DAG file or the store.
fn resolve_url(url: &str) -> Result<String, String> {
    let Some(var) = url.strip_prefix("env:") else {
        return Ok(url.to_string());
    };
    let value = std::env::var(var)
        .map_err(|_| format!("the environment variable `{var}` with the webhook URL is not set"))?;
    crate::parse::check_webhook_url(&value)
        .map_err(|problem| format!("`{var}` holds a bad webhook URL: {problem}"))?;
    Ok(value)
}

async fn run_command(command: &str, body: &str) -> Result<(), String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start `sh`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its stdin is fine.
        let _ = stdin.write_all(body.as_bytes()).await;
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("waiting for the command: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the command ended with {status}"))
    }
}

async fn post_with_curl(url: &str, body: &str) -> Result<(), String> {
    let mut child = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--max-time", "5"])
        .args([
            "--header",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
        ])
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("https webhooks are posted with `curl`, which cannot start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(body.as_bytes())
            .await
            .map_err(|e| format!("writing to curl: {e}"))?;
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("waiting for curl: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("curl ended with {status}"))
    }
}

/// One `POST` over HTTP/1.1; any 2xx answer counts as delivered.
fn post_http(url: &str, body: &str) -> Result<(), String> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let with_port = if host
        .rsplit(':')
        .next()
        .is_some_and(|p| p.parse::<u16>().is_ok())
        && !host.ends_with(']')
    {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{host}` resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TRY_TIMEOUT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = stream.set_read_timeout(Some(TRY_TIMEOUT));
    let _ = stream.set_write_timeout(Some(TRY_TIMEOUT));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: dag\r\n\r\n",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| format!("sending to {addr}: {e}"))?;
    // The status line is all that matters; read at most a little.
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => {
                read += n;
                if head[..read].contains(&b'\n') {
                    break;
                }
            }
            Err(e) => return Err(format!("reading the answer from {addr}: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..read]);
    let status = line.split_whitespace().nth(1).unwrap_or_default();
    if status.starts_with('2') && status.len() == 3 {
        Ok(())
    } else if status.is_empty() {
        Err(format!("{addr} closed the connection without an answer"))
    } else {
        Err(format!("{addr} answered HTTP {status}"))
    }
}
