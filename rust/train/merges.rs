//! Training stage 2: word counts -> merges.
//!
//! The bookkeeping is Hugging Face's BpeTrainer's, so that the same counts
//! give the same merges: pair counts updated incrementally after each merge,
//! an index from each pair to the words that contain it, and a lazy
//! max-heap (higher count first, then the smaller pair of ids). Words live in
//! one flat arena and are rewritten in place, so a merge costs time linear in
//! the words it touches, however long they are.

use rayon::prelude::*;
use rayon::ThreadPool;
use rustc_hash::FxHashMap;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Limits of the merge loop.
#[derive(Debug, Clone)]
pub struct MergeLimits {
    /// Stop when this many distinct tokens exist (specials included).
    pub vocab_size: usize,
    /// Stop when the most frequent pair occurs fewer times than this.
    pub min_frequency: u64,
    /// Never form a token longer than this many bytes.
    pub max_token_length: Option<usize>,
}

/// What training learned: every token's bytes by id, and the merges in the
/// order they were made as (left, right, result) ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learned {
    pub tokens: Vec<Vec<u8>>,
    pub merges: Vec<(u32, u32, u32)>,
}

/// A pair packed as `left << 32 | right`, so that comparing packed pairs
/// compares (left, right) lexicographically.
type Pair = u64;

fn pack(left: u32, right: u32) -> Pair {
    (left as u64) << 32 | right as u64
}

fn unpack(pair: Pair) -> (u32, u32) {
    ((pair >> 32) as u32, pair as u32)
}

/// A heap entry: a pair, its count when pushed, and the words that had it
/// then. A pair can have several entries (one per merge step that created new
/// occurrences of it); `seq` orders those oldest first.
struct Candidate {
    count: u64,
    pair: Pair,
    seq: u64,
    words: Vec<u32>,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.count
            .cmp(&other.count)
            .then_with(|| other.pair.cmp(&self.pair))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// All words as symbol ids in one arena: word `w` is
/// `symbols[info[w].start..][..info[w].len]`; merging shortens `len`.
pub struct Words {
    symbols: Vec<u32>,
    info: Vec<WordInfo>,
}

/// Where a word is and how often it occurs, together so that visiting a
/// word costs one cache miss for its bookkeeping.
#[derive(Clone, Copy)]
struct WordInfo {
    start: usize,
    len: u32,
    count: u64,
}

impl Words {
    /// The words as symbols that are still their bytes (`learn_words` gives
    /// them their ids), so the counts they come from can be freed before the
    /// merge loop's own tables grow.
    pub fn from_counts<'a>(word_counts: impl IntoIterator<Item = (&'a [u8], u64)>) -> Self {
        let mut words = Words {
            symbols: Vec::new(),
            info: Vec::new(),
        };
        for (bytes, count) in word_counts {
            words.info.push(WordInfo {
                start: words.symbols.len(),
                len: bytes.len() as u32,
                count,
            });
            words.symbols.extend(bytes.iter().map(|&b| u32::from(b)));
        }
        words
    }

    fn symbols(&self, info: WordInfo) -> &[u32] {
        &self.symbols[info.start..info.start + info.len as usize]
    }
}

/// The vocabulary as it grows: bytes by id and the id of each token's bytes.
struct Tokens {
    bytes: Vec<Vec<u8>>,
    ids: FxHashMap<Vec<u8>, u32>,
    /// Distinct tokens so far (an id can be given to a special token only).
    distinct: usize,
}

impl Tokens {
    /// The id of `bytes`, adding it if new (HF reuses the id of an existing
    /// token, specials included, when a merge spells it again).
    fn intern(&mut self, bytes: Vec<u8>) -> u32 {
        if let Some(&id) = self.ids.get(&bytes) {
            return id;
        }
        let id = self.bytes.len() as u32;
        self.ids.insert(bytes.clone(), id);
        self.bytes.push(bytes);
        self.distinct += 1;
        id
    }
}

/// Learns merges from word counts (see [`learn_words`]).
pub fn learn<'a>(
    word_counts: impl IntoIterator<Item = (&'a [u8], u64)>,
    specials: &[String],
    limits: &MergeLimits,
    pool: &ThreadPool,
    progress: &mut dyn FnMut(usize) -> bool,
) -> Learned {
    learn_words(
        Words::from_counts(word_counts),
        specials,
        limits,
        pool,
        progress,
    )
}

/// Learns merges from words. `specials` get the first ids, then the 256
/// bytes in the code-point order of GPT-2's byte alphabet, then merged
/// tokens in the order they are made. `progress` is called with the number
/// of merges after each merge; returning `false` stops training there.
/// A merge that rewrites many words shares them out on `pool` (run the loop
/// on one of its threads: handing the work over from outside costs more).
pub fn learn_words(
    mut words: Words,
    specials: &[String],
    limits: &MergeLimits,
    pool: &ThreadPool,
    progress: &mut dyn FnMut(usize) -> bool,
) -> Learned {
    let mut tokens = Tokens {
        bytes: Vec::new(),
        ids: FxHashMap::default(),
        distinct: 0,
    };
    for special in specials {
        tokens.intern(special.as_bytes().to_vec());
    }
    let mut byte_ids = [0u32; 256];
    for byte in crate::byte_alphabet::bytes_in_char_order() {
        byte_ids[byte as usize] = tokens.intern(vec![byte]);
    }
    for symbol in &mut words.symbols {
        *symbol = byte_ids[*symbol as usize];
    }

    let mut state = MergeState {
        token_lens: tokens.bytes.iter().map(|t| t.len()).collect(),
        max_len: limits.max_token_length.unwrap_or(usize::MAX),
        pair_counts: FxHashMap::default(),
        new_occurrences: FxHashMap::default(),
    };
    let mut heap = state.initial_candidates(&words);
    let mut seq = heap.len() as u64;
    let mut merges = Vec::new();

    while tokens.distinct < limits.vocab_size {
        let Some(mut top) = heap.pop() else { break };
        let current = state.count(top.pair);
        if top.count != current {
            // A stale entry: requeue it at its current count.
            top.count = current;
            heap.push(top);
            continue;
        }
        if top.count < 1 || top.count < limits.min_frequency {
            break;
        }
        let (left, right) = unpack(top.pair);
        let mut joined = tokens.bytes[left as usize].clone();
        joined.extend_from_slice(&tokens.bytes[right as usize]);
        let id = tokens.intern(joined);
        if id as usize == state.token_lens.len() {
            state.token_lens.push(tokens.bytes[id as usize].len());
        }
        merges.push((left, right, id));

        state.merge_everywhere(&mut words, &top.words, (left, right), id, pool);
        for (pair, words_with_pair) in state.new_occurrences.drain() {
            let count = state.pair_counts.get(&pair).copied().unwrap_or(0);
            if count > 0 {
                heap.push(Candidate {
                    count: count as u64,
                    pair,
                    seq,
                    words: words_with_pair,
                });
                seq += 1;
            }
        }
        if !progress(merges.len()) {
            break;
        }
    }

    Learned {
        tokens: tokens.bytes,
        merges,
    }
}

struct MergeState {
    token_lens: Vec<usize>,
    max_len: usize,
    /// Occurrences of each pair weighted by word count. Signed and 64-bit:
    /// deltas are applied one at a time, and large corpora overflow 32 bits.
    pair_counts: FxHashMap<Pair, i64>,
    /// Pairs that gained occurrences in this merge step, with those words.
    new_occurrences: FxHashMap<Pair, Vec<u32>>,
}

/// Words merged per task when a merge touches many words.
const WORDS_PER_TASK: usize = 4096;

impl MergeState {
    /// Only pairs that could become a token within `max_token_length` are
    /// counted at all, so counts never go negative.
    fn allowed(&self, left: u32, right: u32) -> bool {
        self.token_lens[left as usize] + self.token_lens[right as usize] <= self.max_len
    }

    fn count(&self, pair: Pair) -> u64 {
        self.pair_counts.get(&pair).copied().unwrap_or(0).max(0) as u64
    }

    fn initial_candidates(&mut self, words: &Words) -> BinaryHeap<Candidate> {
        let mut where_found: FxHashMap<Pair, Vec<u32>> = FxHashMap::default();
        for (w, &info) in words.info.iter().enumerate() {
            for window in words.symbols(info).windows(2) {
                if !self.allowed(window[0], window[1]) {
                    continue;
                }
                let pair = pack(window[0], window[1]);
                *self.pair_counts.entry(pair).or_default() += info.count as i64;
                let found = where_found.entry(pair).or_default();
                if found.last() != Some(&(w as u32)) {
                    found.push(w as u32);
                }
            }
        }
        let mut candidates: Vec<Candidate> = where_found
            .into_iter()
            .filter_map(|(pair, words)| {
                let count = self.pair_counts[&pair];
                (count > 0).then_some(Candidate {
                    count: count as u64,
                    pair,
                    seq: 0,
                    words,
                })
            })
            .collect();
        // Distinct pairs never tie on (count, pair); numbering them in pair
        // order just makes the heap's contents independent of hash order.
        candidates.sort_unstable_by_key(|c| c.pair);
        for (seq, candidate) in candidates.iter_mut().enumerate() {
            candidate.seq = seq as u64;
        }
        BinaryHeap::from(candidates)
    }

    /// Merges `pair` into `merged` in each of `chosen` words and updates the
    /// counts. Words are rewritten in parallel tasks that only read the
    /// arena; their results are applied in task order, so the outcome does
    /// not depend on the thread count. Deltas are summed per task first: a
    /// merge touching 100,000 words changes only a few hundred distinct pairs.
    fn merge_everywhere(
        &mut self,
        words: &mut Words,
        chosen: &[u32],
        pair: (u32, u32),
        merged: u32,
        pool: &ThreadPool,
    ) {
        let this = &*self;
        let rewrite = |task: &[u32]| this.rewrite(words, task, pair, merged);
        let tasks: Vec<Rewritten> = if chosen.len() > WORDS_PER_TASK {
            pool.install(|| chosen.par_chunks(WORDS_PER_TASK).map(rewrite).collect())
        } else {
            vec![rewrite(chosen)]
        };
        for task in tasks {
            let mut symbols = task.symbols.as_slice();
            for (word, len) in task.words {
                let info = &mut words.info[word as usize];
                let (head, rest) = symbols.split_at(len as usize);
                words.symbols[info.start..info.start + len as usize].copy_from_slice(head);
                info.len = len;
                symbols = rest;
            }
            for (pair, delta) in task.deltas {
                *self.pair_counts.entry(pair).or_default() += delta;
            }
            for (pair, found) in task.created {
                self.new_occurrences.entry(pair).or_default().extend(found);
            }
        }
    }

    /// The merged form of some words, without touching them, and how the
    /// pair counts change. Each occurrence is rewritten leftmost first without
    /// overlaps, as in HF: the pairs it broke lose the word's count and the
    /// pairs it made gain it. The merged pair's own count is left as it was:
    /// it has no entry left in the heap unless later merges create it again.
    fn rewrite(&self, words: &Words, task: &[u32], pair: (u32, u32), merged: u32) -> Rewritten {
        let (left, right) = pair;
        let mut out = Rewritten::default();
        let change = |out: &mut Rewritten, a: u32, b: u32, delta: i64, word: u32| {
            if !self.allowed(a, b) {
                return;
            }
            *out.deltas.entry(pack(a, b)).or_default() += delta;
            if delta > 0 {
                let found = out.created.entry(pack(a, b)).or_default();
                if found.last() != Some(&word) {
                    found.push(word);
                }
            }
        };
        for (i, &word) in task.iter().enumerate() {
            // The words are scattered over the arena: ask for the next ones'
            // bookkeeping and symbols early, so their cache misses overlap.
            if let Some(&ahead) = task.get(i + 16) {
                prefetch(&words.info[ahead as usize]);
            }
            if let Some(&ahead) = task.get(i + 8) {
                prefetch(&words.symbols[words.info[ahead as usize].start]);
            }
            let info = words.info[word as usize];
            let (len, weight) = (info.len as usize, info.count as i64);
            let symbols = words.symbols(info);
            let first_out = out.symbols.len();
            let mut read = 0;
            while read < len {
                if symbols[read] == left && read + 1 < len && symbols[read + 1] == right {
                    if out.symbols.len() > first_out {
                        let before = *out.symbols.last().expect("checked non-empty");
                        change(&mut out, before, left, -weight, word);
                        change(&mut out, before, merged, weight, word);
                    }
                    if read + 2 < len {
                        let after = symbols[read + 2];
                        change(&mut out, right, after, -weight, word);
                        change(&mut out, merged, after, weight, word);
                    }
                    out.symbols.push(merged);
                    read += 2;
                } else {
                    out.symbols.push(symbols[read]);
                    read += 1;
                }
            }
            out.words
                .push((word, (out.symbols.len() - first_out) as u32));
        }
        out
    }
}

/// A hint that `value` will be read soon (none on other processors or with
/// the `portable` feature).
#[inline(always)]
fn prefetch<T>(value: &T) {
    #[cfg(x86_simd)]
    // SAFETY: prefetching only hints the cache; `value` is a valid reference.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast());
    }
    #[cfg(not(x86_simd))]
    let _ = value;
}

/// Rewritten words (ids and new lengths, symbols end to end) and the count
/// changes of one task.
#[derive(Default)]
struct Rewritten {
    words: Vec<(u32, u32)>,
    symbols: Vec<u32>,
    deltas: FxHashMap<Pair, i64>,
    created: FxHashMap<Pair, Vec<u32>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(vocab_size: usize) -> MergeLimits {
        MergeLimits {
            vocab_size,
            min_frequency: 0,
            max_token_length: None,
        }
    }

    fn learn_strings(words: &[(&str, u64)], specials: &[&str], limits: &MergeLimits) -> Learned {
        let specials: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
        learn(
            words.iter().map(|(w, c)| (w.as_bytes(), *c)),
            &specials,
            limits,
            &crate::system::threads::pool(2).unwrap(),
            &mut |_| true,
        )
    }

    fn merged_strings(learned: &Learned) -> Vec<String> {
        learned
            .merges
            .iter()
            .map(|&(_, _, id)| String::from_utf8_lossy(&learned.tokens[id as usize]).into_owned())
            .collect()
    }

    #[test]
    fn ids_are_specials_then_bytes_in_alphabet_order_then_merges() {
        let learned = learn_strings(&[("ab", 3)], &["<s>", "</s>"], &limits(259));
        assert_eq!(learned.tokens[0], b"<s>");
        assert_eq!(learned.tokens[1], b"</s>");
        // '!' is the first character of GPT-2's byte alphabet.
        assert_eq!(learned.tokens[2], b"!");
        assert_eq!(learned.tokens.len(), 259);
        assert_eq!(learned.merges, vec![(2 + 64, 2 + 65, 258)]);
    }

    #[test]
    fn higher_count_first_then_smaller_pair() {
        // "cd" occurs 5 times, "ab" and "xy" 4 times each: cd, then ab (smaller ids), then xy.
        let learned = learn_strings(&[("ab", 4), ("cd", 5), ("xy", 4)], &[], &limits(259));
        assert_eq!(merged_strings(&learned), ["cd", "ab", "xy"]);
    }

    #[test]
    fn overlapping_pairs_merge_leftmost_and_counts_follow() {
        // "aaaa" -> "aa aa" -> "aaaa"; the stale count of (a, a) is never reused.
        let learned = learn_strings(&[("aaaa", 2)], &[], &limits(300));
        assert_eq!(merged_strings(&learned), ["aa", "aaaa"]);
    }

    #[test]
    fn counts_beyond_32_bits_are_exact() {
        // With 32-bit counts (as in HF) 3e9 would wrap below 2e9.
        let learned = learn_strings(
            &[("ab", 3_000_000_000), ("cd", 2_000_000_000)],
            &[],
            &limits(258),
        );
        assert_eq!(merged_strings(&learned), ["ab", "cd"]);
    }

    #[test]
    fn min_frequency_stops_the_loop() {
        let mut limits = limits(300);
        limits.min_frequency = 3;
        let learned = learn_strings(&[("ab", 3), ("cd", 2)], &[], &limits);
        assert_eq!(merged_strings(&learned), ["ab"]);
    }

    #[test]
    fn max_token_length_bounds_every_token() {
        let mut limits = limits(400);
        limits.max_token_length = Some(3);
        let learned = learn_strings(&[("abcdefgh", 10), ("abcd", 3)], &[], &limits);
        assert!(!learned.merges.is_empty());
        assert!(learned.tokens.iter().skip(256).all(|t| t.len() <= 3));
    }

    #[test]
    fn a_merge_that_spells_an_existing_token_reuses_its_id() {
        // The special token "ab" already has id 0; merging (a, b) spells it
        // again, so the merge points at id 0 and the vocabulary does not grow.
        let learned = learn_strings(&[("ab", 5), ("cd", 4)], &["ab"], &limits(259));
        assert_eq!(merged_strings(&learned), ["ab", "cd"]);
        assert_eq!(learned.merges[0].2, 0);
        assert_eq!(learned.tokens.len(), 258);
    }

    #[test]
    fn long_words_merge_in_linear_passes() {
        let word = "ab".repeat(200_000);
        let learned = learn_strings(&[(&word, 1)], &[], &limits(275));
        // ab, abab, abababab, ... doubling each time.
        let lens: Vec<usize> = learned
            .merges
            .iter()
            .map(|m| learned.tokens[m.2 as usize].len())
            .collect();
        assert_eq!(&lens[..4], &[2, 4, 8, 16]);
    }
}
