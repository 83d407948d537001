//! Row fingerprints for finding duplicate rows without extra polars features.
//!
//! Each value is hashed deterministically (blake3 for text, the bit pattern
//! for numbers, a fixed marker for null) and folded per row into a 128-bit
//! fingerprint, column by column, so the work is vectorised over columns and
//! identical rows get identical fingerprints in every process. Two different
//! rows share a fingerprint with probability about 2⁻¹²⁸ per pair.
//!
//! This module does not decide what to do with duplicates.

use std::collections::BTreeSet;

use polars::prelude::*;

use super::rng::mix;

const NULL_MARKER: u64 = 0x6E75_6C6C_6E75_6C6C;

/// One 128-bit fingerprint per row over the given columns, in row order.
pub fn row_fingerprints(frame: &DataFrame, columns: &[&Column]) -> PolarsResult<Vec<u128>> {
    let mut low = vec![0x243F_6A88_85A3_08D3_u64; frame.height()];
    let mut high = vec![0x1319_8A2E_0370_7344_u64; frame.height()];
    for column in columns {
        let fold = |row: usize, value: u64, low: &mut [u64], high: &mut [u64]| {
            low[row] = mix(low[row] ^ value);
            high[row] = mix(high[row].rotate_left(17) ^ value.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        };
        if column.dtype().is_primitive_numeric() {
            let values = column.cast(&DataType::Float64)?;
            for (row, value) in values.f64()?.iter().enumerate() {
                let bits = value.map_or(NULL_MARKER, canonical_bits);
                fold(row, bits, &mut low, &mut high);
            }
        } else {
            let values = column.cast(&DataType::String)?;
            for (row, value) in values.str()?.iter().enumerate() {
                let bits = value.map_or(NULL_MARKER, text_hash);
                fold(row, bits, &mut low, &mut high);
            }
        }
    }
    Ok(low
        .into_iter()
        .zip(high)
        .map(|(l, h)| (u128::from(h) << 64) | u128::from(l))
        .collect())
}

/// `true` for every row whose fingerprint appeared in an earlier row.
pub fn repeated_rows(fingerprints: &[u128]) -> Vec<bool> {
    let mut seen = BTreeSet::new();
    fingerprints
        .iter()
        .map(|fingerprint| !seen.insert(*fingerprint))
        .collect()
}

fn canonical_bits(value: f64) -> u64 {
    if value.is_nan() {
        f64::NAN.to_bits()
    } else if value == 0.0 {
        0 // -0.0 and 0.0 are the same value
    } else {
        value.to_bits()
    }
}

fn text_hash(text: &str) -> u64 {
    let digest = blake3::hash(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(first) ^ 0xA5A5_A5A5_A5A5_A5A5
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use super::*;

    fn repeats(frame: &DataFrame) -> Vec<bool> {
        let columns: Vec<&Column> = frame.columns().iter().collect();
        repeated_rows(&row_fingerprints(frame, &columns).unwrap())
    }

    #[test]
    fn exact_duplicates_after_the_first_are_marked() {
        let frame = df!("a" => [1.0, 2.0, 1.0, 1.0], "b" => ["x", "y", "x", "z"]).unwrap();
        assert_eq!(repeats(&frame), [false, false, true, false]);
    }

    #[test]
    fn swapped_values_across_columns_are_not_duplicates() {
        let frame = df!("a" => ["x", "y"], "b" => ["y", "x"]).unwrap();
        assert_eq!(repeats(&frame), [false, false]);
    }

    #[test]
    fn nulls_compare_equal_to_nulls_only() {
        let frame = df!("a" => [None, Some(0.0), None]).unwrap();
        assert_eq!(repeats(&frame), [false, false, true]);
    }
}
