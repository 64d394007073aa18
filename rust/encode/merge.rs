//! Stage 2a: the bytes of one pretoken -> ids, by applying merges
//! lowest-rank-first (leftmost first among equal ranks), as GPT-2 does.

use super::bucket_table::BucketTable;
use super::radix_heap::RadixHeap;
use crate::vocab::Vocab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Pieces longer than this (in bytes) merge with a heap, O(n log n); shorter
/// ones with a plain scan, which is faster when n is small. 32 rather than
/// 16 covers most words of two- and three-byte scripts (Cyrillic, Greek,
/// Devanagari, Thai): about 4% faster on the multilingual corpus, the same
/// on Korean (one core, Rust).
const HEAP_THRESHOLD: usize = 32;

/// Pieces longer than this (in bytes) merge with a radix heap when the
/// vocabulary allows: a binary heap of their pairs outgrows the CPU's caches
/// (GPT-2, one letter repeated: 134 against 68 ns a byte at 4 MB), while
/// for shorter pieces it is the faster queue (the multilingual corpus, whose
/// long words are mostly under a kilobyte, was 5% slower with the radix heap
/// for every piece over 32 bytes).
const RADIX_THRESHOLD: usize = 1024;

const NO_MERGE: u64 = u64::MAX;

/// A pair key's hash for [`BucketTable`]: one multiply spreads it.
#[inline(always)]
fn pair_hash(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Buckets per merge: 5/16 of a bucket's slots per pair (twice or half as
/// many buckets merged 5-40% slower on the benchmark corpora; probing slot
/// by slot, 20-35% slower).
fn pair_buckets(merges: usize, per_bucket: usize) -> usize {
    merges * 5 / (2 * per_bucket)
}

/// (left id, right id) -> rank and result, as `rank << 32 | result`.
#[derive(Debug, Clone)]
enum PairTable {
    /// Ids and ranks below 2^16 - 1 (GPT-2, RoBERTa): 16-bit halves, eight
    /// pairs to a cache line instead of four, so more of the table stays in
    /// the CPU's caches on text that misses the word cache often.
    Narrow(BucketTable<u32, u32, 8>),
    Wide(BucketTable<u64, u64, 4>),
}

impl PairTable {
    /// `merges` are (left, right, result) in rank order.
    fn new(merges: &[(u32, u32, u32)]) -> Self {
        let largest = merges
            .iter()
            .map(|&(left, right, result)| left.max(right).max(result))
            .max()
            .unwrap_or(0);
        if largest < 0xFFFF && merges.len() < 0xFFFF {
            let entries = merges
                .iter()
                .enumerate()
                .map(|(rank, &(left, right, result))| {
                    let key = left << 16 | right;
                    (key, pair_hash(key as u64), (rank as u32) << 16 | result)
                });
            PairTable::Narrow(BucketTable::new(pair_buckets(merges.len(), 8), entries))
        } else {
            Self::wide(merges)
        }
    }

    /// The table for any ids.
    fn wide(merges: &[(u32, u32, u32)]) -> Self {
        let entries = merges
            .iter()
            .enumerate()
            .map(|(rank, &(left, right, result))| {
                let key = pair_key(left, right);
                (key, pair_hash(key), (rank as u64) << 32 | result as u64)
            });
        PairTable::Wide(BucketTable::new(pair_buckets(merges.len(), 4), entries))
    }

    #[inline(always)]
    fn get(&self, left: u32, right: u32) -> u64 {
        match self {
            PairTable::Narrow(table) => {
                // Ids here are below 2^16 - 1 whenever the pair can merge; a
                // larger one (a special token) has no merge, and its key
                // cannot be that of a real pair.
                if (left | right) > 0xFFFF {
                    return NO_MERGE;
                }
                let key = left << 16 | right;
                match table.get(key, pair_hash(key as u64)) {
                    None => NO_MERGE,
                    Some(packed) => ((packed >> 16) as u64) << 32 | (packed & 0xFFFF) as u64,
                }
            }
            PairTable::Wide(table) => {
                let key = pair_key(left, right);
                table.get(key, pair_hash(key)).unwrap_or(NO_MERGE)
            }
        }
    }
}

/// Buffers for merging long pieces, kept between pieces to avoid allocating.
#[derive(Debug, Default)]
pub struct HeapScratch {
    next: Vec<u32>,
    prev: Vec<u32>,
    radix: RadixHeap,
    binary: BinaryHeap<Reverse<u64>>,
}

/// (left id, right id) -> rank and result, packed so that comparing packed
/// values compares ranks.
#[derive(Debug, Clone)]
pub struct MergeTable {
    pairs: PairTable,
    byte_ids: [u32; 256],
    /// The merge of each pair of bytes, indexed directly: the first round of
    /// every piece looks up only these.
    byte_pairs: Box<[u64]>,
    /// See [`parts_made_first`].
    parts_made_first: bool,
}

#[inline]
fn pair_key(left: u32, right: u32) -> u64 {
    ((left as u64) << 32) | right as u64
}

#[inline]
fn rank_of(packed: u64) -> u32 {
    (packed >> 32) as u32
}

#[inline]
fn result_of(packed: u64) -> u32 {
    packed as u32
}

impl MergeTable {
    pub fn new(vocab: &Vocab) -> Self {
        let pairs = PairTable::new(vocab.merges());
        let byte_ids: [u32; 256] = std::array::from_fn(|b| vocab.byte_id(b as u8));
        let byte_pairs = (0..1usize << 16)
            .map(|i| pairs.get(byte_ids[i >> 8], byte_ids[i & 0xFF]))
            .collect();
        MergeTable {
            pairs,
            byte_ids,
            byte_pairs,
            parts_made_first: parts_made_first(vocab.merges()),
        }
    }

    #[inline(always)]
    fn lookup(&self, left: u32, right: u32) -> u64 {
        self.pairs.get(left, right)
    }

    #[inline(always)]
    fn byte_pair(&self, left: u8, right: u8) -> u64 {
        self.byte_pairs[(left as usize) << 8 | right as usize]
    }

    /// The ids of `piece`, merged, in `symbols`; `ranks` and `heap` are
    /// scratch space. All are passed in so that callers can reuse them.
    pub fn apply(
        &self,
        piece: &[u8],
        symbols: &mut Vec<u32>,
        ranks: &mut Vec<u64>,
        heap: &mut HeapScratch,
    ) {
        symbols.clear();
        symbols.extend(piece.iter().map(|&b| self.byte_ids[b as usize]));
        if piece.len() > HEAP_THRESHOLD {
            self.apply_with_heap(piece, symbols, heap);
        } else if piece.len() > 1 {
            self.apply_by_scan(piece, symbols, ranks);
        }
    }

    fn apply_by_scan(&self, piece: &[u8], symbols: &mut Vec<u32>, ranks: &mut Vec<u64>) {
        ranks.clear();
        ranks.extend(piece.windows(2).map(|w| self.byte_pair(w[0], w[1])));
        let mut len = symbols.len();
        loop {
            let mut best = NO_MERGE;
            let mut at = 0;
            for (i, &r) in ranks[..len - 1].iter().enumerate() {
                if r < best {
                    best = r;
                    at = i;
                }
            }
            if best == NO_MERGE {
                break;
            }
            // Symbols `at` and `at + 1` become one; later ones move left.
            // Plain loops: the moves are short and `memmove` calls cost more.
            symbols[at] = result_of(best);
            for k in at + 1..len - 1 {
                symbols[k] = symbols[k + 1];
            }
            for k in at + 1..len - 2 {
                ranks[k] = ranks[k + 1];
            }
            len -= 1;
            if at + 1 < len {
                ranks[at] = self.lookup(symbols[at], symbols[at + 1]);
            }
            if at > 0 {
                ranks[at - 1] = self.lookup(symbols[at - 1], symbols[at]);
            }
            if len == 1 {
                break;
            }
        }
        symbols.truncate(len);
    }

    /// The same merges as the scan, with a queue of candidate pairs: a radix
    /// heap for pieces over [`RADIX_THRESHOLD`] bytes when the vocabulary
    /// allows (see [`parts_made_first`]; near-linear time), else a binary
    /// heap (O(n log n)).
    fn apply_with_heap(&self, piece: &[u8], symbols: &mut Vec<u32>, scratch: &mut HeapScratch) {
        let HeapScratch {
            next,
            prev,
            radix,
            binary,
        } = scratch;
        if self.parts_made_first && piece.len() > RADIX_THRESHOLD {
            self.merge_long(piece, symbols, next, prev, radix);
        } else {
            self.merge_long(piece, symbols, next, prev, binary);
        }
    }

    /// Merges `symbols` (the bytes of `piece`) with a linked list of live
    /// symbols and a queue of candidate pairs keyed `rank << 32 | position`;
    /// a stale entry (its pair changed since) is skipped when popped.
    fn merge_long(
        &self,
        piece: &[u8],
        symbols: &mut Vec<u32>,
        next: &mut Vec<u32>,
        prev: &mut Vec<u32>,
        queue: &mut impl MinQueue,
    ) {
        const END: u32 = u32::MAX;
        const DEAD: u32 = u32::MAX;
        let n = symbols.len();
        next.clear();
        next.extend(1..=n as u32);
        next[n - 1] = END;
        prev.clear();
        prev.extend((0..n as u32).map(|i| i.wrapping_sub(1)));
        queue.refill((0..n - 1).filter_map(|i| {
            let packed = self.byte_pair(piece[i], piece[i + 1]);
            (packed != NO_MERGE).then_some((packed & !0xFFFF_FFFF) | i as u64)
        }));
        while let Some(key) = queue.pop() {
            let i = (key & 0xFFFF_FFFF) as usize;
            if symbols[i] == DEAD || next[i] == END {
                continue;
            }
            let j = next[i] as usize;
            let packed = self.lookup(symbols[i], symbols[j]);
            if packed == NO_MERGE || rank_of(packed) != (key >> 32) as u32 {
                continue;
            }
            symbols[i] = result_of(packed);
            symbols[j] = DEAD;
            next[i] = next[j];
            if next[j] != END {
                prev[next[j] as usize] = i as u32;
            }
            if prev[i] != END {
                let p = prev[i] as usize;
                let left = self.lookup(symbols[p], symbols[i]);
                if left != NO_MERGE {
                    queue.push((left & !0xFFFF_FFFF) | p as u64);
                }
            }
            if next[i] != END {
                let right = self.lookup(symbols[i], symbols[next[i] as usize]);
                if right != NO_MERGE {
                    queue.push((right & !0xFFFF_FFFF) | i as u64);
                }
            }
        }
        symbols.retain(|&s| s != DEAD);
    }
}

/// What long pieces merge with: the least key first.
trait MinQueue {
    /// Empties the queue and adds `keys`.
    fn refill(&mut self, keys: impl Iterator<Item = u64>);
    fn push(&mut self, key: u64);
    fn pop(&mut self) -> Option<u64>;
}

impl MinQueue for RadixHeap {
    fn refill(&mut self, keys: impl Iterator<Item = u64>) {
        self.clear();
        keys.for_each(|key| self.push(key));
    }

    fn push(&mut self, key: u64) {
        RadixHeap::push(self, key);
    }

    fn pop(&mut self) -> Option<u64> {
        RadixHeap::pop(self)
    }
}

impl MinQueue for BinaryHeap<Reverse<u64>> {
    /// Heapifies all keys at once (O(n)), in the heap's own buffer.
    fn refill(&mut self, keys: impl Iterator<Item = u64>) {
        let mut buffer = std::mem::take(self).into_vec();
        buffer.clear();
        buffer.extend(keys.map(Reverse));
        *self = BinaryHeap::from(buffer);
    }

    fn push(&mut self, key: u64) {
        BinaryHeap::push(self, Reverse(key));
    }

    fn pop(&mut self) -> Option<u64> {
        BinaryHeap::pop(self).map(|Reverse(key)| key)
    }
}

/// Whether every merge comes after the merges that make its parts (true of
/// any vocabulary that BPE trained). Then a merge only creates pairs of
/// higher rank than its own, and long pieces can merge with a monotone
/// queue ([`RadixHeap`]); other vocabularies take a binary heap.
fn parts_made_first(merges: &[(u32, u32, u32)]) -> bool {
    let largest = merges
        .iter()
        .map(|&(left, right, result)| left.max(right).max(result))
        .max()
        .unwrap_or(0) as usize;
    // The last rank that makes each token (ranks ascend, so the last is the largest).
    let mut made_at = vec![None; largest + 1];
    for (rank, &(_, _, result)) in merges.iter().enumerate() {
        made_at[result as usize] = Some(rank);
    }
    let made_before = |token: u32, rank: usize| made_at[token as usize].is_none_or(|at| at < rank);
    merges
        .iter()
        .enumerate()
        .all(|(rank, &(left, right, _))| made_before(left, rank) && made_before(right, rank))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Vocab;

    /// Bytes 0..=255 plus merges a+b, ab+c, b+c, aa... built from `merges`.
    fn toy_vocab(merges: &[(&str, &str)]) -> Vocab {
        let mut entries: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        for (left, right) in merges {
            let joined = format!("{left}{right}").into_bytes();
            if !entries.iter().any(|(t, _)| *t == joined) {
                let id = entries.len() as u32;
                entries.push((joined, id));
            }
        }
        let merges = merges
            .iter()
            .map(|(l, r)| (l.as_bytes().to_vec(), r.as_bytes().to_vec()))
            .collect();
        Vocab::new(entries, merges, vec![]).unwrap()
    }

    fn merged(table: &MergeTable, text: &str, heap: bool) -> Vec<u32> {
        let piece = text.as_bytes();
        let mut symbols: Vec<u32> = piece.iter().map(|&b| u32::from(b)).collect();
        if heap {
            if piece.len() > 1 {
                table.apply_with_heap(piece, &mut symbols, &mut HeapScratch::default());
            }
        } else if piece.len() > 1 {
            table.apply_by_scan(piece, &mut symbols, &mut Vec::new());
        }
        symbols
    }

    #[test]
    fn lowest_rank_first_and_leftmost() {
        let vocab = toy_vocab(&[("b", "c"), ("a", "b"), ("a", "a"), ("aa", "a")]);
        let table = MergeTable::new(&vocab);
        let ab = vocab.id_of(b"ab").unwrap();
        let bc = vocab.id_of(b"bc").unwrap();
        let aa = vocab.id_of(b"aa").unwrap();
        let aaa = vocab.id_of(b"aaa").unwrap();
        // "bc" outranks "ab", so "abc" becomes a + bc.
        assert_eq!(merged(&table, "abc", false), vec![b'a' as u32, bc]);
        assert_eq!(merged(&table, "abab", false), vec![ab, ab]);
        // Equal ranks overlap: the leftmost pair merges first.
        assert_eq!(merged(&table, "aaa", false), vec![aaa]);
        assert_eq!(merged(&table, "aaaa", false), vec![aa, aa]);
        assert_eq!(merged(&table, "aaaaa", false), vec![aa, aaa]);
    }

    #[test]
    fn narrow_and_wide_pair_tables_agree() {
        let vocab = toy_vocab(&[("a", "b"), ("b", "c"), ("ab", "c"), ("c", "c")]);
        let narrow = PairTable::new(vocab.merges());
        assert!(matches!(narrow, PairTable::Narrow(_)));
        let wide = PairTable::wide(vocab.merges());
        let ids = (0..vocab.size() as u32 + 2).chain([0xFFFE, 0xFFFF, 0x10000, u32::MAX]);
        for left in ids.clone() {
            for right in ids.clone() {
                assert_eq!(
                    narrow.get(left, right),
                    wide.get(left, right),
                    "{left} {right}"
                );
            }
        }
        // Ids of 2^16 and above need the wide table.
        let big = [(0, 0x1_0000, 3)];
        assert!(matches!(PairTable::new(&big), PairTable::Wide(_)));
        assert_eq!(PairTable::new(&big).get(0, 0x1_0000), 3);
    }

    #[test]
    fn heap_and_scan_agree() {
        // Every merge after the merges of its parts: long pieces take the
        // radix heap.
        let ordered = toy_vocab(&[
            ("a", "b"),
            ("b", "a"),
            ("ab", "a"),
            ("a", "a"),
            ("aa", "b"),
            ("ba", "ab"),
            ("aa", "aa"),
            ("b", "b"),
        ]);
        // "aab" and "ba" are merged before the merges that make their parts
        // ("aa" from a + a, "ab" from a + b): the binary heap.
        let unordered = toy_vocab(&[
            ("aa", "b"),
            ("b", "ab"),
            ("a", "b"),
            ("a", "a"),
            ("b", "a"),
            ("aab", "a"),
            ("ba", "ba"),
        ]);
        for (vocab, monotone) in [(ordered, true), (unordered, false)] {
            let table = MergeTable::new(&vocab);
            assert_eq!(table.parts_made_first, monotone);
            let mut random = crate::testing::random_stream(0x2545F4914F6CDD1D);
            // Pieces over RADIX_THRESHOLD bytes take the radix heap.
            for len in (0..200).chain([RADIX_THRESHOLD + 1, 1500, 2500]) {
                for _ in 0..if len < 200 { 20 } else { 3 } {
                    let text: String = (0..len)
                        .map(|_| if random().is_multiple_of(3) { 'b' } else { 'a' })
                        .collect();
                    assert_eq!(
                        merged(&table, &text, true),
                        merged(&table, &text, false),
                        "{text}"
                    );
                }
            }
        }
    }
}
