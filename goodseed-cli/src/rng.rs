//! A small seeded pseudo-random generator (SplitMix64) for the demo (the data split,
//! weight initialisation, batch shuffling) and random sweeps, reproducible from one seed.
//!
//! SplitMix64 (Steele, Lea and Flood, 2014) passes BigCrush and is a dozen lines; the
//! demo needs no more, and needs no `rand` dependency.

/// A SplitMix64 generator. Not for anything that needs unpredictable numbers.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// A generator for one purpose (`stream`) of one `seed`: different streams of the
    /// same seed are independent, so adding a draw to one (a wider layer) leaves the
    /// others (the split, the batch order) as they were.
    pub(crate) fn new(seed: u64, stream: u64) -> Rng {
        // Mixing the seed first keeps (seed, stream) pairs apart even when seed ^ stream
        // would collide.
        Rng { state: mix(seed) ^ stream }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// A float uniform in `[0, 1)`, from the top 53 bits.
    pub(crate) fn uniform(&mut self) -> f64 {
        // Exact: a 53-bit integer is representable, and the division is by a power of two.
        let top = (self.next_u64() >> 11) as f64;
        top / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box–Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        // 1 - uniform() is in (0, 1], so the logarithm is finite.
        let radius = (-2.0 * (1.0 - self.uniform()).ln()).sqrt();
        let angle = std::f64::consts::TAU * self.uniform();
        radius * angle.cos()
    }

    /// An integer uniform in `0..n` (`n > 0`), by Lemire's multiply-shift; the bias,
    /// at most `n / 2^64`, is immaterial for shuffling a few hundred rows.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let wide = u128::from(self.next_u64()) * u128::from(n);
        usize::try_from(wide >> 64).expect("the result is below n, which came from a usize")
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// SplitMix64's output function: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_splitmix64() {
        // The reference outputs for seed 1234567 (Rosetta Code, "Pseudo-random
        // numbers/Splitmix64").
        let mut rng = Rng { state: 1_234_567 };
        let got: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423]
        );
    }

    #[test]
    fn draws_are_in_range_and_reproducible() {
        let draws = |seed| {
            let mut rng = Rng::new(seed, 7);
            (0..1000).map(|_| (rng.uniform(), rng.below(3))).collect::<Vec<_>>()
        };
        let a = draws(42);
        assert_eq!(a, draws(42));
        assert_ne!(a, draws(43));
        assert!(a.iter().all(|&(u, k)| (0.0..1.0).contains(&u) && k < 3));
        // Every value of `below(3)` turns up.
        assert!((0..3).all(|k| a.iter().any(|&(_, got)| got == k)));
    }

    #[test]
    fn normal_draws_have_mean_zero_and_variance_one() {
        let mut rng = Rng::new(1, 0);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / f64::from(n);
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / f64::from(n);
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }

    #[test]
    fn shuffle_permutes() {
        let mut items: Vec<u32> = (0..50).collect();
        Rng::new(3, 0).shuffle(&mut items);
        assert_ne!(items, (0..50).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..50).collect::<Vec<_>>());
    }
}
