//! [`Glob`]: the pattern language of `watch:`, matched against paths
//! relative to the project root.
//!
//! Deliberately small: `*` and `?` within one path component, classes
//! (`[abc]`, `[a-z]`, `[!abc]`), and `**` as a whole component for any
//! number of directories. Wildcards never match a leading `.`, so editor
//! lock and swap files (`.#train.csv`, `.train.csv.swp`) and hidden
//! directories match only when named literally. There are no escapes and no
//! braces; `/` separates components on every platform.

use std::fs;
use std::path::{Component as PathComponent, Path, PathBuf};

/// A checked `watch:` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Component {
    /// `**`: zero or more directories.
    AnyDirectories,
    /// One path component; literal when it holds only [`Token::Char`]s.
    Name(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`
    AnyChar,
    /// `*`
    AnyRun,
    /// `[...]`: inclusive ranges; a single character is a range of one.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GlobError {
    #[error("watch pattern is empty")]
    Empty,
    #[error("watch pattern `{glob}` is absolute; write it relative to the project root")]
    Absolute { glob: String },
    #[error("watch pattern `{glob}` leaves the project root with `..`")]
    ParentDirectory { glob: String },
    #[error("watch pattern `{glob}` has a `[` without its closing `]`")]
    UnclosedClass { glob: String },
}

impl Glob {
    pub fn parse(text: &str) -> Result<Self, GlobError> {
        if text.starts_with('/') || text.starts_with('\\') || Path::new(text).has_root() {
            return Err(GlobError::Absolute { glob: text.into() });
        }
        let mut components = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(GlobError::ParentDirectory { glob: text.into() }),
                "**" => components.push(Component::AnyDirectories),
                _ => components
                    .push(Component::Name(parse_name(part).ok_or_else(|| {
                        GlobError::UnclosedClass { glob: text.into() }
                    })?)),
            }
        }
        if components.is_empty() {
            return Err(GlobError::Empty);
        }
        Ok(Self {
            text: text.into(),
            components,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `path` (relative to the project root) matches.
    pub fn matches(&self, path: &Path) -> bool {
        names(path).is_some_and(|names| match_components(&self.components, &names))
    }

    /// Whether some path strictly below the directory `path` could match:
    /// decides which directories to descend into and which directory
    /// events matter.
    pub fn could_contain(&self, path: &Path) -> bool {
        names(path).is_some_and(|names| match_prefix(&self.components, &names))
    }

    /// The deepest directory (relative) that holds every match: the leading
    /// literal components, never including the last one.
    pub fn base(&self) -> PathBuf {
        let literal = self.literal_prefix_len();
        self.text_components().take(literal).collect()
    }

    /// Whether matches can lie more than one level below [`Self::base`], so
    /// the base must be watched recursively.
    pub fn is_recursive(&self) -> bool {
        let rest = &self.components[self.literal_prefix_len()..];
        rest.len() > 1 || rest.contains(&Component::AnyDirectories)
    }

    fn literal_prefix_len(&self) -> usize {
        let last = self.components.len().saturating_sub(1);
        self.components[..last]
            .iter()
            .take_while(|component| match component {
                Component::Name(tokens) => tokens.iter().all(|t| matches!(t, Token::Char(_))),
                Component::AnyDirectories => false,
            })
            .count()
    }

    fn text_components(&self) -> impl Iterator<Item = &str> {
        self.text
            .split('/')
            .filter(|part| !part.is_empty() && *part != ".")
    }
}

impl std::fmt::Display for Glob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The components of a relative path as text; `None` for anything a
/// pattern cannot name (absolute, `..`, not UTF-8).
fn names(path: &Path) -> Option<Vec<&str>> {
    path.components()
        .filter(|component| !matches!(component, PathComponent::CurDir))
        .map(|component| match component {
            PathComponent::Normal(name) => name.to_str(),
            _ => None,
        })
        .collect()
}

/// `None` when a class is not closed.
fn parse_name(part: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = part.chars().peekable();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => {
                if tokens.last() == Some(&Token::AnyRun) {
                    continue;
                }
                Token::AnyRun
            }
            '?' => Token::AnyChar,
            '[' => {
                let negated = chars.next_if(|c| *c == '!' || *c == '^').is_some();
                let mut ranges = Vec::new();
                // A `]` first is a member, not the end: `[]a]`.
                let mut first = true;
                loop {
                    let c = chars.next()?;
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    let high = match chars.peek() {
                        Some('-') => {
                            chars.next();
                            match chars.next_if(|c| *c != ']') {
                                Some(high) => high,
                                None => {
                                    ranges.push(('-', '-'));
                                    c
                                }
                            }
                        }
                        _ => c,
                    };
                    ranges.push((c, high));
                }
                Token::Class { negated, ranges }
            }
            c => Token::Char(c),
        });
    }
    Some(tokens)
}

fn match_components(pattern: &[Component], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((Component::AnyDirectories, rest)) => {
            for skip in 0..=path.len() {
                if match_components(rest, &path[skip..]) {
                    return true;
                }
                if path.get(skip).is_some_and(|name| name.starts_with('.')) {
                    return false;
                }
            }
            false
        }
        Some((Component::Name(tokens), rest)) => path
            .split_first()
            .is_some_and(|(name, tail)| match_name(tokens, name) && match_components(rest, tail)),
    }
}

fn match_prefix(pattern: &[Component], path: &[&str]) -> bool {
    let Some((name, tail)) = path.split_first() else {
        return !pattern.is_empty();
    };
    match pattern.split_first() {
        None => false,
        Some((Component::AnyDirectories, rest)) => {
            (!name.starts_with('.') && match_prefix(pattern, tail)) || match_prefix(rest, path)
        }
        Some((Component::Name(tokens), rest)) => {
            match_name(tokens, name) && match_prefix(rest, tail)
        }
    }
}

/// Wildcard matching with backtracking to the last `*` only, which is
/// enough because every other token consumes exactly one character.
fn match_name(tokens: &[Token], name: &str) -> bool {
    if name.starts_with('.') && tokens.first() != Some(&Token::Char('.')) {
        return false;
    }
    let name: Vec<char> = name.chars().collect();
    let (mut t, mut n) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::AnyRun) => {
                last_star = Some((t + 1, n));
                t += 1;
                continue;
            }
            Some(token) if token.accepts(name[n]) => {
                t += 1;
                n += 1;
                continue;
            }
            _ => {}
        }
        match last_star {
            Some((after, from)) => {
                t = after;
                n = from + 1;
                last_star = Some((after, from + 1));
            }
            None => return false,
        }
    }
    tokens[t..].iter().all(|token| *token == Token::AnyRun)
}

impl Token {
    fn accepts(&self, c: char) -> bool {
        match self {
            Token::Char(expected) => *expected == c,
            Token::AnyChar => true,
            Token::AnyRun => false,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|(low, high)| (*low..=*high).contains(&c)) != *negated
            }
        }
    }
}

/// The engine's own state directory: its logs and caches change on every
/// run and must never trigger one.
const STATE_DIRECTORY: &str = ".dag";

/// Whether a path relative to the root is one no trigger may react to.
pub fn is_ignored(relative: &Path) -> bool {
    relative.components().next() == Some(PathComponent::Normal(STATE_DIRECTORY.as_ref()))
}

/// Files at or below `directory` (relative to `root`) that match one of
/// `globs`, relative to `root`, sorted. Descends only into directories a
/// glob could match below, and never through symbolic links to
/// directories (no cycles); unreadable directories are skipped.
pub fn matching_under(root: &Path, directory: &Path, globs: &[Glob]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    visit(root, directory, globs, &mut found);
    found.sort();
    found
}

fn visit(root: &Path, directory: &Path, globs: &[Glob], found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(root.join(directory)) else {
        return;
    };
    for entry in entries.flatten() {
        let relative = directory.join(entry.file_name());
        if is_ignored(&relative) {
            continue;
        }
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            if globs.iter().any(|glob| glob.could_contain(&relative)) {
                visit(root, &relative, globs, found);
            }
        } else if globs.iter().any(|glob| glob.matches(&relative)) {
            found.push(relative);
        }
    }
}

/// The files under `root` that `pattern` matches now, relative to `root`
/// and sorted (files under `.dag/` never match).
pub fn matching_files(root: &Path, pattern: &str) -> Result<Vec<PathBuf>, GlobError> {
    Ok(matching_under(
        root,
        Path::new(""),
        &[Glob::parse(pattern)?],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(text: &str) -> Result<Glob, GlobError> {
        Glob::parse(text)
    }

    #[test]
    fn star_matches_within_one_component_only() -> Result<(), GlobError> {
        let g = glob("data/incoming/*.csv")?;
        assert!(g.matches(Path::new("data/incoming/a.csv")));
        assert!(g.matches(Path::new("./data/incoming/b.csv")));
        assert!(!g.matches(Path::new("data/incoming/sub/a.csv")));
        assert!(!g.matches(Path::new("data/incoming/a.csv.tmp")));
        assert!(!g.matches(Path::new("data/incoming/notes.txt")));
        assert!(!g.matches(Path::new("data/a.csv")));
        assert!(glob("*a*b*")?.matches(Path::new("xaybz")));
        assert!(!glob("*a*b")?.matches(Path::new("xaybz")));
        Ok(())
    }

    #[test]
    fn question_mark_matches_exactly_one_character() -> Result<(), GlobError> {
        let g = glob("part-?.csv")?;
        assert!(g.matches(Path::new("part-1.csv")));
        assert!(!g.matches(Path::new("part-.csv")));
        assert!(!g.matches(Path::new("part-12.csv")));
        Ok(())
    }

    #[test]
    fn double_star_crosses_zero_or_more_directories() -> Result<(), GlobError> {
        let g = glob("data/**/*.csv")?;
        assert!(g.matches(Path::new("data/a.csv")));
        assert!(g.matches(Path::new("data/x/a.csv")));
        assert!(g.matches(Path::new("data/x/y/z/a.csv")));
        assert!(!g.matches(Path::new("other/a.csv")));
        assert!(!g.matches(Path::new("data/x/a.txt")));
        assert!(glob("**/b/*.csv")?.matches(Path::new("a/b/c.csv")));
        assert!(glob("**/b/*.csv")?.matches(Path::new("b/c.csv")));
        Ok(())
    }

    #[test]
    fn classes_take_members_ranges_and_negation() -> Result<(), GlobError> {
        let g = glob("run[0-9][ab].csv")?;
        assert!(g.matches(Path::new("run7a.csv")));
        assert!(!g.matches(Path::new("run7c.csv")));
        assert!(!g.matches(Path::new("runxa.csv")));
        let negated = glob("[!x]*.csv")?;
        assert!(negated.matches(Path::new("a.csv")));
        assert!(!negated.matches(Path::new("x.csv")));
        assert!(glob("[]]")?.matches(Path::new("]")));
        let dash = glob("[a-]")?;
        assert!(dash.matches(Path::new("-")));
        assert!(dash.matches(Path::new("a")));
        assert!(!dash.matches(Path::new("b")));
        Ok(())
    }

    #[test]
    fn wildcards_do_not_match_hidden_names() -> Result<(), GlobError> {
        assert!(!glob("data/*.csv")?.matches(Path::new("data/.#a.csv")));
        assert!(!glob("data/?a.csv")?.matches(Path::new("data/.a.csv")));
        assert!(!glob("**/*.csv")?.matches(Path::new(".dag/cache/a.csv")));
        assert!(!glob("**/*.csv")?.matches(Path::new("data/.git/a.csv")));
        assert!(glob("data/.*.csv")?.matches(Path::new("data/.a.csv")));
        assert!(glob(".config/*.yaml")?.matches(Path::new(".config/a.yaml")));
        Ok(())
    }

    #[test]
    fn literal_path_matches_only_itself() -> Result<(), GlobError> {
        let g = glob("./data/raw/ObesityDataSet.csv")?;
        assert!(g.matches(Path::new("data/raw/ObesityDataSet.csv")));
        assert!(!g.matches(Path::new("data/raw/ObesityDataSet.csv.bak")));
        assert_eq!(g.base(), PathBuf::from("data/raw"));
        assert!(!g.is_recursive());
        Ok(())
    }

    #[test]
    fn base_is_the_longest_literal_directory_prefix() -> Result<(), GlobError> {
        let cases = [
            ("data/incoming/*.csv", "data/incoming", false),
            ("data/*/x.csv", "data", true),
            ("data/**/*.csv", "data", true),
            ("data/**", "data", true),
            ("**/*.csv", "", true),
            ("*.csv", "", false),
        ];
        for (text, base, recursive) in cases {
            let g = glob(text)?;
            assert_eq!(g.base(), PathBuf::from(base), "{text}");
            assert_eq!(g.is_recursive(), recursive, "{text}");
        }
        Ok(())
    }

    #[test]
    fn could_contain_follows_the_pattern_prefix() -> Result<(), GlobError> {
        let g = glob("data/incoming/*.csv")?;
        assert!(g.could_contain(Path::new("")));
        assert!(g.could_contain(Path::new("data")));
        assert!(g.could_contain(Path::new("data/incoming")));
        assert!(!g.could_contain(Path::new("data/raw")));
        assert!(!g.could_contain(Path::new("data/incoming/sub")));
        let deep = glob("data/**/*.csv")?;
        assert!(deep.could_contain(Path::new("data/a/b/c")));
        assert!(!deep.could_contain(Path::new("data/.cache")));
        assert!(!deep.could_contain(Path::new("models")));
        Ok(())
    }

    #[test]
    fn rejects_patterns_that_cannot_name_a_project_file() {
        assert_eq!(glob(""), Err(GlobError::Empty));
        assert_eq!(glob("./"), Err(GlobError::Empty));
        assert!(matches!(
            glob("/etc/*.conf"),
            Err(GlobError::Absolute { .. })
        ));
        assert!(matches!(
            glob("../other/*.csv"),
            Err(GlobError::ParentDirectory { .. })
        ));
        assert!(matches!(
            glob("data/[ab.csv"),
            Err(GlobError::UnclosedClass { .. })
        ));
    }
}
