//! [`Diagnostic`]: a problem in text a user wrote, rendered like a compiler
//! error with a stable code, `--> file:line:col`, an excerpt and a help line,
//! and — when two places are involved — a `:::` excerpt of the other.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use super::{SourceFile, Span};

#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Stable, documented code such as `dag::unknown_dependency`.
    pub code: &'static str,
    /// Lowercase, no trailing period, identifiers in backticks.
    pub message: String,
    pub location: Option<(Arc<SourceFile>, Span)>,
    /// Short text under the caret line.
    pub label: Option<String>,
    /// Hints, most specific first (`did you mean ...?` before a list of choices).
    pub help: Vec<String>,
    /// Other places the problem involves, each with its own label.
    pub related: Vec<Related>,
}

/// A second place a [`Diagnostic`] points at.
#[derive(Debug, Clone)]
pub struct Related {
    pub file: Arc<SourceFile>,
    pub span: Span,
    pub label: String,
}

impl Diagnostic {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            location: None,
            label: None,
            help: Vec::new(),
            related: Vec::new(),
        }
    }

    /// Adds another place the problem involves.
    pub fn also_at(mut self, file: &Arc<SourceFile>, span: Span, label: impl Into<String>) -> Self {
        self.related.push(Related {
            file: Arc::clone(file),
            span,
            label: label.into(),
        });
        self
    }

    pub fn at(mut self, file: &Arc<SourceFile>, span: Span) -> Self {
        self.location = Some((Arc::clone(file), span));
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        self.help.extend(help);
        self
    }

    /// `(path, line, column)` of the primary span.
    pub fn position(&self) -> Option<(String, usize, usize)> {
        let (file, span) = self.location.as_ref()?;
        let (line, col) = file.line_col(span.offset);
        Some((file.path.display().to_string(), line, col))
    }

    /// Renders the diagnostic as a block of text; `color` adds ANSI styles.
    pub fn render(&self, color: bool) -> String {
        let (red, blue, bold, reset) = if color {
            ("\x1b[1;31m", "\x1b[1;34m", "\x1b[1m", "\x1b[0m")
        } else {
            ("", "", "", "")
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{red}error[{}]{reset}{bold}: {}{reset}",
            self.code, self.message
        );
        let styles = (red, blue, reset);
        if let Some((file, span)) = &self.location {
            write_excerpt(&mut out, "-->", file, *span, self.label.as_deref(), styles);
        }
        for related in &self.related {
            write_excerpt(
                &mut out,
                ":::",
                &related.file,
                related.span,
                Some(&related.label),
                styles,
            );
        }
        for help in &self.help {
            let _ = writeln!(out, "  {blue}={reset} {bold}help{reset}: {help}");
        }
        out
    }

    pub fn to_json(&self) -> DiagnosticJson {
        let position = self.position();
        DiagnosticJson {
            code: self.code,
            message: self.message.clone(),
            file: position.as_ref().map(|p| p.0.clone()),
            line: position.as_ref().map(|p| p.1),
            column: position.as_ref().map(|p| p.2),
            help: self.help.clone(),
            related: self
                .related
                .iter()
                .map(|r| {
                    let (line, column) = r.file.line_col(r.span.offset);
                    RelatedJson {
                        file: r.file.path.display().to_string(),
                        line,
                        column,
                        label: r.label.clone(),
                    }
                })
                .collect(),
        }
    }
}

/// `  --> file:line:col`, the line (cut around the span when long), and
/// carets under the span with a label.
fn write_excerpt(
    out: &mut String,
    arrow: &str,
    file: &SourceFile,
    span: Span,
    label: Option<&str>,
    (red, blue, reset): (&str, &str, &str),
) {
    let (line, col) = file.line_col(span.offset);
    let gutter = line.to_string().len();
    let pad = " ".repeat(gutter);
    let (text, shown_col) = excerpt(file.line_text(line), col);
    let _ = writeln!(
        out,
        "{pad}{blue}{arrow}{reset} {}:{line}:{col}",
        file.path.display()
    );
    let _ = writeln!(out, "{pad} {blue}|{reset}");
    let _ = writeln!(out, "{blue}{line}{reset} {blue}|{reset} {text}");
    let carets = "^".repeat(caret_width(&text, shown_col, span.len));
    let label = label.map(|l| format!(" {l}")).unwrap_or_default();
    let indent = " ".repeat(shown_col.saturating_sub(1));
    let _ = writeln!(
        out,
        "{pad} {blue}|{reset} {indent}{red}{carets}{label}{reset}"
    );
}

/// The `--json` shape of a diagnostic.
#[derive(Debug, Serialize)]
pub struct DiagnosticJson {
    pub code: &'static str,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub help: Vec<String>,
    /// Other places involved, when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<RelatedJson>,
}

/// The `--json` shape of a [`Related`] place.
#[derive(Debug, Serialize)]
pub struct RelatedJson {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub label: String,
}

/// Carets cover the span but never run past the end of the line.
fn caret_width(line: &str, col: usize, len: usize) -> usize {
    let remaining = line.chars().count().saturating_sub(col.saturating_sub(1));
    len.min(remaining).max(1)
}

/// Most characters of a source line an excerpt shows, so that a diagnostic
/// on a very long line costs the same as one on a short line.
const EXCERPT_CHARS: usize = 120;

/// The part of `line` around 1-based column `col` that an excerpt shows,
/// with `…` where it was cut, and the column within it.
fn excerpt(line: &str, col: usize) -> (String, usize) {
    let chars = line.chars().count();
    if chars <= EXCERPT_CHARS {
        return (line.to_string(), col);
    }
    let context = EXCERPT_CHARS / 3;
    let start = col.saturating_sub(1).saturating_sub(context);
    let shown: String = line.chars().skip(start).take(EXCERPT_CHARS).collect();
    let mut text = String::new();
    let mut col = col - start;
    if start > 0 {
        text.push('…');
        col += 1;
    }
    text.push_str(&shown);
    if start + EXCERPT_CHARS < chars {
        text.push('…');
    }
    (text, col)
}

/// Most diagnostics reported for one file; the rest are counted in one
/// `dag::too_many_problems` diagnostic, so a hostile file cannot turn into
/// gigabytes of output.
pub const MAX_DIAGNOSTICS_PER_FILE: usize = 50;

/// Keeps the first [`MAX_DIAGNOSTICS_PER_FILE`] diagnostics of each file (in
/// the order given) and adds, per file that had more, one saying how many
/// were left out.
pub fn cap_per_file(diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    cap_at(diagnostics, MAX_DIAGNOSTICS_PER_FILE)
}

fn cap_at(diagnostics: Vec<Diagnostic>, limit: usize) -> Vec<Diagnostic> {
    use std::collections::BTreeMap;
    let mut shown: BTreeMap<Option<std::path::PathBuf>, usize> = BTreeMap::new();
    let mut left_out: BTreeMap<Option<std::path::PathBuf>, (usize, Option<Arc<SourceFile>>)> =
        BTreeMap::new();
    let mut kept = Vec::with_capacity(diagnostics.len().min(limit * 2));
    for diagnostic in diagnostics {
        let file = diagnostic
            .location
            .as_ref()
            .map(|(file, _)| Arc::clone(file));
        let key = file.as_ref().map(|file| file.path.clone());
        let count = shown.entry(key.clone()).or_default();
        if *count < limit {
            *count += 1;
            kept.push(diagnostic);
        } else {
            left_out.entry(key).or_insert((0, file)).0 += 1;
        }
    }
    for (path, (count, file)) in left_out {
        let name = path.map_or_else(|| "the input".to_string(), |p| format!("`{}`", p.display()));
        let mut summary = Diagnostic::new(
            "dag::too_many_problems",
            format!(
                "and {count} more problem{} in {name}",
                if count == 1 { "" } else { "s" }
            ),
        )
        .help(format!(
            "only the first {limit} problems of a file are shown; fix those and validate again"
        ));
        if let Some(file) = file {
            summary = summary.at(&file, Span::new(0, 1));
        }
        kept.push(summary);
    }
    kept
}

/// Picks the candidate closest to `name` by edit distance, if close enough
/// to be a plausible typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let length = name.chars().count();
    let limit = (length / 3).max(1) + 1;
    candidates
        .into_iter()
        // Lengths further apart than the limit cannot be within it: skip the
        // quadratic distance for them (and for names too long to be typos).
        .filter(|candidate| {
            length <= MAX_TYPO_CHARS
                && candidate.len() <= MAX_TYPO_CHARS * 4
                && candidate.chars().count().abs_diff(length) <= limit
        })
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, candidate)| (*distance, *candidate))
        .map(|(_, candidate)| candidate)
}

/// The diagnostics' messages on one line, `; ` between them: how a run
/// reports problems found after the load (expanding mapped tasks).
pub fn joined_messages(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `did you mean `x`?` when a near name exists.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// Names longer than this get no `did you mean` (it would cost more than
/// it helps).
const MAX_TYPO_CHARS: usize = 256;

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_code_location_excerpt_and_help() {
        let file = SourceFile::new("d.yaml", "tasks:\n  b:\n    needs: [clen]\n");
        let text = Diagnostic::new(
            "dag::unknown_dependency",
            "task `b` needs unknown task `clen`",
        )
        .at(&file, Span::new(24, 4))
        .label("not a task")
        .help("did you mean `clean`?")
        .render(false);
        assert_eq!(
            text,
            "error[dag::unknown_dependency]: task `b` needs unknown task `clen`\n \
             --> d.yaml:3:13\n  |\n3 |     needs: [clen]\n  |             ^^^^ not a task\n  \
             = help: did you mean `clean`?\n"
        );
    }

    #[test]
    fn a_related_place_is_rendered_after_the_primary_one() {
        let a = SourceFile::new("a.yaml", "outputs: { data: x.csv }\n");
        let b = SourceFile::new("b.yaml", "x\n  data: x.csv\n");
        let text = Diagnostic::new("dag::output_conflict_across_dags", "two producers")
            .at(&a, Span::new(17, 5))
            .label("written here")
            .also_at(&b, Span::new(10, 5), "and here")
            .render(false);
        assert_eq!(
            text,
            "error[dag::output_conflict_across_dags]: two producers\n \
             --> a.yaml:1:18\n  |\n1 | outputs: { data: x.csv }\n  |                  ^^^^^ written here\n \
             ::: b.yaml:2:9\n  |\n2 |   data: x.csv\n  |         ^^^^^ and here\n"
        );
    }

    #[test]
    fn excerpts_of_long_lines_show_the_span_and_mark_the_cuts() {
        let line = format!("{}TARGET{}", "a".repeat(5000), "b".repeat(5000));
        let (text, col) = excerpt(&line, 5001);
        assert!(text.chars().count() <= EXCERPT_CHARS + 2, "{}", text.len());
        assert!(text.starts_with('…') && text.ends_with('…'), "{text}");
        let at: String = text.chars().skip(col - 1).take(6).collect();
        assert_eq!(at, "TARGET");
        assert_eq!(excerpt("short", 2), ("short".to_string(), 2));
    }

    #[test]
    fn diagnostics_are_capped_per_file_with_a_count_of_the_rest() {
        let a = SourceFile::new("a.yaml", "x");
        let b = SourceFile::new("b.yaml", "y");
        let mut all = Vec::new();
        for _ in 0..7 {
            all.push(Diagnostic::new("dag::x", "in a").at(&a, Span::new(0, 1)));
        }
        all.push(Diagnostic::new("dag::x", "in b").at(&b, Span::new(0, 1)));
        let capped = cap_at(all, 3);
        let codes: Vec<(&str, String)> =
            capped.iter().map(|d| (d.code, d.message.clone())).collect();
        assert_eq!(codes.len(), 5, "{codes:?}");
        assert_eq!(
            codes[4],
            (
                "dag::too_many_problems",
                "and 4 more problems in `a.yaml`".into()
            )
        );
        assert_eq!(codes.iter().filter(|(_, m)| m == "in b").count(), 1);
    }

    #[test]
    fn closest_name_suggests_typo_fix_and_rejects_strangers() {
        assert_eq!(closest("clen", ["clean", "split"]), Some("clean"));
        assert_eq!(closest("zzzzzz", ["clean", "split"]), None);
    }
}
