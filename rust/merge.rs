//! Stage 2a: the bytes of one pretoken -> ids, by applying merges
//! lowest-rank-first (leftmost first among equal ranks), as GPT-2 does.

use crate::vocab::Vocab;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Pieces longer than this (in bytes) merge with a heap, O(n log n); shorter
/// ones with a plain scan, which is faster when n is small.
const HEAP_THRESHOLD: usize = 96;

const NO_MERGE: u64 = u64::MAX;

/// (left id, right id) -> rank and result, packed so that comparing packed
/// values compares ranks.
#[derive(Debug, Clone)]
pub struct MergeTable {
    pairs: FxHashMap<u64, u64>,
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
        let mut pairs =
            FxHashMap::with_capacity_and_hasher(vocab.merges().len(), Default::default());
        for (rank, &(left, right, result)) in vocab.merges().iter().enumerate() {
            pairs.insert(pair_key(left, right), ((rank as u64) << 32) | result as u64);
        }
        MergeTable { pairs }
    }

    #[inline]
    fn lookup(&self, left: u32, right: u32) -> u64 {
        self.pairs
            .get(&pair_key(left, right))
            .copied()
            .unwrap_or(NO_MERGE)
    }

    /// Merges `symbols` (initially one id per byte) in place; `ranks` is
    /// scratch space, passed in so that callers can reuse it.
    pub fn apply(&self, symbols: &mut Vec<u32>, ranks: &mut Vec<u64>) {
        if symbols.len() < 2 {
            return;
        }
        if symbols.len() > HEAP_THRESHOLD {
            self.apply_with_heap(symbols);
        } else {
            self.apply_by_scan(symbols, ranks);
        }
    }

    fn apply_by_scan(&self, symbols: &mut Vec<u32>, ranks: &mut Vec<u64>) {
        ranks.clear();
        ranks.extend(symbols.windows(2).map(|w| self.lookup(w[0], w[1])));
        loop {
            let mut best = NO_MERGE;
            let mut at = 0;
            for (i, &r) in ranks.iter().enumerate() {
                if r < best {
                    best = r;
                    at = i;
                }
            }
            if best == NO_MERGE {
                return;
            }
            symbols[at] = result_of(best);
            symbols.remove(at + 1);
            ranks.remove(at);
            if at + 1 < symbols.len() {
                ranks[at] = self.lookup(symbols[at], symbols[at + 1]);
            }
            if at > 0 {
                ranks[at - 1] = self.lookup(symbols[at - 1], symbols[at]);
            }
        }
    }

    /// The same merges as the scan, with a heap of candidate pairs and a
    /// linked list of live symbols; stale heap entries are skipped on pop.
    fn apply_with_heap(&self, symbols: &mut Vec<u32>) {
        const END: u32 = u32::MAX;
        let n = symbols.len();
        if n < 2 {
            return;
        }
        let mut next: Vec<u32> = (1..=n as u32).collect();
        next[n - 1] = END;
        let mut prev: Vec<u32> = (0..n as u32).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::with_capacity(n);
        for i in 0..n - 1 {
            let packed = self.lookup(symbols[i], symbols[i + 1]);
            if packed != NO_MERGE {
                heap.push(Reverse((rank_of(packed), i as u32)));
            }
        }
        while let Some(Reverse((rank, i))) = heap.pop() {
            let i = i as usize;
            if !alive[i] || next[i] == END {
                continue;
            }
            let j = next[i] as usize;
            let packed = self.lookup(symbols[i], symbols[j]);
            if packed == NO_MERGE || rank_of(packed) != rank {
                continue;
            }
            symbols[i] = result_of(packed);
            alive[j] = false;
            next[i] = next[j];
            if next[j] != END {
                prev[next[j] as usize] = i as u32;
            }
            if prev[i] != END {
                let p = prev[i] as usize;
                let left = self.lookup(symbols[p], symbols[i]);
                if left != NO_MERGE {
                    heap.push(Reverse((rank_of(left), p as u32)));
                }
            }
            if next[i] != END {
                let right = self.lookup(symbols[i], symbols[next[i] as usize]);
                if right != NO_MERGE {
                    heap.push(Reverse((rank_of(right), i as u32)));
                }
            }
        }
        let mut write = 0;
        for read in 0..n {
            if alive[read] {
                symbols[write] = symbols[read];
                write += 1;
            }
        }
        symbols.truncate(write);
    }
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
        let mut symbols: Vec<u32> = text.bytes().map(u32::from).collect();
        if heap {
            table.apply_with_heap(&mut symbols);
        } else {
            table.apply_by_scan(&mut symbols, &mut Vec::new());
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
    fn heap_and_scan_agree() {
        let vocab = toy_vocab(&[
            ("a", "b"),
            ("b", "a"),
            ("ab", "a"),
            ("a", "a"),
            ("aa", "b"),
            ("ba", "ab"),
            ("aa", "aa"),
            ("b", "b"),
        ]);
        let table = MergeTable::new(&vocab);
        let mut state = 0x2545F4914F6CDD1Du64;
        for len in 0..200 {
            for _ in 0..20 {
                let text: String = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        if state.is_multiple_of(3) {
                            'b'
                        } else {
                            'a'
                        }
                    })
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
