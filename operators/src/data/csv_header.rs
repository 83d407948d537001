//! The header line of a CSV file as written, to find column names that
//! appear twice. The CSV reader renames a repeated name (`alcohol` becomes
//! `alcohol_duplicated_0`), which would let a duplicated column pass
//! unnoticed; `data.clean` reads the header itself and fails instead.
//!
//! It reads only the header: quoted names (with `""` for a quote, and
//! delimiters or line breaks inside quotes) are understood, a UTF-8 byte
//! order mark is skipped, and reading stops at the first line break outside
//! quotes or after 1 MiB.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

const MAX_HEADER_BYTES: u64 = 1 << 20;

/// The column names of the CSV file's header line, in order.
pub(super) fn header_names(path: &Path, delimiter: u8) -> std::io::Result<Vec<String>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_HEADER_BYTES)
        .read_to_end(&mut bytes)?;
    Ok(parse_header(&bytes, delimiter))
}

fn parse_header(bytes: &[u8], delimiter: u8) -> Vec<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut names = Vec::new();
    let mut name = Vec::new();
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if quoted {
            if byte == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    name.push(b'"');
                    i += 1;
                } else {
                    quoted = false;
                }
            } else {
                name.push(byte);
            }
        } else if byte == b'"' {
            quoted = true;
        } else if byte == delimiter {
            names.push(String::from_utf8_lossy(&name).into_owned());
            name.clear();
        } else if byte == b'\n' || byte == b'\r' {
            break;
        } else {
            name.push(byte);
        }
        i += 1;
    }
    if !names.is_empty() || !name.is_empty() {
        names.push(String::from_utf8_lossy(&name).into_owned());
    }
    names
}

/// Every name that appears more than once, with its 1-based positions.
pub(super) fn duplicated(names: &[String]) -> Vec<(String, Vec<usize>)> {
    let mut positions: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        positions.entry(name).or_default().push(i + 1);
    }
    let mut repeated: Vec<(String, Vec<usize>)> = positions
        .into_iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(name, at)| (name.to_string(), at))
        .collect();
    repeated.sort_by_key(|(_, at)| at[0]);
    repeated
}

/// "column `a` is at positions 1 and 3", for a message.
pub(super) fn describe(name: &str, positions: &[usize]) -> String {
    let mut listed: Vec<String> = positions.iter().map(ToString::to_string).collect();
    let last = listed.pop().unwrap_or_default();
    let listed = if listed.is_empty() {
        last
    } else {
        format!("{} and {last}", listed.join(", "))
    };
    format!("column `{name}` appears at positions {listed} of the header")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        parse_header(text.as_bytes(), b',')
    }

    #[test]
    fn quoted_names_and_byte_order_marks_are_read_as_written() {
        assert_eq!(
            names("\u{feff}a,\"b,c\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n1,2,3,4\n"),
            ["a", "b,c", "say \"hi\"", "two\nlines"]
        );
        assert_eq!(names("a;b\n"), ["a;b"]);
        assert_eq!(parse_header(b"a;b\n", b';'), ["a", "b"]);
        assert!(names("").is_empty());
        assert_eq!(names("a,\n"), ["a", ""]);
    }

    #[test]
    fn repeated_names_are_found_with_every_position() {
        let found = duplicated(&names("CALC,Age,alcohol,x,alcohol,Age,alcohol\n"));
        assert_eq!(
            found,
            [
                ("Age".to_string(), vec![2, 6]),
                ("alcohol".to_string(), vec![3, 5, 7])
            ]
        );
        assert_eq!(
            describe("Age", &[2, 6]),
            "column `Age` appears at positions 2 and 6 of the header"
        );
        assert_eq!(
            describe("alcohol", &[3, 5, 7]),
            "column `alcohol` appears at positions 3, 5 and 7 of the header"
        );
        assert!(duplicated(&names("a,b,c\n")).is_empty());
    }
}
