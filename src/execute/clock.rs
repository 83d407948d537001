//! Wall-clock helpers: run ids and timestamps.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// RFC 3339 in UTC with second precision.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// `YYYYMMDD-HHMMSS-xxxx`: sortable by time, unique within a process and
/// very likely across processes (the suffix mixes milliseconds, pid and a
/// counter through blake3).
pub fn new_run_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let ms = now_ms();
    let time = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    let mut hasher = blake3::Hasher::new();
    hasher.update(&ms.to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let suffix = hasher.finalize().to_hex();
    format!("{}-{}", time.format("%Y%m%d-%H%M%S"), &suffix[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_unique_and_shaped() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 20, "{a}");
        assert_eq!(&a[8..9], "-");
    }
}
