//! [`did_you_mean`]: the closest known name to a misspelt one, for errors
//! about names a DAG file gives operators (metrics, classes, columns).

/// The candidate closest to `name` by edit distance, if close enough to be
/// a plausible typo (at most a third of the name's length, plus one).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = name.chars().count() / 3 + 1;
    candidates
        .into_iter()
        .map(|candidate| (distance(name, candidate), candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, candidate)| (*d, *candidate))
        .map(|(_, candidate)| candidate)
}

/// `did you mean `x`?` when a close name exists.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// Levenshtein distance over characters, one row at a time.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j + 1] + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_its_name_and_a_stranger_finds_none() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(
            closest("f1_macr", ["accuracy", "f1_macro"]),
            Some("f1_macro")
        );
        assert_eq!(
            did_you_mean("recal", ["recall", "precision"]).as_deref(),
            Some("did you mean `recall`?")
        );
        assert_eq!(closest("roc", ["accuracy", "f1_weighted"]), None);
    }
}
