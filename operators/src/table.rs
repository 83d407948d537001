//! Reading and writing tables: CSV or Parquet, chosen by file extension.
//!
//! [`read_table`] gives every operator the same view of a file: string values
//! trimmed, empty strings read as null, and a CSV column typed as a number
//! (`Float64`) exactly when every non-null value in it parses as a finite
//! number. Parquet columns keep their stored types. Writes go to a temporary
//! file in the target directory and are renamed into place, so a killed
//! process never leaves a half-written artifact.
//!
//! This module deliberately does not clean, coerce against a schema or
//! validate: that is `data.clean` and `data.validate`.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::OperatorError;

pub(crate) mod atomic;
mod typing;

use atomic::write_atomically;
use typing::{trim_strings, type_columns};

/// How [`read_table_with`] parses a CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// The field delimiter of CSV files; ignored for Parquet.
    pub delimiter: u8,
    /// CSV columns kept as text even when every value looks like a number,
    /// so codes such as `007` keep their spelling.
    pub text_columns: Vec<String>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            text_columns: Vec::new(),
        }
    }
}

/// Why a table could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
    #[error("`{path}` is empty")]
    Empty { path: PathBuf },
    #[error("`{path}` has a header but no data rows")]
    NoRows { path: PathBuf },
    #[error(
        "`{path}` looks `{found}`-delimited: it parsed as one column named `{header}`; set `delimiter: \"{found}\"` if that is intended"
    )]
    Delimiter {
        path: PathBuf,
        found: String,
        header: String,
    },
    #[error("`{path}` has an unsupported extension: use `.csv` or `.parquet`")]
    Extension { path: PathBuf },
}

impl From<TableError> for OperatorError {
    fn from(error: TableError) -> Self {
        match error {
            TableError::Io {
                action,
                path,
                source,
            } => OperatorError::io(action, path, source),
            other => OperatorError::failed(error_chain(&other)),
        }
    }
}

pub use crate::error::error_chain;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Parquet,
}

fn format_of(path: &Path) -> Result<Format, TableError> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("csv") => Ok(Format::Csv),
        Some("parquet" | "pq") => Ok(Format::Parquet),
        _ => Err(TableError::Extension {
            path: path.to_path_buf(),
        }),
    }
}

/// Reads a CSV (`,`-delimited) or Parquet file by its extension.
pub fn read_table(path: &Path) -> Result<DataFrame, TableError> {
    read_table_with(path, &ReadOptions::default())
}

/// Reads a CSV or Parquet file by its extension, with CSV options.
pub fn read_table_with(path: &Path, options: &ReadOptions) -> Result<DataFrame, TableError> {
    let format = format_of(path)?;
    let bytes = std::fs::read(path).map_err(|source| TableError::Io {
        action: "read",
        path: path.into(),
        source,
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(TableError::Empty { path: path.into() });
    }
    let read_error = |source| TableError::Read {
        path: path.into(),
        source,
    };
    let frame = match format {
        Format::Csv => {
            let raw = read_csv(bytes, options.delimiter).map_err(read_error)?;
            check_delimiter(&raw, path, options.delimiter)?;
            type_columns(raw, &options.text_columns).map_err(read_error)?
        }
        Format::Parquet => {
            let raw = ParquetReader::new(Cursor::new(bytes))
                .finish()
                .map_err(read_error)?;
            trim_strings(raw).map_err(read_error)?
        }
    };
    if frame.height() == 0 {
        return Err(TableError::NoRows { path: path.into() });
    }
    Ok(frame)
}

fn read_csv(bytes: Vec<u8>, delimiter: u8) -> PolarsResult<DataFrame> {
    CsvReadOptions::default()
        .with_has_header(true)
        // Every column is read as text; `type_columns` decides what is a number.
        .with_infer_schema_length(Some(0))
        .map_parse_options(|parse| parse.with_separator(delimiter))
        .into_reader_with_file_handle(Cursor::new(bytes))
        .finish()
}

fn check_delimiter(frame: &DataFrame, path: &Path, delimiter: u8) -> Result<(), TableError> {
    let [only] = frame.columns() else {
        return Ok(());
    };
    let header = only.name().as_str();
    let found = [b';', b'\t', b',']
        .into_iter()
        .filter(|d| *d != delimiter)
        .find(|d| header.contains(char::from(*d)));
    match found {
        Some(found) => Err(TableError::Delimiter {
            path: path.into(),
            found: if found == b'\t' {
                "\\t".into()
            } else {
                char::from(found).to_string()
            },
            header: header.to_string(),
        }),
        None => Ok(()),
    }
}

/// Writes a table as Parquet or CSV by the path's extension, atomically.
pub fn write_table(frame: &mut DataFrame, path: &Path) -> Result<(), TableError> {
    let format = format_of(path)?;
    write_atomically(path, |file| {
        let written = match format {
            Format::Csv => CsvWriter::new(&mut *file)
                .include_header(true)
                .finish(frame),
            Format::Parquet => ParquetWriter::new(&mut *file).finish(frame).map(drop),
        };
        written.map_err(|source| TableError::Write {
            path: path.into(),
            source,
        })
    })
}

/// The column `data.clean` adds to its output: each row's 1-based data row
/// (header not counted) in the file it read, or the value that file already
/// carried in this column. `data.split` and `data.concat` keep it, so errors
/// further down the pipeline can name the row of the source file. Operators
/// that look at the data itself (validation, drift, features, models) leave
/// it out.
pub const SOURCE_ROW: &str = "_source_row";

/// Removes [`SOURCE_ROW`] from `frame` and returns its values, if it has one.
pub fn take_source_rows(frame: &mut DataFrame) -> Option<Vec<Option<u64>>> {
    let column = frame.drop_in_place(SOURCE_ROW).ok()?;
    let values = column.cast(&DataType::UInt64).ok()?;
    let rows = values.u64().ok()?.iter().collect();
    Some(rows)
}

/// `frame` without [`SOURCE_ROW`].
pub fn without_source_rows(mut frame: DataFrame) -> DataFrame {
    take_source_rows(&mut frame);
    frame
}

/// "row N" of a table, with the source file's row when it is known:
/// `row 12 (source row 345)`. `index` is 0-based.
pub fn describe_row(index: usize, source_rows: Option<&[Option<u64>]>) -> String {
    match source_rows.and_then(|rows| rows.get(index).copied().flatten()) {
        Some(source) => format!("row {} (source row {source})", index + 1),
        None => format!("row {}", index + 1),
    }
}

/// Writes a value as pretty JSON with a trailing newline, atomically.
pub fn write_json(value: &impl serde::Serialize, path: &Path) -> Result<(), TableError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| TableError::Io {
        action: "serialize JSON for",
        path: path.into(),
        source: source.into(),
    })?;
    text.push('\n');
    write_atomically(path, |file| {
        file.write_all(text.as_bytes())
            .map_err(|source| TableError::Io {
                action: "write",
                path: path.into(),
                source,
            })
    })
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use super::*;

    fn file(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn csv_with_crlf_is_trimmed_and_typed() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), "t.csv", b"name,age\r\n  Ann ,21\r\nBob,  \r\n");
        let frame = read_table(&path).unwrap();
        assert_eq!(frame.column("age").unwrap().dtype(), &DataType::Float64);
        assert_eq!(
            frame.column("name").unwrap().str().unwrap().get(0),
            Some("Ann")
        );
        assert_eq!(
            frame.column("age").unwrap().f64().unwrap().get(0),
            Some(21.0)
        );
        assert_eq!(frame.column("age").unwrap().null_count(), 1);
    }

    #[test]
    fn parquet_strings_are_trimmed_and_empty_ones_read_as_null() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut frame = df!("c" => [" a ", "", "b"]).unwrap();
        write_table(&mut frame, &path).unwrap();
        let values: Vec<Option<String>> = read_table(&path)
            .unwrap()
            .column("c")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(String::from))
            .collect();
        assert_eq!(values, [Some("a".to_string()), None, Some("b".to_string())]);
    }

    #[test]
    fn empty_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), "empty.csv", b"");
        let message = read_table(&path).unwrap_err().to_string();
        assert!(
            message.contains("empty.csv") && message.contains("is empty"),
            "{message}"
        );
    }

    #[test]
    fn header_only_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), "header.csv", b"a,b,c\r\n");
        let message = read_table(&path).unwrap_err().to_string();
        assert!(
            message.contains("header.csv") && message.contains("no data rows"),
            "{message}"
        );
    }

    #[test]
    fn semicolon_file_is_reported_as_wrongly_delimited() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), "semi.csv", b"a;b;c\n1;2;3\n");
        let message = read_table(&path).unwrap_err().to_string();
        assert!(
            message.contains("semi.csv") && message.contains("`;`-delimited"),
            "{message}"
        );
    }

    #[test]
    fn semicolon_file_reads_with_its_delimiter() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), "semi.csv", b"a;b\n1;x\n");
        let options = ReadOptions {
            delimiter: b';',
            ..ReadOptions::default()
        };
        let frame = read_table_with(&path, &options).unwrap();
        assert_eq!(frame.width(), 2);
    }

    #[test]
    fn corrupt_parquet_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            dir.path(),
            "broken.parquet",
            &[7, 3, 250, 1, 0, 9, 42, 17, 80, 65, 82, 49],
        );
        let error = OperatorError::from(read_table(&path).unwrap_err());
        assert!(error.to_string().contains("broken.parquet"), "{error}");
    }

    #[test]
    fn parquet_round_trip_keeps_values_and_is_byte_stable() {
        let dir = tempfile::tempdir().unwrap();
        let mut frame = df!("x" => [1.5, 2.5], "c" => ["a", "b"]).unwrap();
        let first = dir.path().join("a.parquet");
        let second = dir.path().join("b.parquet");
        write_table(&mut frame, &first).unwrap();
        write_table(&mut frame, &second).unwrap();
        assert_eq!(read_table(&first).unwrap(), frame);
        assert_eq!(
            std::fs::read(&first).unwrap(),
            std::fs::read(&second).unwrap()
        );
        let leftovers = std::fs::read_dir(dir.path()).unwrap().filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        });
        assert_eq!(leftovers.count(), 0);
    }

    #[test]
    fn unknown_extension_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), "t.xlsx", b"a\n1\n");
        assert!(matches!(
            read_table(&path),
            Err(TableError::Extension { .. })
        ));
    }
}
