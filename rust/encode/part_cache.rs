//! The ids of the short parts that [`crate::encode::char_cuts`] cuts
//! pretokens into, one cache per thread. With GPT-2's vocabulary a Korean
//! word parts into syllables: 1.5M parts in 5 MB of Korean, of only 6,492
//! kinds (against 159,534 kinds of word). So a small [`SetCache`], which
//! stays in the CPU's caches, finds nearly all of them.

use super::set_cache::SetCache;

/// Parts of up to this many bytes are kept: a key packs into a `u64` with
/// its length in the top byte. Korean syllables are 3 bytes, 4 with a space.
pub const MAX_PART_LEN: usize = 7;

/// Up to six ids per part; 4,096 sets of two (256 KB) hold 8,192 parts.
pub type PartCache = SetCache<u64, 6, 12>;

/// A packed part's hash, for [`PartCache`].
#[inline(always)]
pub fn hash(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// `part` (1 to [`MAX_PART_LEN`] bytes) and its length in one word.
#[inline(always)]
pub fn pack(part: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..part.len()].copy_from_slice(part);
    u64::from_le_bytes(word) | (part.len() as u64) << 56
}

/// [`pack`] of `text[start..end]`, read as one word where the text goes
/// on for eight bytes from `start`.
#[inline(always)]
pub fn pack_within(text: &[u8], start: usize, end: usize) -> u64 {
    let len = end - start;
    match text.get(start..start + 8) {
        Some(word) => {
            let word = u64::from_le_bytes(word.try_into().unwrap());
            word & ((1 << (8 * len)) - 1) | (len as u64) << 56
        }
        None => pack(&text[start..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_within_a_text_are_the_keys_of_its_parts() {
        let text: Vec<u8> = (0..24u32).map(|i| (i * 151 % 256) as u8).collect();
        for start in 0..text.len() {
            for end in start + 1..text.len().min(start + MAX_PART_LEN) + 1 {
                assert_eq!(pack_within(&text, start, end), pack(&text[start..end]));
            }
        }
        // Zero bytes are part of the key: lengths tell these apart.
        assert_ne!(pack(&[0]), pack(&[0, 0]));
    }
}
