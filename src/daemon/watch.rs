//! File-watch triggers: `watch:` globs → [`super::Fire`]s.
