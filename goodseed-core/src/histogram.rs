//! Histograms over training: one distribution per step (weights, gradients,
//! activations), as TensorBoard and Neptune keep them. A histogram is its bucket edges
//! and the count (or weight) in each bucket.

/// The most buckets one histogram may hold.
pub const MAX_BUCKETS: usize = 100_000;

/// One histogram: `edges.len() == counts.len() + 1`, bucket `i` spanning
/// `[edges[i], edges[i + 1])`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// What the counts are, as the producer said (Neptune's `type`, e.g.
    /// `COUNTING`; empty when it said nothing).
    pub kind: String,
    /// The bucket edges, finite and non-decreasing.
    pub edges: Vec<f64>,
    /// The count (or weight) of each bucket: finite and not negative.
    pub counts: Vec<f64>,
}

impl Histogram {
    /// Checks the shape a store keeps, naming what is wrong: at least one bucket, at most
    /// [`MAX_BUCKETS`], one edge more than counts, finite non-decreasing edges, finite
    /// counts that are not negative.
    ///
    /// ```
    /// use goodseed_core::Histogram;
    /// let h = Histogram { kind: String::new(), edges: vec![0.0, 1.0, 2.0], counts: vec![3.0, 1.0] };
    /// assert!(h.check().is_ok());
    /// let bad = Histogram { counts: vec![3.0], ..h };
    /// assert_eq!(bad.check().err().unwrap_or_default(), "a histogram of 1 buckets needs 2 edges, not 3");
    /// ```
    pub fn check(&self) -> Result<(), String> {
        if self.counts.is_empty() {
            return Err("a histogram needs at least one bucket".into());
        }
        if self.counts.len() > MAX_BUCKETS {
            return Err(format!(
                "a histogram of {} buckets is more than {MAX_BUCKETS}",
                self.counts.len()
            ));
        }
        if self.edges.len() != self.counts.len() + 1 {
            return Err(format!(
                "a histogram of {} buckets needs {} edges, not {}",
                self.counts.len(),
                self.counts.len() + 1,
                self.edges.len()
            ));
        }
        if let Some((i, e)) = self.edges.iter().enumerate().find(|(_, e)| !e.is_finite()) {
            return Err(format!("edge {i} of the histogram is {e}, not a finite number"));
        }
        if let Some(i) = self.edges.windows(2).position(|w| w[1] < w[0]) {
            return Err(format!(
                "the histogram's edges go down at edge {}: {} after {}",
                i + 1,
                self.edges[i + 1],
                self.edges[i]
            ));
        }
        if let Some((i, c)) =
            self.counts.iter().enumerate().find(|(_, c)| !c.is_finite() || **c < 0.0)
        {
            return Err(format!("bucket {i} of the histogram counts {c}"));
        }
        Ok(())
    }

    /// The values as little-endian `f64` bytes, one after another (how the SQLite store
    /// keeps edges and counts).
    pub fn to_le_bytes(values: &[f64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// The values of [`Histogram::to_le_bytes`]; `None` when the length is not a
    /// multiple of eight.
    pub fn from_le_bytes(bytes: &[u8]) -> Option<Vec<f64>> {
        if !bytes.len().is_multiple_of(8) {
            return None;
        }
        Some(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        )
    }
}

/// One histogram of a series as stored: its step, the unix second it was logged at, and
/// the histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramPoint {
    /// The step.
    pub step: f64,
    /// Unix seconds when it was logged.
    pub ts: i64,
    /// The histogram.
    pub histogram: Histogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(edges: &[f64], counts: &[f64]) -> Histogram {
        Histogram { kind: "COUNTING".into(), edges: edges.to_vec(), counts: counts.to_vec() }
    }

    #[test]
    fn checks_name_the_problem() {
        assert_eq!(
            h(&[0.0, 1.0], &[]).check().err().unwrap_or_default(),
            "a histogram needs at least one bucket"
        );
        assert_eq!(
            h(&[0.0, f64::NAN], &[1.0]).check().err().unwrap_or_default(),
            "edge 1 of the histogram is NaN, not a finite number"
        );
        assert_eq!(
            h(&[0.0, 2.0, 1.0], &[1.0, 1.0]).check().err().unwrap_or_default(),
            "the histogram's edges go down at edge 2: 1 after 2"
        );
        assert_eq!(
            h(&[0.0, 1.0], &[-1.0]).check().err().unwrap_or_default(),
            "bucket 0 of the histogram counts -1"
        );
        assert!(h(&[0.0, 0.0, 1.0], &[1.0, 0.5]).check().is_ok());
    }

    #[test]
    fn bytes_round_trip() {
        let v = [0.1, -0.0, 1e300, 5e-324];
        let back = Histogram::from_le_bytes(&Histogram::to_le_bytes(&v)).unwrap_or_default();
        assert_eq!(back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), v.map(f64::to_bits));
        assert_eq!(Histogram::from_le_bytes(&[0; 7]), None);
    }
}
