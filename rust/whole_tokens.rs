//! The pretokens of two bytes or more that merge into one whole token of
//! the vocabulary: 76% of English pretokens and 51% of code's on the
//! benchmark corpora with GPT-2's vocabulary (single bytes, another 15% and
//! 28%, the encoder maps directly). Built once per encoder by merging each
//! token's own bytes, then only read, so every thread shares one small
//! table instead of each learning the commonest words into its own cache.
//!
//! A key of up to 15 bytes packs into one `u128` with its length in the top
//! byte; three keys and their ids fill one 64-byte bucket, so a lookup
//! usually reads a single cache line.

use crate::huge_pages::HugePageAllocator;
use crate::merge::{HeapScratch, MergeTable};
use crate::vocab::Vocab;
use crate::word_cache::Key;

/// A key never packs to 0 (its length byte is at least 1): 0 marks an empty
/// slot.
const EMPTY: u128 = 0;

/// Three keys and their ids: one cache line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket {
    keys: [u128; 3],
    ids: [u32; 3],
}

pub struct WholeTokens {
    buckets: allocator_api2::vec::Vec<Bucket, HugePageAllocator>,
    shift: u32,
    /// One bit per value of a key's hash's low bits, set for the keys in
    /// the table: most words that are not tokens are turned away by a
    /// small bitmap that stays in the CPU's cache.
    filter: Box<[u64]>,
}

const FILTER_BITS: u32 = 19;

#[inline(always)]
fn filter_bit(hash: u64) -> usize {
    hash as usize & ((1 << FILTER_BITS) - 1)
}

impl WholeTokens {
    /// Every regular token of 2 to 15 bytes whose bytes, merged, give back
    /// exactly that token (a vocabulary may hold tokens that its merges
    /// never make from their own bytes).
    pub fn new(vocab: &Vocab, merges: &MergeTable) -> Self {
        let (mut symbols, mut ranks, mut heap) = (Vec::new(), Vec::new(), HeapScratch::default());
        let mut found = Vec::new();
        for (bytes, id) in vocab.entries() {
            let key = Key::new(bytes);
            let Some(packed) = key.packed() else {
                continue;
            };
            if bytes.len() < 2 || vocab.is_special(id) {
                continue;
            }
            merges.apply(bytes, &mut symbols, &mut ranks, &mut heap);
            if symbols == [id] {
                found.push((packed, key.hash(), id));
            }
        }
        // About half full: one lookup in fifteen reads a second bucket.
        let buckets = (found.len() / 2).next_power_of_two().max(2);
        let mut table = WholeTokens {
            buckets: allocator_api2::vec::from_elem_in(
                Bucket::default(),
                buckets,
                HugePageAllocator,
            ),
            shift: 64 - buckets.trailing_zeros(),
            filter: vec![0; 1 << (FILTER_BITS - 6)].into_boxed_slice(),
        };
        for (packed, hash, id) in found {
            table.insert(packed, hash, id);
        }
        table
    }

    fn insert(&mut self, packed: u128, hash: u64, id: u32) {
        let bit = filter_bit(hash);
        self.filter[bit >> 6] |= 1 << (bit & 63);
        let mask = self.buckets.len() - 1;
        let mut at = self.home(hash);
        loop {
            let bucket = &mut self.buckets[at];
            if let Some(slot) = bucket.keys.iter().position(|&k| k == EMPTY) {
                bucket.keys[slot] = packed;
                bucket.ids[slot] = id;
                return;
            }
            at = (at + 1) & mask;
        }
    }

    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        (hash >> self.shift) as usize
    }

    /// The id of the token that `key` merges into, if it is one token.
    #[inline(always)]
    pub fn get(&self, key: &Key) -> Option<u32> {
        let bit = filter_bit(key.hash());
        if self.filter[bit >> 6] & 1 << (bit & 63) == 0 {
            return None;
        }
        let packed = key.packed()?;
        let mask = self.buckets.len() - 1;
        let mut at = self.home(key.hash());
        loop {
            let bucket = &self.buckets[at];
            // All three compared, without a branch per slot.
            let found = (bucket.keys.iter().enumerate())
                .fold(0u32, |found, (i, &k)| found | ((k == packed) as u32) << i);
            if found != 0 {
                return Some(bucket.ids[found.trailing_zeros() as usize]);
            }
            if bucket.keys[2] == EMPTY {
                return None;
            }
            at = (at + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_exactly_the_tokens_their_own_bytes_merge_into() {
        let mut entries: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        for (i, token) in ["ab", "bc", "abc", "abcdefghijklmnop"].iter().enumerate() {
            entries.push((token.as_bytes().to_vec(), 256 + i as u32));
        }
        // "abc" is made from a + bc, but merging its bytes joins a + b first.
        let merges = [("a", "b"), ("b", "c"), ("a", "bc")]
            .iter()
            .map(|(l, r)| (l.as_bytes().to_vec(), r.as_bytes().to_vec()))
            .collect();
        let vocab = Vocab::new(entries, merges, Vec::new()).unwrap();
        let merges = MergeTable::new(&vocab);
        let table = WholeTokens::new(&vocab, &merges);
        let get = |bytes: &[u8]| table.get(&Key::new(bytes));
        assert_eq!(get(b"ab"), Some(256));
        assert_eq!(get(b"bc"), Some(257));
        assert_eq!(get(b"abc"), None);
        assert_eq!(get(b"a"), None);
        assert_eq!(get(b""), None);
        assert_eq!(get(b"ab\0"), None);
        assert_eq!(get(b"abcdefghijklmnop"), None);
    }

    #[test]
    fn finds_every_whole_token_of_a_full_vocabulary() {
        // Many keys, so that buckets overflow into their neighbours.
        let mut entries: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        let mut merges = Vec::new();
        for first in b'a'..=b'z' {
            for second in 0..=255u8 {
                let id = entries.len() as u32;
                entries.push((vec![first, second], id));
                merges.push((vec![first], vec![second]));
            }
        }
        let vocab = Vocab::new(entries.clone(), merges, Vec::new()).unwrap();
        let table = WholeTokens::new(&vocab, &MergeTable::new(&vocab));
        for (bytes, id) in &entries[256..] {
            assert_eq!(table.get(&Key::new(bytes)), Some(*id), "{bytes:?}");
        }
        assert_eq!(table.get(&Key::new(&[0, b'a'])), None);
    }
}
