//! The pretokens of two bytes or more that merge into one whole token of
//! the vocabulary: 76% of English pretokens and 51% of code's on the
//! benchmark corpora with GPT-2's vocabulary (single bytes, another 15% and
//! 28%, the encoder maps directly). Built once per encoder by merging each
//! token's own bytes, then only read, so every thread shares one small
//! table instead of each learning the commonest words into its own cache.
//!
//! A key packs with its length in the top byte: up to 7 bytes into a `u64`,
//! five keys and their ids to a 64-byte bucket; 8 to 15 bytes into a
//! `u128`, three to a bucket. A lookup usually reads a single cache line.

use super::bucket_table::BucketTable;
use super::merge::{HeapScratch, MergeTable};
use super::word_cache::Key;
use crate::vocab::Vocab;

pub struct WholeTokens {
    /// Keys of 2 to 7 bytes and ids. Most lookups are for these short
    /// words: GPT-2's 34,000 of them fill 512 KB, which a 1 MB L2 cache can
    /// keep, where one table of all 50,000 tokens took 2 MB (English, one
    /// thread, passes alternated in one process: 4-18% faster).
    short: BucketTable<u64, u32, 5>,
    /// Keys of 8 to 15 bytes (packed, never 0, the free slot) and ids,
    /// three to a bucket.
    long: BucketTable<u128, u32, 3>,
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
        let (mut short, mut long) = (Vec::new(), Vec::new());
        for (bytes, id) in vocab.entries() {
            if bytes.len() < 2 || vocab.is_special(id) {
                continue;
            }
            let key = Key::new(bytes);
            let Some(packed) = key.packed() else {
                continue;
            };
            merges.apply(bytes, &mut symbols, &mut ranks, &mut heap);
            if symbols != [id] {
                continue;
            }
            match key.packed_short() {
                Some(packed) => short.push((packed, key.hash(), id)),
                None => long.push((packed, key.hash(), id)),
            }
        }
        let mut filter = vec![0u64; 1 << (FILTER_BITS - 6)].into_boxed_slice();
        let hashes = short.iter().map(|e| e.1).chain(long.iter().map(|e| e.1));
        for hash in hashes {
            let bit = filter_bit(hash);
            filter[bit >> 6] |= 1 << (bit & 63);
        }
        WholeTokens {
            // Nearly full (at most 8/9 of the slots), which five slots to a
            // bucket allow: a key whose home bucket is full goes to the next.
            short: BucketTable::new((short.len() * 9 / 8).div_ceil(5), short),
            // About half full: one lookup in fifteen reads a second bucket.
            long: BucketTable::new(long.len() / 2, long),
            filter,
        }
    }

    /// The id of the token that `key` merges into, if it is one token.
    #[inline(always)]
    pub fn get(&self, key: &Key) -> Option<u32> {
        let bit = filter_bit(key.hash());
        if self.filter[bit >> 6] & 1 << (bit & 63) == 0 {
            return None;
        }
        match key.packed_short() {
            Some(packed) => self.short.get(packed, key.hash()),
            None => self.long.get(key.packed()?, key.hash()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_exactly_the_tokens_their_own_bytes_merge_into() {
        let mut entries: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        let tokens = ["ab", "bc", "abc", "abcdefghijklmnop", "bcbc", "bcbcbcbc"];
        for (i, token) in tokens.iter().enumerate() {
            entries.push((token.as_bytes().to_vec(), 256 + i as u32));
        }
        // "abc" is made from a + bc, but merging its bytes joins a + b first.
        let merges = [
            ("a", "b"),
            ("b", "c"),
            ("a", "bc"),
            ("bc", "bc"),
            ("bcbc", "bcbc"),
        ]
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
        // Up to 7 bytes in one table, 8 to 15 in the other.
        assert_eq!(get(b"bcbc"), Some(260));
        assert_eq!(get(b"bcbcbcbc"), Some(261));
        assert_eq!(get(b"bcbcbc"), None);
        assert_eq!(get(b"bcbcbcbcbc"), None);
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
