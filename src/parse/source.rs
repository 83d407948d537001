//! [`SourceFile`] and [`Span`]: the text a diagnostic points into.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// A DAG file's text, kept for diagnostics and the spec hash.
#[derive(Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// As the user named it (relative paths stay relative), for messages.
    pub path: PathBuf,
    pub text: String,
    /// Byte offset of the start of every line, built on the first lookup so
    /// that each diagnostic's position costs a binary search, not a scan.
    line_starts: OnceLock<Vec<usize>>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            path: path.into(),
            text: text.into(),
            line_starts: OnceLock::new(),
        })
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let starts = self.line_starts();
        // The last line start at or before `offset`.
        let index = starts.partition_point(|&start| start <= offset).max(1) - 1;
        let line_start = starts.get(index).copied().unwrap_or(0);
        let column = self.text[line_start..offset].chars().count() + 1;
        (index + 1, column)
    }

    /// The text of a 1-based line, without its line ending.
    pub fn line_text(&self, line: usize) -> &str {
        let starts = self.line_starts();
        let Some(&start) = starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let end = starts.get(line).map_or(self.text.len(), |&next| next);
        self.text[start..end]
            .trim_end_matches('\n')
            .trim_end_matches('\r')
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A byte range in a [`SourceFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

impl Span {
    pub fn new(offset: usize, len: usize) -> Self {
        Self { offset, len }
    }

    /// A sub-span `start..start+len` bytes into this one.
    pub fn slice(self, start: usize, len: usize) -> Self {
        Self {
            offset: self.offset + start,
            len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_and_handles_crlf() {
        let file = SourceFile::new("x.yaml", "a: 1\r\nbb: 2\n");
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(6), (2, 1));
        assert_eq!(file.line_col(10), (2, 5));
        assert_eq!(file.line_text(1), "a: 1");
        assert_eq!(file.line_text(2), "bb: 2");
        assert_eq!(file.line_text(3), "");
        assert_eq!(file.line_text(9), "");
    }

    #[test]
    fn columns_count_characters_and_offsets_past_the_end_stay_on_the_last_line() {
        let file = SourceFile::new("x.yaml", "é: 1\nab");
        assert_eq!(file.line_col(3), (1, 3));
        assert_eq!(file.line_col(1), (1, 1), "inside `é`: its first byte");
        assert_eq!(file.line_col(100), (2, 3));
    }
}
