//! A 3×5 pixel bitmap font for the digits 0–9, designed for this project so
//! images need no system fonts. Each glyph is five rows of three bits,
//! most significant bit on the left.

const GLYPHS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111], // 0
    [0b010, 0b110, 0b010, 0b010, 0b111], // 1
    [0b111, 0b001, 0b111, 0b100, 0b111], // 2
    [0b111, 0b001, 0b011, 0b001, 0b111], // 3
    [0b101, 0b101, 0b111, 0b001, 0b001], // 4
    [0b111, 0b100, 0b111, 0b001, 0b111], // 5
    [0b111, 0b100, 0b111, 0b101, 0b111], // 6
    [0b111, 0b001, 0b010, 0b010, 0b010], // 7
    [0b111, 0b101, 0b111, 0b101, 0b111], // 8
    [0b111, 0b101, 0b111, 0b001, 0b111], // 9
];

pub const GLYPH_WIDTH: usize = 3;
pub const GLYPH_HEIGHT: usize = 5;

/// Whether pixel (`x`, `y`) of `digit`'s glyph is ink; non-digits are blank.
pub fn ink(digit: char, x: usize, y: usize) -> bool {
    let Some(d) = digit.to_digit(10) else {
        return false;
    };
    x < GLYPH_WIDTH && y < GLYPH_HEIGHT && GLYPHS[d as usize][y] & (1 << (GLYPH_WIDTH - 1 - x)) != 0
}

/// Width in pixels of `text` at `scale`, with one scaled pixel between glyphs.
pub fn text_width(text: &str, scale: usize) -> usize {
    let n = text.chars().count();
    if n == 0 {
        0
    } else {
        (n * (GLYPH_WIDTH + 1) - 1) * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_digit_has_a_distinct_glyph() {
        let mut glyphs: Vec<_> = GLYPHS.to_vec();
        glyphs.sort();
        glyphs.dedup();
        assert_eq!(glyphs.len(), 10);
    }

    #[test]
    fn one_is_drawn_in_the_middle_column() {
        assert!(ink('1', 1, 4) && !ink('1', 0, 0) && !ink('x', 1, 1));
        assert_eq!(text_width("10", 2), 14);
    }
}
