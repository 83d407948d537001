//! A webhook receiver for the notification tests: a real HTTP listener on
//! loopback that keeps every JSON body it is sent, and can answer the first
//! requests with 500 to exercise retries.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<(Mutex<Vec<Value>>, Condvar)>,
}

impl Receiver {
    /// Answers 500 to the first `fail_first` requests, then 200.
    pub fn start(fail_first: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        let received: Arc<(Mutex<Vec<Value>>, Condvar)> = Arc::default();
        let failures = Arc::new(AtomicUsize::new(fail_first));
        let shared = Arc::clone(&received);
        // The thread ends with the test process; it holds nothing else.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let fail = failures
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if let Some(body) = answer(stream, fail)
                    && !fail
                {
                    let (list, wake) = &*shared;
                    if let Ok(mut list) = list.lock() {
                        list.push(body);
                    }
                    wake.notify_all();
                }
            }
        });
        Self { addr, received }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits up to `limit` for `count` bodies; returns what arrived.
    pub fn wait_for(&self, count: usize, limit: Duration) -> Vec<Value> {
        let (list, wake) = &*self.received;
        let deadline = Instant::now() + limit;
        let mut guard = list.lock().expect("lock");
        while guard.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            guard = wake.wait_timeout(guard, left).expect("lock").0;
        }
        guard.clone()
    }
}

/// Reads one request; answers 500 when `fail`, else 200. Returns the body.
fn answer(stream: TcpStream, fail: bool) -> Option<Value> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    let status = if fail {
        "500 Internal Server Error"
    } else {
        "200 OK"
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    serde_json::from_slice(&body).ok()
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("address").port()
}
