//! [`Guard`]: who may use the UI and which requests it trusts.
//!
//! - **Where**: without a token the daemon listens on loopback only, and the
//!   UI answers only requests whose `Host` is a loopback name, so a page
//!   elsewhere cannot reach it by pointing a domain at 127.0.0.1 (DNS
//!   rebinding).
//! - **Who**: with a token (`DAG_API_TOKEN`) a browser signs in once on a
//!   form; the token is exchanged for an `HttpOnly`, `SameSite=Strict`
//!   session cookie whose value is a keyed hash of the token under a key
//!   drawn when the process starts (so it stops working when the daemon
//!   restarts). `Authorization: Bearer <token>` works too, as on the API.
//!   A token shorter than [`MIN_TOKEN_CHARS`] signs nobody in.
//! - **What changes state**: only POSTs, each carrying a CSRF token (a
//!   keyed hash of the session) in its form, and none whose `Origin` or
//!   `Sec-Fetch-Site` says it came from another site.

use std::io::Read;

use axum::http::{HeaderMap, HeaderValue, header};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "dag_session";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
pub use crate::auth::MIN_TOKEN_CHARS;

/// Whether a request may see the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token is configured (loopback only).
    Open,
    /// A valid session cookie or bearer token.
    SignedIn,
    /// A token is configured and the request has neither.
    SignInNeeded,
    /// The configured token is too short for anyone to sign in with.
    TokenTooShort,
}

pub struct Guard {
    token: Option<String>,
    session_key: [u8; 32],
    csrf_key: [u8; 32],
}

impl Guard {
    /// A guard with keys drawn from the operating system's random source.
    pub fn new(token: Option<String>) -> std::io::Result<Self> {
        let mut keys = [0u8; 64];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut keys)?;
        let (session, csrf) = keys.split_at(32);
        let mut guard = Self::with_keys(token, [0; 32], [0; 32]);
        guard.session_key.copy_from_slice(session);
        guard.csrf_key.copy_from_slice(csrf);
        Ok(guard)
    }

    /// A guard with the given keys (tests).
    pub fn with_keys(token: Option<String>, session_key: [u8; 32], csrf_key: [u8; 32]) -> Self {
        Self {
            token: token.filter(|t| !t.is_empty()),
            session_key,
            csrf_key,
        }
    }

    pub fn token_required(&self) -> bool {
        self.token.is_some()
    }

    fn usable_token(&self) -> Option<&str> {
        self.token
            .as_deref()
            .filter(|t| t.chars().count() >= MIN_TOKEN_CHARS)
    }

    /// The session cookie's value for the configured token.
    fn session_value(&self) -> Option<String> {
        self.usable_token().map(|token| {
            blake3::keyed_hash(&self.session_key, token.as_bytes())
                .to_hex()
                .to_string()
        })
    }

    pub fn access(&self, headers: &HeaderMap) -> Access {
        let Some(token) = self.token.as_deref() else {
            return Access::Open;
        };
        let Some(expected) = self.session_value() else {
            return Access::TokenTooShort;
        };
        let by_cookie = cookie(headers, SESSION_COOKIE)
            .is_some_and(|value| same_bytes(value.as_bytes(), expected.as_bytes()));
        if by_cookie || crate::auth::bearer_matches(headers, token) {
            Access::SignedIn
        } else {
            Access::SignInNeeded
        }
    }

    /// Whether `presented` is the token (and the token is long enough).
    pub fn token_matches(&self, presented: &str) -> bool {
        self.usable_token()
            .is_some_and(|token| same_bytes(presented.as_bytes(), token.as_bytes()))
    }

    /// `Set-Cookie` for a signed-in browser.
    pub fn session_cookie(&self) -> Option<HeaderValue> {
        let value = self.session_value()?;
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict"
        ))
        .ok()
    }

    /// `Set-Cookie` that ends the session.
    pub fn expired_cookie() -> HeaderValue {
        HeaderValue::from_static("dag_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }

    /// The CSRF token for forms shown to this request's session.
    pub fn csrf_token(&self, headers: &HeaderMap) -> String {
        let session = cookie(headers, SESSION_COOKIE).unwrap_or("");
        let mut hasher = blake3::Hasher::new_keyed(&self.csrf_key);
        hasher.update(b"csrf\0");
        hasher.update(session.as_bytes());
        hasher.finalize().to_hex()[..32].to_string()
    }

    /// Whether a state-changing request may proceed: its form carries this
    /// session's CSRF token and nothing says it came from another site.
    pub fn post_allowed(&self, headers: &HeaderMap, presented: Option<&str>) -> bool {
        let expected = self.csrf_token(headers);
        let token_ok =
            presented.is_some_and(|value| same_bytes(value.as_bytes(), expected.as_bytes()));
        token_ok && same_site(headers)
    }

    /// Whether the `Host` header names a host this UI answers for: any with
    /// a token, only loopback names without one.
    pub fn host_allowed(&self, headers: &HeaderMap) -> bool {
        if self.token.is_some() {
            return true;
        }
        headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_loopback_host)
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(bracketed) = host.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        })
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// No `Origin` from another host, and no `Sec-Fetch-Site` but
/// `same-origin` or `none` (typed in the address bar).
fn same_site(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|origin_host| origin_host.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
    }
}

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// Equality that does not stop at the first differing byte.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where to go after signing in: a path on this site, else `/`.
pub fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef-long-enough";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.append(header::HeaderName::from_static(name), value);
            }
        }
        map
    }

    fn guard(token: Option<&str>) -> Guard {
        Guard::with_keys(token.map(String::from), [7; 32], [9; 32])
    }

    fn cookie_value(guard: &Guard) -> String {
        let set = guard
            .session_cookie()
            .and_then(|v| v.to_str().ok().map(String::from))
            .unwrap_or_default();
        set.split(';').next().unwrap_or("").to_string()
    }

    #[test]
    fn signing_in_gives_an_http_only_strict_cookie_that_is_not_the_token() {
        let guard = guard(Some(TOKEN));
        let set = guard
            .session_cookie()
            .and_then(|v| v.to_str().ok().map(String::from))
            .unwrap_or_default();
        assert!(set.contains("HttpOnly"), "{set}");
        assert!(set.contains("SameSite=Strict"), "{set}");
        assert!(!set.contains(TOKEN), "{set}");
        let cookie = cookie_value(&guard);
        assert_eq!(
            guard.access(&headers(&[("cookie", &format!("a=b; {cookie}"))])),
            Access::SignedIn
        );
        assert_eq!(
            guard.access(&headers(&[("cookie", "dag_session=forged")])),
            Access::SignInNeeded
        );
        assert_eq!(guard.access(&HeaderMap::new()), Access::SignInNeeded);
        assert_eq!(
            guard.access(&headers(&[("authorization", &format!("Bearer {TOKEN}"))])),
            Access::SignedIn
        );
        // Another process (another key) does not accept this cookie.
        let restarted = Guard::with_keys(Some(TOKEN.into()), [8; 32], [9; 32]);
        assert_eq!(
            restarted.access(&headers(&[("cookie", &cookie)])),
            Access::SignInNeeded
        );
    }

    #[test]
    fn the_token_is_checked_exactly_and_short_tokens_sign_nobody_in() {
        let guard = guard(Some(TOKEN));
        assert!(guard.token_matches(TOKEN));
        assert!(!guard.token_matches(&TOKEN[..TOKEN.len() - 1]));
        assert!(!guard.token_matches(""));
        let short = self::guard(Some("s3cret"));
        assert!(!short.token_matches("s3cret"));
        assert_eq!(short.access(&HeaderMap::new()), Access::TokenTooShort);
        assert!(short.session_cookie().is_none());
        assert_eq!(self::guard(None).access(&HeaderMap::new()), Access::Open);
    }

    #[test]
    fn posts_need_the_session_csrf_token_and_a_same_site_origin() {
        let guard = guard(Some(TOKEN));
        let cookie = cookie_value(&guard);
        let signed_in = headers(&[("cookie", &cookie), ("host", "127.0.0.1:7311")]);
        let token = guard.csrf_token(&signed_in);
        assert!(guard.post_allowed(&signed_in, Some(&token)));
        assert!(!guard.post_allowed(&signed_in, None));
        assert!(!guard.post_allowed(&signed_in, Some("0000")));
        // Another session's token does not fit.
        let anonymous = headers(&[("host", "127.0.0.1:7311")]);
        assert_ne!(guard.csrf_token(&anonymous), token);
        let from_elsewhere = headers(&[
            ("cookie", &cookie),
            ("host", "127.0.0.1:7311"),
            ("origin", "http://evil.example"),
        ]);
        assert!(!guard.post_allowed(&from_elsewhere, Some(&token)));
        let same_origin = headers(&[
            ("cookie", &cookie),
            ("host", "127.0.0.1:7311"),
            ("origin", "http://127.0.0.1:7311"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(guard.post_allowed(&same_origin, Some(&token)));
        let cross_site = headers(&[
            ("cookie", &cookie),
            ("host", "127.0.0.1:7311"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(!guard.post_allowed(&cross_site, Some(&token)));
    }

    #[test]
    fn without_a_token_only_loopback_host_names_are_answered() {
        let open = guard(None);
        for host in [
            "127.0.0.1:7311",
            "localhost:80",
            "LOCALHOST",
            "[::1]:7311",
            "127.1.2.3",
        ] {
            assert!(open.host_allowed(&headers(&[("host", host)])), "{host}");
        }
        for host in [
            "evil.example:7311",
            "127.0.0.1.evil.example",
            "10.0.0.1:7311",
            "",
        ] {
            assert!(!open.host_allowed(&headers(&[("host", host)])), "{host}");
        }
        assert!(!open.host_allowed(&HeaderMap::new()));
        assert!(guard(Some(TOKEN)).host_allowed(&headers(&[("host", "dag.example")])));
    }

    #[test]
    fn sign_in_redirects_stay_on_this_site() {
        assert_eq!(local_path(Some("/runs/x?a=1")), "/runs/x?a=1");
        for hostile in ["//evil.example", "https://evil.example", "/\\evil", "", "x"] {
            assert_eq!(local_path(Some(hostile)), "/", "{hostile}");
        }
        assert_eq!(local_path(None), "/");
    }
}
