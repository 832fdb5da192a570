//! A tiny seeded random number generator (SplitMix64): the load generator's only source of
//! randomness, so the same seed gives the same prompts and the same arrival schedule on
//! every machine and every version. Not cryptographic; must not be used for secrets.

/// SplitMix64 (Steele, Lea, Flood 2014): 8 bytes of state, passes BigCrush, and is
/// trivially reproducible, which matters more here than speed or period.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform draw in the open interval (0, 1): never 0, so `ln` is always finite.
    pub fn next_open01(&mut self) -> f64 {
        // 53 random mantissa bits, shifted by half a step away from 0.
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A uniform index below `n` (`n` > 0); the tiny modulo bias is irrelevant for
    /// picking words.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same seed, same sequence; different seeds diverge; draws stay inside (0, 1).
    #[test]
    fn seeded_and_bounded() {
        let a: Vec<u64> = (0..4).scan(SplitMix64::new(7), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..4).scan(SplitMix64::new(7), |r, _| Some(r.next_u64())).collect();
        let c: Vec<u64> = (0..4).scan(SplitMix64::new(8), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut r = SplitMix64::new(1);
        let mean = (0..100_000).map(|_| r.next_open01()).inspect(|x| assert!(*x > 0.0 && *x < 1.0)).sum::<f64>() / 1e5;
        assert!((mean - 0.5).abs() < 0.01, "mean of uniform draws {mean}");
    }
}
