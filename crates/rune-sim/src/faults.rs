//! The deterministic fault draw: `(seed, request index) → which faults`. A stateless
//! hash (SplitMix64) instead of a shared RNG, so the hot path takes no lock; the only
//! shared state is the server's atomic request counter. No I/O here.

use crate::config::{Faults, Rate};

/// Which faults one request suffers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FaultPlan {
    /// Answer with the configured error status instead (excludes the others).
    pub(crate) fail: bool,
    /// Pause mid-answer.
    pub(crate) stall: bool,
    /// Insert a malformed line mid-answer.
    pub(crate) malformed: bool,
    /// Close the connection mid-answer.
    pub(crate) drop: bool,
}

impl FaultPlan {
    /// Whether the stream must stop coalescing chunks at the fault point.
    pub(crate) fn mid_stream(&self) -> bool {
        self.stall || self.malformed || self.drop
    }

    /// The value of the faults header: `none`, `fail`, or the mid-answer faults in the
    /// order they strike, comma-separated.
    pub(crate) fn label(&self) -> &'static str {
        match (self.fail, self.stall, self.malformed, self.drop) {
            (true, ..) => "fail",
            (false, false, false, false) => "none",
            (false, true, false, false) => "stall",
            (false, false, true, false) => "malformed",
            (false, false, false, true) => "drop",
            (false, true, true, false) => "stall,malformed",
            (false, true, false, true) => "stall,drop",
            (false, false, true, true) => "malformed,drop",
            (false, true, true, true) => "stall,malformed,drop",
        }
    }
}

/// Draws the faults of request `index`. Each kind has its own hash stream, so changing one
/// rate does not move the requests another fault hits.
pub(crate) fn draw(faults: &Faults, index: u64) -> FaultPlan {
    if !faults.any() {
        return FaultPlan::default();
    }
    let base = splitmix64(faults.seed ^ splitmix64(index));
    let hit = |salt: u64, rate: Rate| unit(splitmix64(base ^ salt)) < rate.get();
    if hit(0x6661_696c, faults.fail_rate) {
        return FaultPlan { fail: true, ..FaultPlan::default() };
    }
    FaultPlan {
        fail: false,
        stall: hit(0x7374_616c, faults.stall_rate),
        malformed: hit(0x6d61_6c66, faults.malformed_rate),
        drop: hit(0x6472_6f70, faults.drop_rate),
    }
}

/// SplitMix64's finaliser: a bijective, well-mixed hash of a 64-bit value.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform float in `[0, 1)` from the top 53 bits.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(rate: f64) -> Faults {
        Faults { drop_rate: Rate::new(rate).unwrap(), seed: 7, ..Faults::default() }
    }

    #[test]
    fn rates_zero_and_one_are_never_and_always() {
        assert!((0..1000).all(|i| !draw(&faults(0.0), i).drop));
        assert!((0..1000).all(|i| draw(&faults(1.0), i).drop));
    }

    #[test]
    fn half_rate_hits_about_half_and_is_reproducible() {
        let hits = (0..10_000).filter(|&i| draw(&faults(0.5), i).drop).count();
        assert!((4_700..5_300).contains(&hits), "{hits}");
        let a: Vec<_> = (0..100).map(|i| draw(&faults(0.5), i)).collect();
        let b: Vec<_> = (0..100).map(|i| draw(&faults(0.5), i)).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn a_failure_excludes_mid_stream_faults() {
        let f = Faults { fail_rate: Rate::ALWAYS, drop_rate: Rate::ALWAYS, ..Faults::default() };
        assert_eq!(draw(&f, 3), FaultPlan { fail: true, ..FaultPlan::default() });
    }
}
