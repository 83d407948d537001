//! The confusion-matrix heatmap PNG: one cell per (actual, predicted) pair,
//! shaded by count relative to the row's total, with the count drawn in the
//! cell. Rows are actual classes, named on the left; columns are predicted
//! classes, named above them (reading upwards); the axes carry the titles
//! `actual` and `predicted`.

use std::path::Path;

use crate::ml::MlError;
use crate::ml::canvas::{Anchor, BLACK, Canvas, GREY, WHITE};
use crate::ml::font::text_width;

const CELL: usize = 56;
/// Room for an axis title, at label scale.
const TITLE: usize = 26;
const GAP: usize = 8;
const LABEL_SCALE: usize = 2;
/// Longer class names are cut and end in `..`.
const MAX_LABEL: usize = 28;

pub(crate) fn label(name: &str) -> String {
    if name.chars().count() <= MAX_LABEL {
        name.to_string()
    } else {
        let cut: String = name.chars().take(MAX_LABEL - 2).collect();
        format!("{cut}..")
    }
}

/// Where the grid starts: (left, top).
fn origin(classes: &[String]) -> (usize, usize) {
    let longest = classes
        .iter()
        .map(|c| text_width(&label(c), LABEL_SCALE))
        .max()
        .unwrap_or(0);
    (TITLE + longest + GAP, TITLE + longest + GAP)
}

fn render(classes: &[String], confusion: &[Vec<usize>]) -> Canvas {
    let k = confusion.len();
    let (left, top) = origin(classes);
    let mut canvas = Canvas::new(left + k * CELL + GAP, top + k * CELL + GAP);
    let grid_middle_x = left + k * CELL / 2;
    let grid_middle_y = top + k * CELL / 2;
    canvas.text(
        "predicted",
        grid_middle_x,
        TITLE / 2,
        Anchor::Centre,
        LABEL_SCALE,
        BLACK,
    );
    canvas.text_up(
        "actual",
        TITLE / 2,
        grid_middle_y,
        Anchor::Centre,
        LABEL_SCALE,
        BLACK,
    );
    for (i, class) in classes.iter().enumerate() {
        let centre = i * CELL + CELL / 2;
        let name = label(class);
        canvas.text_up(
            &name,
            left + centre,
            top - GAP,
            Anchor::Start,
            LABEL_SCALE,
            GREY,
        );
        canvas.text(
            &name,
            left - GAP,
            top + centre,
            Anchor::End,
            LABEL_SCALE,
            GREY,
        );
    }
    for (actual, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (predicted, count) in row.iter().enumerate() {
            let share = *count as f64 / total;
            let shade = |full: f64, empty: f64| (empty + (full - empty) * share).round() as u8;
            let rgb = [shade(8.0, 247.0), shade(48.0, 251.0), shade(107.0, 255.0)];
            let (x, y) = (left + predicted * CELL, top + actual * CELL);
            canvas.fill(x + 1, y + 1, CELL - 2, CELL - 2, rgb);
            let count = count.to_string();
            let scale = [3, 2, 1]
                .into_iter()
                .find(|s| text_width(&count, *s) <= CELL - 8)
                .unwrap_or(1);
            let ink = if share > 0.5 { WHITE } else { BLACK };
            canvas.text(
                &count,
                x + CELL / 2,
                y + CELL / 2,
                Anchor::Centre,
                scale,
                ink,
            );
        }
    }
    canvas
}

/// Writes the heatmap of `confusion` (`matrix[actual][predicted]`, in the
/// order of `classes`) to `path`.
pub fn write_confusion_png(
    path: &Path,
    classes: &[String],
    confusion: &[Vec<usize>],
) -> Result<(), MlError> {
    if classes.len() != confusion.len() || confusion.iter().any(|row| row.len() != classes.len()) {
        return Err(MlError::invalid(
            "confusion matrix and class list differ in length",
        ));
    }
    render(classes, confusion).write_png(path)
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        vec!["Normal".to_string(), "Obese".to_string()]
    }

    #[test]
    fn heatmap_is_a_decodable_png_sized_for_its_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        write_confusion_png(&path, &classes(), &[vec![9, 1], vec![0, 10]]).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let reader = decoder.read_info().unwrap();
        let (left, _) = origin(&classes());
        assert_eq!(left, TITLE + text_width("Normal", LABEL_SCALE) + GAP);
        assert_eq!(reader.info().width as usize, left + 2 * CELL + GAP);
        let ragged = write_confusion_png(&path, &classes(), &[vec![9], vec![0, 10]]);
        assert!(ragged.is_err());
    }

    #[test]
    fn diagonal_cells_are_darker_and_names_are_drawn_beside_the_grid() {
        let canvas = render(&classes(), &[vec![9, 1], vec![0, 10]]);
        let (left, top) = origin(&classes());
        let pixel = |x: usize, y: usize| canvas.pixels[(y * canvas.width + x) * 3];
        assert!(pixel(left + 3, top + 3) < pixel(left + CELL + 3, top + 3));
        // The centre column of the "1" in the off-diagonal cell is ink (black).
        let (cx, cy) = (left + CELL + CELL / 2, top + CELL / 2);
        let column: Vec<u8> = (cy - 10..cy + 10).map(|y| pixel(cx, y)).collect();
        assert!(column.contains(&0), "{column:?}");
        // Row names end just left of the grid, column names just above it.
        let row_label: Vec<u8> = (TITLE..left).map(|x| pixel(x, top + CELL / 2)).collect();
        assert!(row_label.contains(&GREY[0]), "no row name drawn");
        let column_label: Vec<u8> = (TITLE..top).map(|y| pixel(left + CELL / 2, y)).collect();
        assert!(column_label.contains(&GREY[0]), "no column name drawn");
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(label("short"), "short");
        let long = "x".repeat(40);
        assert_eq!(label(&long).chars().count(), MAX_LABEL);
        assert!(label(&long).ends_with(".."));
    }
}
