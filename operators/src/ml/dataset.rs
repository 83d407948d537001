//! [`Table`]: a CSV or Parquet file read eagerly with polars and turned into
//! plain typed columns. This is the one boundary where polars values are
//! copied out; everything downstream works on `Vec<f64>` / `Vec<String>`.
//!
//! It does not clean or validate data (the data stage owns that); it only
//! reports, by file, column and row, values that cannot be used at all.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::ml::MlError;

/// Values of one column; `None` is a missing value.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    Numeric(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
}

impl ColumnValues {
    pub fn len(&self) -> usize {
        match self {
            Self::Numeric(v) => v.len(),
            Self::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A table in column order, remembering where it came from for errors.
#[derive(Debug, Clone)]
pub struct Table {
    pub source: PathBuf,
    pub columns: Vec<(String, ColumnValues)>,
    pub rows: usize,
    /// Each row's row in the file `data.clean` read
    /// ([`crate::table::SOURCE_ROW`]), when the table carries them; that
    /// column is never among `columns`.
    pub source_rows: Option<Vec<Option<u64>>>,
}

impl Table {
    /// Reads `path` with the data stage's reader ([`crate::table::read_table`]):
    /// Parquet or CSV by extension, with the same typing and the same errors.
    pub fn read(path: &Path) -> Result<Self, MlError> {
        let mut frame = crate::table::read_table(path)?;
        let source_rows = crate::table::take_source_rows(&mut frame);
        let mut table = Self::from_frame(path, &frame)?;
        table.source_rows = source_rows;
        Ok(table)
    }

    /// `row N` (1-based data row of this table), with the source file's
    /// row when the table knows it.
    pub fn describe_row(&self, index: usize) -> String {
        crate::table::describe_row(index, self.source_rows.as_deref())
    }

    fn from_frame(path: &Path, frame: &DataFrame) -> Result<Self, MlError> {
        let mut columns = Vec::with_capacity(frame.width());
        for column in frame.columns() {
            let name = column.name().to_string();
            let series = column.as_materialized_series();
            let values = match series.dtype() {
                DataType::String => {
                    let text = series.str().map_err(|source| MlError::Read {
                        path: path.into(),
                        source,
                    })?;
                    ColumnValues::Text(text.iter().map(|v| v.map(str::to_string)).collect())
                }
                dtype if dtype.is_primitive_numeric() || dtype.is_bool() => {
                    let cast = series
                        .cast(&DataType::Float64)
                        .map_err(|source| MlError::Read {
                            path: path.into(),
                            source,
                        })?;
                    let floats = cast.f64().map_err(|source| MlError::Read {
                        path: path.into(),
                        source,
                    })?;
                    ColumnValues::Numeric(floats.iter().collect())
                }
                DataType::Null => ColumnValues::Numeric(vec![None; series.len()]),
                other => {
                    return Err(MlError::UnsupportedType {
                        path: path.into(),
                        column: name,
                        dtype: other.to_string(),
                    });
                }
            };
            columns.push((name, values));
        }
        let rows = frame.height();
        if rows == 0 {
            return Err(MlError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            source: path.to_path_buf(),
            columns,
            rows,
            source_rows: None,
        })
    }

    /// Builds a table from columns of equal length (records sent to a model).
    pub fn from_columns(
        source: impl Into<PathBuf>,
        columns: Vec<(String, ColumnValues)>,
    ) -> Result<Self, MlError> {
        let rows = columns.first().map_or(0, |(_, c)| c.len());
        if let Some((name, _)) = columns.iter().find(|(_, c)| c.len() != rows) {
            return Err(MlError::invalid(format!(
                "column `{name}` has a different length from the others"
            )));
        }
        Ok(Self {
            source: source.into(),
            columns,
            rows,
            source_rows: None,
        })
    }

    pub fn column(&self, name: &str) -> Result<&ColumnValues, MlError> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, values)| values)
            .ok_or_else(|| MlError::MissingColumn {
                path: self.source.clone(),
                column: name.to_string(),
            })
    }

    pub fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|(n, _)| n == name)
    }

    /// The column as numbers; text that parses as a number is accepted.
    /// Rows in errors are 1-based data rows (the header is not counted).
    pub fn numeric(&self, name: &str) -> Result<Vec<f64>, MlError> {
        let missing = |row: usize| MlError::MissingValue {
            path: self.source.clone(),
            column: name.into(),
            row: self.describe_row(row),
        };
        match self.column(name)? {
            ColumnValues::Numeric(values) => values
                .iter()
                .enumerate()
                .map(|(row, v)| v.filter(|x| !x.is_nan()).ok_or_else(|| missing(row)))
                .collect(),
            ColumnValues::Text(values) => values
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    let text = v.as_deref().ok_or_else(|| missing(row))?;
                    text.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| MlError::NotNumeric {
                            path: self.source.clone(),
                            column: name.into(),
                            row: self.describe_row(row),
                            value: text.to_string(),
                        })
                })
                .collect(),
        }
    }

    /// The column as text; numbers are rendered without a trailing `.0`.
    pub fn text(&self, name: &str) -> Result<Vec<String>, MlError> {
        Ok(self
            .text_values(name)?
            .into_iter()
            .map(Cow::into_owned)
            .collect())
    }

    /// Like [`Table::text`], borrowing text columns instead of copying them.
    pub fn text_values(&self, name: &str) -> Result<Vec<Cow<'_, str>>, MlError> {
        let missing = |row: usize| MlError::MissingValue {
            path: self.source.clone(),
            column: name.into(),
            row: self.describe_row(row),
        };
        match self.column(name)? {
            ColumnValues::Text(values) => values
                .iter()
                .enumerate()
                .map(|(row, v)| v.as_deref().map(Cow::Borrowed).ok_or_else(|| missing(row)))
                .collect(),
            ColumnValues::Numeric(values) => values
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    v.map(|x| Cow::Owned(format!("{x}")))
                        .ok_or_else(|| missing(row))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn csv_columns_keep_their_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "t.csv",
            "Gender,Age\r\nFemale,21\r\nMale,23.5\r\n",
        );
        let table = Table::read(&path).unwrap();
        assert_eq!(table.rows, 2);
        assert_eq!(table.text("Gender").unwrap(), ["Female", "Male"]);
        assert_eq!(table.numeric("Age").unwrap(), [21.0, 23.5]);
    }

    #[test]
    fn non_numeric_value_names_file_column_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "t.csv", "Age\n21\nabc\n");
        let message = Table::read(&path)
            .unwrap()
            .numeric("Age")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("t.csv") && message.contains("`Age`") && message.contains("row 2"),
            "{message}"
        );
        assert!(message.contains("`abc`"), "{message}");
    }

    #[test]
    fn errors_name_the_source_row_and_the_row_numbers_are_no_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "test.csv",
            "Age,Gender,_source_row\n21,Female,4\nabc,Male,1207\n,Male,9\n",
        );
        let table = Table::read(&path).unwrap();
        let names: Vec<&str> = table.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Age", "Gender"]);
        assert_eq!(table.source_rows, Some(vec![Some(4), Some(1207), Some(9)]));
        let message = table.numeric("Age").unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "table `{}`, column `Age`, row 2 (source row 1207): value `abc` is not a number",
                path.display()
            )
        );
        let missing = Table::read(&write(dir.path(), "m.csv", "Age,_source_row\n21,4\n,9\n"))
            .unwrap()
            .numeric("Age")
            .unwrap_err()
            .to_string();
        assert!(
            missing.ends_with("row 2 (source row 9): value is missing"),
            "{missing}"
        );
    }

    #[test]
    fn parquet_files_are_read_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut frame = df!("Gender" => ["Female", "Male"], "Age" => [21.0, 23.5]).unwrap();
        let file = std::fs::File::create(&path).unwrap();
        ParquetWriter::new(file).finish(&mut frame).unwrap();
        let table = Table::read(&path).unwrap();
        assert_eq!(table.text("Gender").unwrap(), ["Female", "Male"]);
        assert_eq!(table.numeric("Age").unwrap(), [21.0, 23.5]);
    }

    #[test]
    fn missing_column_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "t.csv", "Age\n21\n");
        let message = Table::read(&path)
            .unwrap()
            .numeric("Height")
            .unwrap_err()
            .to_string();
        assert!(message.contains("no column `Height`"), "{message}");
    }

    #[test]
    fn empty_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty.csv", "");
        let message = Table::read(&empty).unwrap_err().to_string();
        assert!(
            message.contains("empty.csv") && message.contains("is empty"),
            "{message}"
        );
        let header_only = write(dir.path(), "header.csv", "Age,Height\n");
        assert!(Table::read(&header_only).is_err());
    }

    #[test]
    fn missing_value_is_reported_with_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "t.csv", "Age,Gender\n21,Male\n,Female\n");
        let message = Table::read(&path)
            .unwrap()
            .numeric("Age")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("row 2") && message.contains("missing"),
            "{message}"
        );
    }
}
