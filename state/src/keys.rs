//! Key encodings of every tree.
//!
//! Keys are byte strings built from text parts separated by a NUL byte
//! (which ids, paths, digests and cache keys cannot contain — [`check_part`]
//! enforces it) and fixed-width big-endian numbers, so that sled's
//! lexicographic order is the order readers want: tasks by task id, attempts
//! by task id then attempt number (attempt 10 after 9), events by `seq`,
//! index entries by run creation order.
//!
//! This module only builds and takes apart keys; it never touches sled.

use crate::StateError;

/// Separates the text parts of a composite key.
pub(crate) const SEP: u8 = 0;

/// Rejects a key part that contains [`SEP`].
pub(crate) fn check_part(kind: &'static str, value: &str) -> Result<(), StateError> {
    if value.as_bytes().contains(&SEP) {
        return Err(StateError::InvalidKeyPart {
            kind,
            value: value.escape_debug().to_string(),
        });
    }
    Ok(())
}

/// `part \0`: the prefix under which every key starting with `part` lives.
pub(crate) fn prefix(part: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(part.len() + 1);
    key.extend_from_slice(part.as_bytes());
    key.push(SEP);
    key
}

/// A u64 as 8 big-endian bytes (sorts numerically).
pub(crate) fn seq_bytes(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The u64 in the last 8 bytes of `key`, if it is long enough.
pub(crate) fn trailing_seq(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    let bytes: [u8; 8] = key.get(start..)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// `tasks`: `run_id \0 task_id`.
pub(crate) fn task_key(run_id: &str, task_id: &str) -> Vec<u8> {
    let mut key = prefix(run_id);
    key.extend_from_slice(task_id.as_bytes());
    key
}

/// `attempts`: `run_id \0 task_id \0 attempt(u32 BE)`.
pub(crate) fn attempt_key(run_id: &str, task_id: &str, attempt: u32) -> Vec<u8> {
    let mut key = task_key(run_id, task_id);
    key.push(SEP);
    key.extend_from_slice(&attempt.to_be_bytes());
    key
}

/// `events`: `run_id \0 seq(u64 BE)`.
pub(crate) fn event_key(run_id: &str, seq: u64) -> Vec<u8> {
    let mut key = prefix(run_id);
    key.extend_from_slice(&seq_bytes(seq));
    key
}

/// `runs_by_dag`: `dag \0 run_seq(u64 BE)`.
pub(crate) fn dag_key(dag: &str, run_seq: u64) -> Vec<u8> {
    let mut key = prefix(dag);
    key.extend_from_slice(&seq_bytes(run_seq));
    key
}

/// Task-reference indexes (cache keys, paths, digests):
/// `value \0 run_seq(u64 BE) \0 task_id`, so that a prefix scan over `value`
/// walks the referencing tasks in run creation order.
pub(crate) fn task_ref_key(value: &str, run_seq: u64, task_id: &str) -> Vec<u8> {
    let mut key = prefix(value);
    key.extend_from_slice(&seq_bytes(run_seq));
    key.push(SEP);
    key.extend_from_slice(task_id.as_bytes());
    key
}

/// The task id of a task-reference key whose `value \0` prefix is
/// `prefix_len` bytes long.
pub(crate) fn task_ref_task_id(key: &[u8], prefix_len: usize) -> Option<&str> {
    let rest = key.get(prefix_len..)?;
    let (_seq, rest) = rest.split_at_checked(8)?;
    let (&sep, task_id) = rest.split_first()?;
    if sep != SEP {
        return None;
    }
    std::str::from_utf8(task_id).ok()
}

/// A key as readable text for error messages (NUL shown as `\0`).
pub(crate) fn describe(key: &[u8]) -> String {
    key.escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_keys_sort_by_task_then_attempt_number() {
        let mut keys = vec![
            attempt_key("r", "b", 1),
            attempt_key("r", "a", 10),
            attempt_key("r", "a", 9),
            attempt_key("r", "a", 1),
            attempt_key("r", "a-b", 1),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                attempt_key("r", "a", 1),
                attempt_key("r", "a", 9),
                attempt_key("r", "a", 10),
                attempt_key("r", "a-b", 1),
                attempt_key("r", "b", 1),
            ]
        );
    }

    #[test]
    fn run_prefix_does_not_match_a_longer_run_id() {
        let key = task_key("run-10", "t");
        assert!(!key.starts_with(&prefix("run-1")));
        assert!(key.starts_with(&prefix("run-10")));
    }

    #[test]
    fn event_keys_sort_numerically_past_byte_boundaries() {
        assert!(event_key("r", 255) < event_key("r", 256));
        assert_eq!(trailing_seq(&event_key("r", 256)), Some(256));
    }

    #[test]
    fn task_ref_key_round_trips_its_task_id() {
        let key = task_ref_key("data/x.csv", 7, "clean");
        let prefix_len = prefix("data/x.csv").len();
        assert_eq!(task_ref_task_id(&key, prefix_len), Some("clean"));
        assert_eq!(task_ref_task_id(&key[..prefix_len + 3], prefix_len), None);
    }

    #[test]
    fn parts_with_nul_are_rejected() {
        assert!(check_part("run id", "a\0b").is_err());
        assert!(check_part("run id", "20240101-000000-abcd").is_ok());
    }

    #[test]
    fn trailing_seq_of_a_short_key_is_none() {
        assert_eq!(trailing_seq(b"abc"), None);
    }
}
