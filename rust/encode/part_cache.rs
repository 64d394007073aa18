//! The ids of the short parts that [`crate::encode::char_cuts`] cuts
//! pretokens into, one cache per thread. With GPT-2's vocabulary a Korean
//! word parts into syllables: 1.5M parts in 5 MB of Korean, of only 6,492
//! kinds (against 159,534 kinds of word). So a small table, which stays in
//! the CPU's caches, finds nearly all of them, each key and its ids on one
//! cache line, where the word cache would read a second line for ids kept
//! apart.

/// Parts of up to this many bytes are kept: a key packs into a `u64` with
/// its length in the top byte. Korean syllables are 3 bytes, 4 with a space.
pub const MAX_PART_LEN: usize = 7;
/// At most this many ids per part, stored in the slot.
const MAX_IDS: usize = 5;
/// Two slots to a 64-byte set; 4,096 sets (256 KB) hold 8,192 parts.
const SET_BITS: u32 = 12;

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Slot {
    /// The packed key; 0 (a length of 0) for an empty slot.
    key: u64,
    ids: [u32; MAX_IDS],
    len: u32,
}

#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Set([Slot; 2]);

pub struct PartCache {
    sets: Box<[Set]>,
}

impl Default for PartCache {
    fn default() -> Self {
        PartCache {
            sets: vec![Set::default(); 1 << SET_BITS].into_boxed_slice(),
        }
    }
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

#[inline(always)]
fn set_of(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SET_BITS)) as usize
}

impl PartCache {
    /// Appends the ids kept for `key` to `ids`; false if none are kept.
    /// Neither which slot holds the key nor how many ids it has is a
    /// branch: both vary from part to part, and mispredicting them cost
    /// more than the extra work.
    #[inline(always)]
    pub fn append_to(&self, key: u64, ids: &mut Vec<u32>) -> bool {
        let set = &self.sets[set_of(key)];
        let slot = if set.0[1].key == key {
            &set.0[1]
        } else {
            &set.0[0]
        };
        if slot.key != key {
            return false;
        }
        ids.reserve(MAX_IDS);
        // SAFETY: there is room for MAX_IDS more ids; all are written, and
        // the vector takes in the slot's `len` of them (at most MAX_IDS).
        unsafe {
            let end = ids.as_mut_ptr().add(ids.len());
            std::ptr::copy_nonoverlapping(slot.ids.as_ptr(), end, MAX_IDS);
            ids.set_len(ids.len() + slot.len as usize);
        }
        true
    }

    /// Keeps `ids` for `key` if there are few enough, in place of the less
    /// recently stored of its set's two; false if there are too many.
    pub fn insert(&mut self, key: u64, ids: &[u32]) -> bool {
        if ids.len() > MAX_IDS {
            return false;
        }
        let set = &mut self.sets[set_of(key)];
        set.0[1] = set.0[0];
        let slot = &mut set.0[0];
        slot.key = key;
        slot.ids[..ids.len()].copy_from_slice(ids);
        slot.len = ids.len() as u32;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_was_stored_until_pushed_out() {
        let mut cache = PartCache::default();
        let parts: Vec<Vec<u8>> = (1..=MAX_PART_LEN)
            .flat_map(|len| (0..40u8).map(move |b| vec![b; len]))
            .collect();
        for (i, part) in parts.iter().enumerate() {
            assert!(cache.insert(pack(part), &vec![i as u32; 1 + i % MAX_IDS]));
        }
        let mut found = 0;
        for (i, part) in parts.iter().enumerate() {
            // A set keeps its two latest parts; another part is never found
            // in place of one pushed out.
            let mut ids = vec![7];
            if cache.append_to(pack(part), &mut ids) {
                assert_eq!(ids[1..], vec![i as u32; 1 + i % MAX_IDS], "{i}");
                found += 1;
            }
            assert_eq!(ids[0], 7);
        }
        assert!(found > parts.len() * 9 / 10, "{found} of {}", parts.len());
        // Zero bytes are part of the key: lengths tell these apart.
        assert_ne!(pack(&[0]), pack(&[0, 0]));
        assert!(!cache.append_to(pack(&[1, 2, 3]), &mut Vec::new()));
        // Too many ids to keep: nothing stored.
        assert!(!cache.insert(pack(b"abcdef"), &[1, 2, 3, 4, 5, 6]));
        assert!(!cache.append_to(pack(b"abcdef"), &mut Vec::new()));
    }

    #[test]
    fn keys_read_within_a_text_are_the_keys_of_its_parts() {
        let text: Vec<u8> = (0..24u32).map(|i| (i * 151 % 256) as u8).collect();
        for start in 0..text.len() {
            for end in start + 1..text.len().min(start + MAX_PART_LEN) + 1 {
                assert_eq!(pack_within(&text, start, end), pack(&text[start..end]));
            }
        }
    }
}
