//! A hash table that is built once and then only read, made of 64-byte
//! buckets: a lookup, whether its key is there or not, nearly always reads
//! one cache line and compares all the bucket's keys at once, with no branch
//! per slot to mispredict. Merge ranks (`merge.rs`) and whole tokens
//! (`whole_tokens.rs`) are kept in one.

use crate::system::huge_pages::HugePageAllocator;

/// A key type; `EMPTY` marks a free slot and is never a real key.
pub trait BucketKey: Copy + Eq {
    const EMPTY: Self;

    /// Bit `i` set when `keys[i] == key`, computed without branches.
    #[inline(always)]
    fn matching(keys: &[Self], key: Self) -> u32 {
        (keys.iter().enumerate()).fold(0, |found, (i, &k)| found | ((k == key) as u32) << i)
    }
}

impl BucketKey for u32 {
    const EMPTY: Self = u32::MAX;

    /// Eight keys in two SSE2 compares (10% faster merging than the
    /// compiler's code for the plain loop); other processors and the
    /// `portable` feature take the plain loop.
    #[cfg(x86_simd)]
    #[inline(always)]
    fn matching(keys: &[u32], key: u32) -> u32 {
        use std::arch::x86_64::*;
        let keys: &[u32; 8] = keys.try_into().expect("eight keys to a bucket");
        // SAFETY: SSE2 is part of x86-64; each load reads four of the
        // array's eight keys.
        unsafe {
            let wanted = _mm_set1_epi32(key as i32);
            let equal = |at: usize| {
                let four = _mm_loadu_si128(keys.as_ptr().add(at).cast());
                _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(four, wanted))) as u32
            };
            equal(0) | equal(4) << 4
        }
    }
}

impl BucketKey for u64 {
    const EMPTY: Self = u64::MAX;
}

/// Packed pretokens (`word_cache::Key::packed`), which are never 0.
impl BucketKey for u128 {
    const EMPTY: Self = 0;
}

/// `N` keys and their values, one cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Bucket<K, V, const N: usize> {
    keys: [K; N],
    values: [V; N],
}

#[derive(Debug, Clone)]
pub struct BucketTable<K, V, const N: usize> {
    buckets: allocator_api2::vec::Vec<Bucket<K, V, N>, HugePageAllocator>,
    /// A hash's top bits pick its key's first bucket.
    shift: u32,
}

impl<K: BucketKey, V: Copy + Default, const N: usize> BucketTable<K, V, N> {
    /// A table of `buckets` buckets (rounded up to a power of two) holding
    /// `(key, hash, value)` entries; a later value for a key replaces an
    /// earlier one. A slot must stay free, or lookups of absent keys would
    /// never end: too many entries is a bug in the caller, and panics.
    pub fn new(buckets: usize, entries: impl IntoIterator<Item = (K, u64, V)>) -> Self {
        let count = buckets.next_power_of_two().max(2);
        let empty = Bucket {
            keys: [K::EMPTY; N],
            values: [V::default(); N],
        };
        let mut table = BucketTable {
            buckets: allocator_api2::vec::from_elem_in(empty, count, HugePageAllocator),
            shift: 64 - count.trailing_zeros(),
        };
        for (inserted, (key, hash, value)) in entries.into_iter().enumerate() {
            assert!(
                inserted + 1 < count * N,
                "{count} buckets are too few for the entries"
            );
            debug_assert!(key != K::EMPTY);
            let mut at = table.home(hash);
            loop {
                let bucket = &mut table.buckets[at];
                if let Some(slot) = bucket.keys.iter().position(|&k| k == K::EMPTY || k == key) {
                    bucket.keys[slot] = key;
                    bucket.values[slot] = value;
                    break;
                }
                at = (at + 1) & (count - 1);
            }
        }
        table
    }

    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        (hash >> self.shift) as usize
    }

    /// The value of `key`, whose hash is `hash`.
    #[inline(always)]
    pub fn get(&self, key: K, hash: u64) -> Option<V> {
        if key == K::EMPTY {
            return None; // It would match the free slots.
        }
        let mut at = self.home(hash);
        loop {
            let bucket = &self.buckets[at];
            let found = K::matching(&bucket.keys, key);
            if found != 0 {
                return Some(bucket.values[found.trailing_zeros() as usize]);
            }
            // Slots fill in order: a bucket with room holds all its keys.
            if bucket.keys[N - 1] == K::EMPTY {
                return None;
            }
            at = (at + 1) & (self.buckets.len() - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(key: u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Many keys, 3N of them sharing one first bucket (the last), so that
    /// they spill into the next buckets and past the end to the first.
    fn check<K: BucketKey + std::fmt::Debug, const N: usize>(candidates: Vec<(K, u64)>) {
        let (count, crowded, buckets) = (4_000, 3 * N, 4096);
        let sizing = BucketTable::<K, u32, N>::new(buckets, []);
        let last = buckets - 1;
        let mut keys: Vec<(K, u64)> = candidates
            .iter()
            .copied()
            .filter(|&(_, hash)| sizing.home(hash) == last)
            .take(crowded)
            .collect();
        assert_eq!(keys.len(), crowded);
        let in_even_buckets = |&(_, hash): &(K, u64)| sizing.home(hash).is_multiple_of(2);
        let others: Vec<(K, u64)> = candidates.iter().copied().filter(in_even_buckets).collect();
        let absent: Vec<(K, u64)> = candidates
            .iter()
            .copied()
            .filter(|k| !in_even_buckets(k))
            .collect();
        let more: Vec<(K, u64)> = (others.into_iter())
            .filter(|k| !keys.contains(k))
            .take(count - crowded)
            .collect();
        keys.extend(more);
        let values = |i: usize| i as u32 * 7 + 1;
        let table = BucketTable::<K, u32, N>::new(
            buckets,
            keys.iter()
                .enumerate()
                .map(|(i, &(k, h))| (k, h, values(i))),
        );
        for (i, &(key, hash)) in keys.iter().enumerate() {
            assert_eq!(table.get(key, hash), Some(values(i)), "{key:?}");
        }
        for &(key, hash) in absent.iter().filter(|k| !keys.contains(k)) {
            assert_eq!(table.get(key, hash), None, "{key:?}");
        }
    }

    #[test]
    fn finds_every_key_and_no_other() {
        let keys = (1..100_000u64).map(|i| i.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 7);
        check::<u32, 8>(
            keys.clone()
                .map(|k| (k as u32 >> 1, spread(k as u32 as u64 >> 1)))
                .collect(),
        );
        check::<u64, 4>(keys.clone().map(|k| (k, spread(k))).collect());
        check::<u128, 3>(keys.map(|k| (k as u128 | 1 << 120, spread(k))).collect());
    }

    #[test]
    #[should_panic(expected = "too few")]
    fn a_table_with_no_free_slot_is_refused() {
        // Two buckets of three: the sixth key would leave absent keys to
        // search forever.
        BucketTable::<u128, u32, 3>::new(2, (1..=6u128).map(|k| (k, spread(k as u64), 0)));
    }
}
