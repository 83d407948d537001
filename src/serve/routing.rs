//! [`choose`]: whether the champion or the challenger answers a request.
//! The choice hashes the request body, so it is reproducible: the same
//! request always goes to the same side, and a share of `s` sends about `s`
//! of distinct requests to the challenger.

use crate::serve::metrics::Role;

/// The side that answers `body` when the challenger takes `share` of requests.
pub fn choose(body: &[u8], share: f64) -> Role {
    if share <= 0.0 {
        return Role::Champion;
    }
    let hash = blake3::hash(body);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    let point = u64::from_le_bytes(first) as f64 / (u64::MAX as f64 + 1.0);
    if point < share {
        Role::Challenger
    } else {
        Role::Champion
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_body_always_goes_to_the_same_side() {
        let body = br#"{"Age": 21}"#;
        let first = choose(body, 0.5);
        assert!((0..10).all(|_| choose(body, 0.5) == first));
    }

    #[test]
    fn share_is_respected_over_many_distinct_bodies() {
        let challenger = (0..10_000)
            .filter(|i| choose(format!("{{\"i\": {i}}}").as_bytes(), 0.1) == Role::Challenger)
            .count();
        assert!((800..1200).contains(&challenger), "{challenger}");
        assert!((0..100).all(|i| choose(&[i], 0.0) == Role::Champion));
        assert!((0..100).all(|i| choose(&[i], 1.0) == Role::Challenger));
    }
}
