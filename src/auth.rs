//! The bearer-token check shared by the daemon's API and the prediction
//! server: with a token set, every request must carry
//! `Authorization: Bearer <token>`. A token is refused before anything
//! listens when it is too short to resist guessing or could never be sent.

use axum::http::{HeaderMap, header};

/// The environment variable holding the token.
pub const TOKEN_VAR: &str = "DAG_API_TOKEN";

/// Fewest characters a token may have.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakToken {
    #[error("`{TOKEN_VAR}` is only whitespace; {GENERATE}")]
    Blank,
    #[error("`{TOKEN_VAR}` has {0} characters, fewer than {MIN_TOKEN_CHARS}; {GENERATE}")]
    TooShort(usize),
    #[error("`{TOKEN_VAR}` holds a control character, which no HTTP header can carry; {GENERATE}")]
    ControlCharacter,
}

const GENERATE: &str =
    "generate one with `openssl rand -hex 32` (or `head -c 32 /dev/urandom | base64`)";

/// Refuses a token that is blank, shorter than [`MIN_TOKEN_CHARS`], or
/// holds a control character.
pub fn check_token(token: &str) -> Result<(), WeakToken> {
    if token.chars().all(char::is_whitespace) {
        return Err(WeakToken::Blank);
    }
    if token.chars().any(char::is_control) {
        return Err(WeakToken::ControlCharacter);
    }
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        return Err(WeakToken::TooShort(chars));
    }
    Ok(())
}

/// The token in [`TOKEN_VAR`]: `None` when unset or empty, an error when
/// set to a weak one.
pub fn token_from_env() -> Result<Option<String>, WeakToken> {
    match std::env::var(TOKEN_VAR) {
        Ok(token) if !token.is_empty() => check_token(&token).map(|()| Some(token)),
        _ => Ok(None),
    }
}

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
    fn weak_tokens_are_refused_with_how_to_make_one() {
        assert_eq!(check_token(" \t  "), Err(WeakToken::Blank));
        assert_eq!(check_token("x"), Err(WeakToken::TooShort(1)));
        assert_eq!(check_token("fifteen-chars!!"), Err(WeakToken::TooShort(15)));
        assert_eq!(
            check_token("sixteen chars ok\n"),
            Err(WeakToken::ControlCharacter)
        );
        assert_eq!(check_token("sixteen-chars-ok"), Ok(()));
        let message = WeakToken::TooShort(3).to_string();
        assert!(message.contains("openssl rand -hex 32"), "{message}");
    }

    #[test]
    fn secrets_compare_by_every_byte() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
