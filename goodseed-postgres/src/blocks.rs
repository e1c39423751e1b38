//! Metric points in blocks: `goodseed_metric_blocks` keeps one row per series per write
//! (split past [`BLOCK_MAX`] points), its points packed in step order as
//! [`POINT_BYTES`] bytes each (step, value: IEEE 754 bits; ts: i64; all big-endian, as
//! PostgreSQL's `float8send` and `int8send` write them, so the schema migration can pack
//! existing rows in SQL). A series' blocks never overlap in steps. Writing a million
//! points is then a few hundred rows and index entries instead of a million, which is
//! what PostgreSQL spends its time on.
//!
//! This module is the pure part: packing, unpacking, and placing points written again
//! into the blocks that hold their steps (or new blocks between them).

use goodseed_core::MetricPoint;

/// Bytes per packed point.
pub(crate) const POINT_BYTES: usize = 24;

/// The most points a write puts in one block; a block grown past twice this by points
/// written into it is split.
pub(crate) const BLOCK_MAX: usize = 16_384;

/// A point as the writer has it: (step, value, ts).
pub(crate) type Point = (f64, f64, i64);

/// Packs points (already in step order).
pub(crate) fn pack(points: &[Point]) -> Vec<u8> {
    let mut out = Vec::with_capacity(points.len() * POINT_BYTES);
    for &(step, value, ts) in points {
        out.extend_from_slice(&step.to_bits().to_be_bytes());
        out.extend_from_slice(&value.to_bits().to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
    }
    out
}

/// The point at `i` of a packed block.
fn at(bytes: &[u8], i: usize) -> MetricPoint {
    let word = |k: usize| {
        let start = i * POINT_BYTES + k * 8;
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[start..start + 8]);
        b
    };
    MetricPoint {
        step: f64::from_bits(u64::from_be_bytes(word(0))),
        value: f64::from_bits(u64::from_be_bytes(word(1))),
        ts: i64::from_be_bytes(word(2)),
    }
}

/// How many points a packed block holds, or why it is not one.
pub(crate) fn count(bytes: &[u8]) -> Result<usize, String> {
    if bytes.len().is_multiple_of(POINT_BYTES) {
        Ok(bytes.len() / POINT_BYTES)
    } else {
        Err(format!(
            "a block of metric points is {} bytes, not a multiple of {POINT_BYTES}",
            bytes.len()
        ))
    }
}

/// The points of a packed block from `from` on, to `visit` until it returns false;
/// returns whether it asked for more.
pub(crate) fn visit_from(
    bytes: &[u8],
    from: usize,
    visit: &mut dyn FnMut(MetricPoint) -> bool,
) -> Result<bool, String> {
    let n = count(bytes)?;
    for i in from..n {
        if !visit(at(bytes, i)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Unpacks a whole block.
pub(crate) fn unpack(bytes: &[u8]) -> Result<Vec<Point>, String> {
    let n = count(bytes)?;
    Ok((0..n)
        .map(|i| {
            let p = at(bytes, i);
            (p.step, p.value, p.ts)
        })
        .collect())
}

/// Writes `again` (in step order, one per step) into a block's points and their
/// unsent flags: a step the block holds keeps its stored step (-0.0 and 0.0 are one
/// step) and takes the new value and time; a new step goes in its place; either is
/// pending upload. Returns how many points are new.
pub(crate) fn merge(points: &mut Vec<Point>, unsent: &mut Vec<bool>, again: &[Point]) -> usize {
    let mut out = Vec::with_capacity(points.len() + again.len());
    let mut flags = Vec::with_capacity(points.len() + again.len());
    let (mut i, mut j, mut new) = (0, 0, 0);
    loop {
        match (points.get(i), again.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                out.push((a.0, b.1, b.2));
                flags.push(true);
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                out.push(*a);
                flags.push(unsent.get(i).copied().unwrap_or(true));
                i += 1;
            }
            (Some(a), None) => {
                out.push(*a);
                flags.push(unsent.get(i).copied().unwrap_or(true));
                i += 1;
            }
            (_, Some(b)) => {
                out.push(*b);
                flags.push(true);
                new += 1;
                j += 1;
            }
            (None, None) => break,
        }
    }
    *points = out;
    *unsent = flags;
    new
}

/// Where points written again go, given a series' blocks that may hold them (their
/// step ranges, in step order): `into[k]` the indexes of the points inside block `k`,
/// and `between` groups of points no block holds, each group within one gap between
/// blocks (or before the first, or after the last), in step order.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Placed {
    pub(crate) into: Vec<Vec<usize>>,
    pub(crate) between: Vec<Vec<usize>>,
}

pub(crate) fn place(ranges: &[(f64, f64)], again: &[Point]) -> Placed {
    let mut placed = Placed { into: vec![Vec::new(); ranges.len()], between: Vec::new() };
    let mut k = 0;
    // The gap a point outside every block falls in: the index of the block after it.
    let mut gap: Option<(usize, Vec<usize>)> = None;
    for (i, p) in again.iter().enumerate() {
        while k < ranges.len() && ranges[k].1 < p.0 {
            k += 1;
        }
        if k < ranges.len() && ranges[k].0 <= p.0 {
            placed.into[k].push(i);
            continue;
        }
        match &mut gap {
            Some((g, group)) if *g == k => group.push(i),
            _ => {
                if let Some((_, group)) = gap.take() {
                    placed.between.push(group);
                }
                gap = Some((k, vec![i]));
            }
        }
    }
    if let Some((_, group)) = gap {
        placed.between.push(group);
    }
    placed
}

/// A block's `unsent_bits` with every one of `n` points pending.
pub(crate) fn all_unsent(n: usize) -> Vec<u8> {
    pack_flags(&vec![true; n])
}

/// Packs one flag per point, bit i of byte i / 8 (least significant first).
pub(crate) fn pack_flags(flags: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; flags.len().div_ceil(8)];
    for (i, _) in flags.iter().enumerate().filter(|(_, f)| **f) {
        out[i / 8] |= 1 << (i % 8);
    }
    out
}

/// The flags of `n` points; a point past the bytes given reads as pending (sending a
/// point twice is harmless, never sending it is not).
pub(crate) fn unpack_flags(bytes: &[u8], n: usize) -> Vec<bool> {
    (0..n).map(|i| bytes.get(i / 8).is_none_or(|b| b & (1 << (i % 8)) != 0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_keeps_every_bit() {
        let points = vec![
            (-0.0, f64::NAN, -1),
            (0.5, f64::INFINITY, 0),
            (2f64.powi(53), f64::NEG_INFINITY, i64::MAX),
            (1e300, -0.0, i64::MIN),
        ];
        let bytes = pack(&points);
        assert_eq!(bytes.len(), 4 * POINT_BYTES);
        let back = unpack(&bytes).expect("unpack");
        for (a, b) in points.iter().zip(&back) {
            assert_eq!((a.0.to_bits(), a.1.to_bits(), a.2), (b.0.to_bits(), b.1.to_bits(), b.2));
        }
        assert!(count(&bytes[..30]).expect_err("torn").contains("30 bytes"));
        let mut seen = Vec::new();
        let more = visit_from(&bytes, 2, &mut |p| {
            seen.push(p.step);
            false
        })
        .expect("visit");
        assert_eq!((more, seen), (false, vec![2f64.powi(53)]));
    }

    #[test]
    fn merging_replaces_held_steps_and_inserts_new_ones_all_pending() {
        let mut points = vec![(-0.0, 1.0, 1), (2.0, 2.0, 2), (4.0, 4.0, 4), (6.0, 6.0, 6)];
        let mut unsent = vec![false, false, true, false];
        let again = [(0.0, 9.0, 9), (3.0, 3.0, 3), (4.0, 8.0, 8), (5.0, 5.0, 5)];
        let new = merge(&mut points, &mut unsent, &again);
        assert_eq!(new, 2);
        assert_eq!(
            points,
            vec![
                (-0.0, 9.0, 9),
                (2.0, 2.0, 2),
                (3.0, 3.0, 3),
                (4.0, 8.0, 8),
                (5.0, 5.0, 5),
                (6.0, 6.0, 6)
            ]
        );
        assert!(points[0].0.is_sign_negative(), "the stored step stays");
        assert_eq!(unsent, vec![true, false, true, true, true, false]);
    }

    #[test]
    fn flags_pack_a_bit_per_point() {
        let flags = [true, false, false, true, true, false, true, false, true];
        let bytes = pack_flags(&flags);
        assert_eq!(bytes, vec![0b0101_1001, 0b1]);
        assert_eq!(unpack_flags(&bytes, 9), flags);
        assert_eq!(all_unsent(10), vec![0xff, 0b11]);
        assert_eq!(unpack_flags(&[], 2), vec![true, true], "missing bits read as pending");
    }

    #[test]
    fn points_are_placed_in_their_blocks_or_their_gaps() {
        let ranges = [(0.0, 10.0), (20.0, 30.0)];
        let again: Vec<Point> = [-5.0, -1.0, 0.0, 10.0, 12.0, 15.0, 20.0, 25.0, 31.0, 40.0]
            .iter()
            .map(|&s| (s, 0.0, 0))
            .collect();
        let placed = place(&ranges, &again);
        assert_eq!(placed.into, vec![vec![2, 3], vec![6, 7]]);
        assert_eq!(placed.between, vec![vec![0, 1], vec![4, 5], vec![8, 9]]);
        assert_eq!(place(&[], &again[..2]).between, vec![vec![0, 1]]);
    }
}
