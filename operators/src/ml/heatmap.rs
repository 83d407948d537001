//! The confusion-matrix heatmap PNG: one cell per (actual, predicted) pair,
//! shaded by count relative to the row's total, with the count drawn in the
//! cell and class numbers (1-based, in the metrics JSON's class order) along
//! both axes. Rows are actual classes, columns predicted ones.

use std::path::Path;

use crate::ml::MlError;
use crate::ml::atomic::write_atomic;
use crate::ml::digits::{GLYPH_HEIGHT, GLYPH_WIDTH, ink, text_width};

const CELL: usize = 56;
const MARGIN: usize = 36;

struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![255; width * height * 3],
        }
    }

    fn fill(&mut self, x0: usize, y0: usize, w: usize, h: usize, rgb: [u8; 3]) {
        for y in y0..(y0 + h).min(self.height) {
            for x in x0..(x0 + w).min(self.width) {
                let at = (y * self.width + x) * 3;
                self.pixels[at..at + 3].copy_from_slice(&rgb);
            }
        }
    }

    /// Draws `text` centred on (`cx`, `cy`).
    fn text(&mut self, text: &str, cx: usize, cy: usize, scale: usize, rgb: [u8; 3]) {
        let x0 = cx.saturating_sub(text_width(text, scale) / 2);
        let y0 = cy.saturating_sub(GLYPH_HEIGHT * scale / 2);
        for (i, digit) in text.chars().enumerate() {
            let gx = x0 + i * (GLYPH_WIDTH + 1) * scale;
            for y in 0..GLYPH_HEIGHT {
                for x in 0..GLYPH_WIDTH {
                    if ink(digit, x, y) {
                        self.fill(gx + x * scale, y0 + y * scale, scale, scale, rgb);
                    }
                }
            }
        }
    }
}

/// Renders the heatmap as an RGB image: (width, height, pixels).
fn render(confusion: &[Vec<usize>]) -> Canvas {
    let k = confusion.len();
    let side = MARGIN + k * CELL + 4;
    let mut canvas = Canvas::new(side, side);
    let grey = [90, 90, 90];
    for i in 0..k {
        let centre = MARGIN + i * CELL + CELL / 2;
        canvas.text(&(i + 1).to_string(), centre, MARGIN / 2, 3, grey);
        canvas.text(&(i + 1).to_string(), MARGIN / 2, centre, 3, grey);
    }
    for (actual, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (predicted, count) in row.iter().enumerate() {
            let share = *count as f64 / total;
            let shade = |full: f64, empty: f64| (empty + (full - empty) * share).round() as u8;
            let rgb = [shade(8.0, 247.0), shade(48.0, 251.0), shade(107.0, 255.0)];
            let (x, y) = (MARGIN + predicted * CELL, MARGIN + actual * CELL);
            canvas.fill(x + 1, y + 1, CELL - 2, CELL - 2, rgb);
            let label = count.to_string();
            let scale = if text_width(&label, 3) <= CELL - 8 {
                3
            } else {
                2
            };
            let ink = if share > 0.5 {
                [255, 255, 255]
            } else {
                [0, 0, 0]
            };
            canvas.text(&label, x + CELL / 2, y + CELL / 2, scale, ink);
        }
    }
    canvas
}

/// Writes the heatmap of `confusion` (`matrix[actual][predicted]`) to `path`.
pub fn write_confusion_png(
    path: &Path,
    classes: &[String],
    confusion: &[Vec<usize>],
) -> Result<(), MlError> {
    if classes.len() != confusion.len() {
        return Err(MlError::invalid(
            "confusion matrix and class list differ in length",
        ));
    }
    let canvas = render(confusion);
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, canvas.width as u32, canvas.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let png_error = |source| MlError::Png {
            path: path.to_path_buf(),
            source,
        };
        let mut writer = encoder.write_header().map_err(png_error)?;
        writer.write_image_data(&canvas.pixels).map_err(png_error)?;
    }
    write_atomic(path, &bytes)
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;

    #[test]
    fn heatmap_is_a_decodable_png_with_one_cell_per_pair() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let classes = vec!["a".to_string(), "b".to_string()];
        write_confusion_png(&path, &classes, &[vec![9, 1], vec![0, 10]]).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let reader = decoder.read_info().unwrap();
        assert_eq!(reader.info().width as usize, MARGIN + 2 * CELL + 4);
    }

    #[test]
    fn diagonal_cells_are_darker_and_hold_ink_for_their_counts() {
        let canvas = render(&[vec![9, 1], vec![0, 10]]);
        let pixel = |x: usize, y: usize| canvas.pixels[(y * canvas.width + x) * 3];
        // Top-left corner inside each cell (away from the digits).
        assert!(pixel(MARGIN + 3, MARGIN + 3) < pixel(MARGIN + CELL + 3, MARGIN + 3));
        // The centre column of the "1" in the off-diagonal cell is ink (black).
        let (cx, cy) = (MARGIN + CELL + CELL / 2, MARGIN + CELL / 2);
        let column: Vec<u8> = (cy - 6..cy + 6).map(|y| pixel(cx, y)).collect();
        assert!(column.contains(&0), "{column:?}");
    }
}
