//! Helpers shared by the crate's unit tests.

/// A xorshift64 stream from `seed` (made odd, so never stuck at zero):
/// fast and reproducible, enough to vary test inputs.
pub fn random_stream(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
