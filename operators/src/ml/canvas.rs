//! An RGB canvas for the charts `ml.evaluate` writes: filled rectangles and
//! text in the project's bitmap font, horizontal or reading upwards, encoded
//! as PNG.

use std::path::Path;

use crate::ml::MlError;
use crate::ml::atomic::write_atomic;
use crate::ml::font::{GLYPH_HEIGHT, GLYPH_WIDTH, ink, text_width};

pub const BLACK: [u8; 3] = [0, 0, 0];
pub const GREY: [u8; 3] = [90, 90, 90];
pub const WHITE: [u8; 3] = [255, 255, 255];

/// Where a line of text sits relative to the point it is drawn at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The point is the text's left end.
    Start,
    Centre,
    /// The point is the text's right end.
    End,
}

pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![255; width * height * 3],
        }
    }

    pub fn fill(&mut self, x0: usize, y0: usize, w: usize, h: usize, rgb: [u8; 3]) {
        for y in y0..(y0 + h).min(self.height) {
            for x in x0..(x0 + w).min(self.width) {
                let at = (y * self.width + x) * 3;
                self.pixels[at..at + 3].copy_from_slice(&rgb);
            }
        }
    }

    /// Draws `text` on one line, vertically centred on `y`, placed along
    /// `x` by `anchor`.
    pub fn text(
        &mut self,
        text: &str,
        x: usize,
        y: usize,
        anchor: Anchor,
        scale: usize,
        rgb: [u8; 3],
    ) {
        let width = text_width(text, scale);
        let x0 = match anchor {
            Anchor::Start => x,
            Anchor::Centre => x.saturating_sub(width / 2),
            Anchor::End => x.saturating_sub(width),
        };
        let y0 = y.saturating_sub(GLYPH_HEIGHT * scale / 2);
        self.glyphs(text, scale, rgb, |along, g, gy| {
            (x0 + along + g * scale, y0 + gy * scale)
        });
    }

    /// Draws `text` reading upwards (turned 90° anticlockwise), horizontally
    /// centred on `x`, placed along `y` by `anchor` (`Start` is its bottom end).
    pub fn text_up(
        &mut self,
        text: &str,
        x: usize,
        y: usize,
        anchor: Anchor,
        scale: usize,
        rgb: [u8; 3],
    ) {
        let length = text_width(text, scale);
        let bottom = match anchor {
            Anchor::Start => y,
            Anchor::Centre => y + length / 2,
            Anchor::End => y + length,
        };
        let x0 = x.saturating_sub(GLYPH_HEIGHT * scale / 2);
        // Glyph column g runs up the page, glyph row gy to the right.
        self.glyphs(text, scale, rgb, |along, g, gy| {
            (
                x0 + gy * scale,
                bottom.saturating_sub(along + (g + 1) * scale),
            )
        });
    }

    /// Fills one scaled pixel per ink pixel of `text`, at the top-left
    /// corner `place(along, g, gy)` gives for glyph column `g` and row `gy`
    /// of the glyph starting `along` pixels into the text.
    fn glyphs(
        &mut self,
        text: &str,
        scale: usize,
        rgb: [u8; 3],
        place: impl Fn(usize, usize, usize) -> (usize, usize),
    ) {
        for (i, c) in text.chars().enumerate() {
            let along = i * (GLYPH_WIDTH + 1) * scale;
            for gy in 0..GLYPH_HEIGHT {
                for g in 0..GLYPH_WIDTH {
                    if ink(c, g, gy) {
                        let (px, py) = place(along, g, gy);
                        self.fill(px, py, scale, scale, rgb);
                    }
                }
            }
        }
    }

    /// Writes the canvas to `path` as an 8-bit RGB PNG, atomically.
    pub fn write_png(&self, path: &Path) -> Result<(), MlError> {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let png_error = |source| MlError::Png {
                path: path.to_path_buf(),
                source,
            };
            let mut writer = encoder.write_header().map_err(png_error)?;
            writer.write_image_data(&self.pixels).map_err(png_error)?;
        }
        write_atomic(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dark_rows(canvas: &Canvas) -> Vec<usize> {
        (0..canvas.height)
            .filter(|y| (0..canvas.width).any(|x| canvas.pixels[(y * canvas.width + x) * 3] == 0))
            .collect()
    }

    fn dark_columns(canvas: &Canvas) -> Vec<usize> {
        (0..canvas.width)
            .filter(|x| (0..canvas.height).any(|y| canvas.pixels[(y * canvas.width + x) * 3] == 0))
            .collect()
    }

    #[test]
    fn horizontal_text_is_as_wide_as_measured_and_upward_text_as_tall() {
        let mut flat = Canvas::new(100, 40);
        flat.text("LL", 10, 20, Anchor::Start, 2, BLACK);
        let columns = dark_columns(&flat);
        assert_eq!(columns.first(), Some(&10));
        assert_eq!(columns.last(), Some(&(10 + text_width("LL", 2) - 1)));
        assert_eq!(dark_rows(&flat).len(), GLYPH_HEIGHT * 2);

        let mut up = Canvas::new(40, 100);
        up.text_up("LL", 20, 80, Anchor::Start, 2, BLACK);
        let rows = dark_rows(&up);
        assert_eq!(rows.last(), Some(&79), "it starts at the bottom");
        assert_eq!(
            rows.first(),
            Some(&(80 - text_width("LL", 2))),
            "as long as measured"
        );
        assert_eq!(
            rows.len(),
            2 * GLYPH_WIDTH * 2,
            "two glyphs and a blank gap"
        );
        assert_eq!(dark_columns(&up).len(), GLYPH_HEIGHT * 2);
    }

    #[test]
    fn anchors_place_the_end_or_the_centre_at_the_point() {
        let mut canvas = Canvas::new(100, 20);
        canvas.text("I", 50, 10, Anchor::End, 1, BLACK);
        assert_eq!(
            dark_columns(&canvas).last(),
            Some(&(50 - 2)),
            "`I`'s ink ends a column early"
        );
        let mut canvas = Canvas::new(100, 20);
        canvas.text("I", 50, 10, Anchor::Centre, 1, BLACK);
        assert!(dark_columns(&canvas).contains(&50));
    }
}
