//! A cache of short keys' ids, one per thread, made for lookups that mostly
//! hit: two slots to a 64-byte set, each slot a key and its ids, so a
//! lookup reads one cache line, found or not. A new key takes its set's
//! first slot, the key there moves to the second and the one there is
//! dropped: nothing is cleared wholesale, and a key stays until two newer
//! ones land in its set. The parts of non-ASCII pretokens (`part_cache`)
//! and the short words that are not whole tokens (`word_cache`) are kept
//! in one.

use crate::system::fresh_pages::FreshPages;
use allocator_api2::boxed::Box;

/// A packed key: its length in the low half of its top byte, so the high
/// half is free for the count of ids; 0, a length of 0, marks a free slot.
///
/// # Safety
/// All-zero bytes must be a valid key (the free slot): a cache starts as
/// zeroed memory.
pub unsafe trait SetKey: Copy + Eq {
    /// Where the count of ids sits: the key's top four bits.
    const COUNT_SHIFT: u32;

    fn with_count(self, count: usize) -> Self;
    fn count(self) -> usize;
    fn without_count(self) -> Self;
}

macro_rules! set_key {
    ($key:ty) => {
        // SAFETY: an integer; zero is the free slot.
        unsafe impl SetKey for $key {
            const COUNT_SHIFT: u32 = <$key>::BITS - 4;

            #[inline(always)]
            fn with_count(self, count: usize) -> Self {
                self | (count as $key) << Self::COUNT_SHIFT
            }

            #[inline(always)]
            fn count(self) -> usize {
                (self >> Self::COUNT_SHIFT) as usize
            }

            #[inline(always)]
            fn without_count(self) -> Self {
                self & !(0xF << Self::COUNT_SHIFT)
            }
        }
    };
}

set_key!(u64);
set_key!(u128);

#[derive(Clone, Copy)]
#[repr(C)]
struct Slot<K, const IDS: usize> {
    /// The key with its count of ids.
    key: K,
    ids: [u32; IDS],
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Set<K, const IDS: usize>([Slot<K, IDS>; 2]);

/// `2^SET_BITS` sets of two slots, each a key of type `K` and up to `IDS`
/// ids.
pub struct SetCache<K, const IDS: usize, const SET_BITS: u32> {
    sets: Box<[Set<K, IDS>], FreshPages>,
}

impl<K: SetKey, const IDS: usize, const SET_BITS: u32> Default for SetCache<K, IDS, SET_BITS> {
    fn default() -> Self {
        const {
            assert!(
                size_of::<Slot<K, IDS>>() == 32,
                "two slots fill a cache line"
            )
        };
        // Zeroed memory fresh from the kernel: pages cost nothing until a
        // key lands in them, so a thread that meets few keys, or none, does
        // not pay for the rest.
        let sets = Box::<[Set<K, IDS>], _>::new_zeroed_slice_in(1 << SET_BITS, FreshPages);
        // SAFETY: every slot is zeroed: keys are free (SetKey's contract), ids 0.
        SetCache {
            sets: unsafe { sets.assume_init() },
        }
    }
}

impl<K: SetKey, const IDS: usize, const SET_BITS: u32> SetCache<K, IDS, SET_BITS> {
    #[inline(always)]
    fn set(&self, hash: u64) -> usize {
        (hash >> (64 - SET_BITS)) as usize
    }

    /// Appends the ids kept for `key` (whose hash is `hash`) to `ids`; false
    /// if none are kept. Neither which slot holds the key nor how many ids
    /// it has is a branch: both vary from key to key, and mispredicting
    /// them cost more than the extra work.
    #[inline(always)]
    pub fn append_to(&self, key: K, hash: u64, ids: &mut Vec<u32>) -> bool {
        let set = &self.sets[self.set(hash)];
        let slot = if set.0[1].key.without_count() == key {
            &set.0[1]
        } else {
            &set.0[0]
        };
        if slot.key.without_count() != key {
            return false;
        }
        ids.reserve(IDS);
        // SAFETY: there is room for IDS more ids; all are written, and the
        // vector takes in the slot's count of them (at most IDS).
        unsafe {
            let end = ids.as_mut_ptr().add(ids.len());
            std::ptr::copy_nonoverlapping(slot.ids.as_ptr(), end, IDS);
            ids.set_len(ids.len() + slot.key.count());
        }
        true
    }

    /// Keeps `ids` for `key` if there are few enough, in place of the older
    /// of its set's two; false if there are too many.
    pub fn insert(&mut self, key: K, hash: u64, ids: &[u32]) -> bool {
        if ids.len() > IDS {
            return false;
        }
        let at = self.set(hash);
        let set = &mut self.sets[at];
        set.0[1] = set.0[0];
        let slot = &mut set.0[0];
        slot.key = key.with_count(ids.len());
        slot.ids[..ids.len()].copy_from_slice(ids);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(key: u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Keys of lengths 1 to 15 in their top byte, as packed pretokens have.
    fn check<K: SetKey + std::fmt::Debug, const IDS: usize>(key: impl Fn(u64, u64) -> K) {
        let mut cache = SetCache::<K, IDS, 6>::default();
        let keys: Vec<(K, u64)> = (1..=15u64)
            .flat_map(|len| (0..40u64).map(move |b| (len, b)))
            .map(|(len, b)| (key(len, b), spread(len << 8 | b)))
            .collect();
        let expected = |i: usize| vec![i as u32; 1 + i % IDS];
        for (i, &(k, hash)) in keys.iter().enumerate() {
            assert!(cache.insert(k, hash, &expected(i)));
        }
        let mut found = 0;
        for (i, &(k, hash)) in keys.iter().enumerate() {
            // A set keeps its two latest keys; another key is never found
            // in place of one pushed out.
            let mut ids = vec![7];
            if cache.append_to(k, hash, &mut ids) {
                assert_eq!(ids[1..], expected(i), "{i}");
                found += 1;
            }
            assert_eq!(ids[0], 7);
        }
        // 64 sets of two hold the last 128 keys at most.
        assert!((64..=128).contains(&found), "{found} of {}", keys.len());
        let (k, hash) = keys[keys.len() - 1];
        assert!(!cache.insert(k, hash, &vec![1; IDS + 1]), "too many ids");
        assert!(
            cache.append_to(k, hash, &mut Vec::new()),
            "kept when refused"
        );
        assert!(!cache.append_to(key(3, 99), spread(3 << 8 | 99), &mut Vec::new()));
    }

    #[test]
    fn finds_what_was_stored_until_pushed_out() {
        check::<u64, 6>(|len, b| (b * 0x0101_0101) | (len << 56));
        check::<u128, 4>(|len, b| (b * 0x0101_0101) as u128 | ((len as u128) << 120));
    }
}
