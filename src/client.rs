//! A minimal blocking HTTP/1.1 client: the CLI talking to a running daemon,
//! smoke tests of a served model, and a Ray head's Jobs API (a `host:port`,
//! resolved by [`request_host`]). One request per connection,
//! `Connection: close`, bodies sized by `Content-Length` or read to the end
//! of the stream. Plain HTTP only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("request to {addr} failed: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("malformed HTTP response from {addr}: {reason}")]
    Malformed { addr: SocketAddr, reason: String },
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("the response from {addr} is larger than {limit} bytes")]
    TooLarge { addr: SocketAddr, limit: u64 },
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// Header names in lowercase, with their values.
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// The value of header `name` (lowercase), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Sends one request and reads the whole response. `body` is sent as JSON
/// when given.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Response, ClientError> {
    send(addr, method, path, token, body, timeout, u64::MAX)
}

/// [`request`] to `host:port` (resolved, first address that connects), with
/// the response read only up to `max_response` bytes, so a peer cannot make
/// the caller hold more than that.
pub fn request_host(
    host: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
    max_response: u64,
) -> Result<Response, ClientError> {
    let resolve = |source| ClientError::Resolve {
        host: host.to_string(),
        source,
    };
    let addrs: Vec<SocketAddr> = host.to_socket_addrs().map_err(resolve)?.collect();
    let mut last = None;
    for addr in addrs {
        match send(addr, method, path, None, body, timeout, max_response) {
            Err(error @ ClientError::Connect { .. }) => last = Some(error),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| resolve(std::io::Error::other("no address"))))
}

fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    timeout: Duration,
    max_response: u64,
) -> Result<Response, ClientError> {
    let io = |source| ClientError::Io { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(5)))
        .map_err(|source| ClientError::Connect { addr, source })?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(body).map_err(io)?;
    let mut raw = Vec::new();
    stream
        .take(max_response.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(io)?;
    if raw.len() as u64 > max_response {
        return Err(ClientError::TooLarge {
            addr,
            limit: max_response,
        });
    }
    parse_response(addr, &raw)
}

fn parse_response(addr: SocketAddr, raw: &[u8]) -> Result<Response, ClientError> {
    let malformed = |reason: &str| ClientError::Malformed {
        addr,
        reason: reason.to_string(),
    };
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| malformed("no end of headers"))?;
    let head =
        std::str::from_utf8(&raw[..split]).map_err(|_| malformed("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| malformed("no status line"))?;
    let mut length = None;
    let mut chunked = false;
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        headers.push((name.trim().to_ascii_lowercase(), value.to_string()));
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            chunked = true;
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest).ok_or_else(|| malformed("bad chunked body"))?
    } else {
        match length {
            Some(n) if n <= rest.len() => rest[..n].to_vec(),
            Some(_) => return Err(malformed("body shorter than Content-Length")),
            None => rest.to_vec(),
        }
    };
    Ok(Response {
        status,
        body,
        headers,
    })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 1))
    }

    #[test]
    fn parses_sized_and_chunked_bodies() -> Result<(), ClientError> {
        let sized = parse_response(
            addr(),
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}trailing",
        )?;
        assert_eq!((sized.status, sized.text().as_str()), (200, "{}"));
        let chunked = parse_response(
            addr(),
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )?;
        assert_eq!((chunked.status, chunked.text().as_str()), (404, "abcde"));
        Ok(())
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for raw in [
            &b""[..],
            b"HTTP/1.1\r\n\r\n",
            b"nonsense",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(parse_response(addr(), raw).is_err(), "{raw:?}");
        }
    }
}
