//! The bearer-token check shared by the daemon's API and the prediction
//! server: with a token set, every request must carry
//! `Authorization: Bearer <token>`.

use axum::http::{HeaderMap, header};

/// Whether `headers` carry `token` as a bearer token. The comparison does
/// not stop at the first differing byte.
pub fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|presented| same_secret(presented.as_bytes(), token.as_bytes()))
}

fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(header::AUTHORIZATION, value);
        }
        headers
    }

    #[test]
    fn only_the_exact_bearer_token_matches() {
        assert!(bearer_matches(&with("Bearer abc"), "abc"));
        assert!(!bearer_matches(&with("Bearer abd"), "abc"));
        assert!(!bearer_matches(&with("Bearer abcd"), "abc"));
        assert!(!bearer_matches(&with("Bearer "), "abc"));
        assert!(!bearer_matches(&with("abc"), "abc"));
        assert!(!bearer_matches(&with("Basic abc"), "abc"));
        assert!(!bearer_matches(&HeaderMap::new(), "abc"));
    }

    #[test]
    fn secrets_compare_by_every_byte() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
