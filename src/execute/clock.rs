//! Wall-clock helpers: run ids and timestamps.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
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

/// `YYYYMMDD-HHMMSS-xxxx`: sortable by time and unique within a process —
/// the only uniqueness that matters, since one process at a time owns a
/// store. The suffix mixes milliseconds, pid and a counter through blake3;
/// four hex digits collide by chance when hundreds of runs start in one
/// second (a daemon under load), so suffixes already handed out in the
/// current second are remembered and a colliding one is drawn again.
pub fn new_run_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    static ISSUED: Mutex<(String, BTreeSet<String>)> = Mutex::new((String::new(), BTreeSet::new()));
    let ms = now_ms();
    let time = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    let second = time.format("%Y%m%d-%H%M%S").to_string();
    let mut issued = ISSUED.lock().unwrap_or_else(PoisonError::into_inner);
    if issued.0 != second {
        *issued = (second.clone(), BTreeSet::new());
    }
    loop {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&ms.to_le_bytes());
        hasher.update(&std::process::id().to_le_bytes());
        hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let suffix = hasher.finalize().to_hex()[..4].to_string();
        // 65,536 suffixes per second: beyond that, ids would need a new shape.
        if issued.1.len() >= 65_536 || issued.1.insert(suffix.clone()) {
            return format!("{second}-{suffix}");
        }
    }
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

    #[test]
    fn thousands_of_ids_in_one_second_do_not_collide() {
        let ids: BTreeSet<String> = (0..5_000).map(|_| new_run_id()).collect();
        assert_eq!(ids.len(), 5_000);
    }
}
