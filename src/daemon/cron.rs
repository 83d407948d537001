//! Cron triggers: `schedule:` → [`super::Fire`]s.
