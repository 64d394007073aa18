//! Training stage 1: documents -> word counts.
//!
//! Documents are gathered into batches of about `BATCH_BYTES`; each batch is
//! pre-tokenized and counted on all cores (per-chunk maps borrowing the
//! batch's text, so only words new to the corpus allocate), then folded into
//! one map of 64-bit counts. Memory grows with the number of distinct words,
//! never with the corpus. Batches are cut by bytes at document boundaries, so
//! the counts — and any pruning — do not depend on the thread count or on how
//! the caller chunked its input.

use crate::corpus::TextBatch;
use crate::error::Error;
use crate::pretokenize::Pretokenizer;
use crate::system::threads::{self, run_with_threads};
use crate::train::word_table::WordTable;
use hashbrown::HashMap;
use rayon::prelude::*;
use rustc_hash::FxBuildHasher;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Text per batch: large enough to keep every core busy, small enough that
/// two batches in flight cost little memory.
pub const BATCH_BYTES: usize = 16 << 20;

type Counts<K> = HashMap<K, u64, FxBuildHasher>;

/// Distinct words (pretoken bytes) and how often each occurred.
#[derive(Debug, Default)]
pub struct WordCounts {
    counts: WordTable,
    max_words: Option<usize>,
    /// Words dropped to stay under `max_words`, and their occurrences.
    pub pruned_words: u64,
    pub pruned_occurrences: u64,
    pub documents: u64,
    pub text_bytes: u64,
}

impl WordCounts {
    /// `max_words` caps the distinct words kept: when a batch takes the map
    /// past it, the rarest words are dropped down to the cap (see
    /// [`WordCounts::prune`]).
    pub fn new(max_words: Option<usize>) -> Self {
        WordCounts {
            max_words,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Words and counts, in the order the words were first seen.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> {
        self.counts.iter()
    }

    /// Adds `count` occurrences of `word` (a count table's word: the cap is
    /// applied once all are in, by [`WordCounts::apply_cap`]).
    pub fn add_word(&mut self, word: &[u8], count: u64) {
        self.counts.add(word, count);
    }

    /// Prunes down to the cap now, as counting does after each batch.
    pub fn apply_cap(&mut self) {
        if let Some(max_words) = self.max_words {
            self.prune(max_words);
        }
    }

    /// Counts the words of a batch on the current rayon pool.
    pub fn add_batch(
        &mut self,
        pretokenizer: &Pretokenizer,
        batch: &TextBatch,
    ) -> Result<(), Error> {
        let runs = batch.runs(2 * rayon::current_num_threads());
        let partial: Vec<Counts<&[u8]>> = runs
            .into_par_iter()
            .map(|run| {
                let mut counts = Counts::default();
                for document in batch.documents(run) {
                    let bytes = document.as_bytes();
                    pretokenizer.split(document, |start, end| {
                        *counts.entry(&bytes[start..end]).or_insert(0) += 1;
                    })?;
                }
                Ok(counts)
            })
            .collect::<Result<_, Error>>()?;
        for counts in partial {
            for (word, count) in counts {
                self.counts.add(word, count);
            }
        }
        self.documents += batch.len() as u64;
        self.text_bytes += batch.bytes() as u64;
        self.apply_cap();
        Ok(())
    }

    /// Drops the rarest words until no more than `keep` are left. Among words
    /// of the same count the longer go first (a short word is more likely a
    /// piece of others), then the later in byte order, so what stays does
    /// not depend on the map's order.
    fn prune(&mut self, keep: usize) {
        let excess = self.counts.len().saturating_sub(keep);
        if excess == 0 {
            return;
        }
        // The count at which the cut falls, found on counts alone (8 bytes a
        // word), then the cut among the words of that count.
        let mut counts: Vec<u64> = self.counts.iter().map(|(_, count)| count).collect();
        let (_, &mut cut_count, _) = counts.select_nth_unstable(excess - 1);
        let rarer = counts[..excess].iter().filter(|&&c| c < cut_count).count();
        drop(counts);
        let mut ties: Vec<&[u8]> = (self.counts.iter())
            .filter(|&(_, count)| count == cut_count)
            .map(|(word, _)| word)
            .collect();
        let goes_first = |a: &&[u8], b: &&[u8]| b.len().cmp(&a.len()).then_with(|| b.cmp(a));
        let (_, &mut last_dropped, _) = ties.select_nth_unstable_by(excess - rarer - 1, goes_first);
        let last_dropped: Box<[u8]> = last_dropped.into();
        let (mut words, mut occurrences) = (0, 0);
        self.counts.retain(|word, count| {
            let drop = count < cut_count
                || (count == cut_count && goes_first(&word, &last_dropped.as_ref()).is_le());
            if drop {
                words += 1;
                occurrences += count;
            }
            !drop
        });
        self.pruned_words += words;
        self.pruned_occurrences += occurrences;
    }
}

/// Counts words on a background thread while the caller produces documents:
/// the caller fills one batch while the previous one is counted.
pub struct WordCounter {
    batch: TextBatch,
    full: Option<SyncSender<TextBatch>>,
    empty: Receiver<TextBatch>,
    worker: Option<JoinHandle<Result<WordCounts, Error>>>,
}

impl WordCounter {
    /// `threads` = 0 uses every core.
    pub fn start(pretokenizer: Pretokenizer, max_words: Option<usize>, threads: usize) -> Self {
        let (full_sender, full) = sync_channel::<TextBatch>(1);
        let (empty_sender, empty) = sync_channel::<TextBatch>(2);
        let worker = std::thread::spawn(move || {
            let mut counts = WordCounts::new(max_words);
            for mut batch in full {
                run_with_threads(threads, || counts.add_batch(&pretokenizer, &batch))??;
                batch.clear();
                // The producer may have finished already; then the batch is dropped.
                let _ = empty_sender.try_send(batch);
            }
            Ok(counts)
        });
        WordCounter {
            batch: TextBatch::default(),
            full: Some(full_sender),
            empty,
            worker: Some(worker),
        }
    }

    pub fn add(&mut self, document: &str) -> Result<(), Error> {
        self.push(document);
        self.flush_if_full()
    }

    /// Adds a document without ever waiting for the worker; follow with
    /// [`WordCounter::flush_if_full`] (which may wait) when convenient.
    pub fn push(&mut self, document: &str) {
        self.batch.push(document);
    }

    pub fn is_full(&self) -> bool {
        self.batch.bytes() >= BATCH_BYTES
    }

    /// Hands a full batch to the worker, waiting while it counts the last one.
    pub fn flush_if_full(&mut self) -> Result<(), Error> {
        if self.is_full() {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), Error> {
        let next = self.empty.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        let sent = self.full.as_ref().map(|full| full.send(batch).is_ok());
        if sent != Some(true) {
            // The worker stopped early: its error is the one to report.
            return Err(self.join().err().unwrap_or_else(|| {
                Error::Invalid("word counting stopped unexpectedly".to_string())
            }));
        }
        Ok(())
    }

    /// Counts what is left and returns the totals.
    pub fn finish(mut self) -> Result<WordCounts, Error> {
        if !self.batch.is_empty() {
            self.send()?;
        }
        self.join()
    }

    fn join(&mut self) -> Result<WordCounts, Error> {
        self.full = None;
        match self.worker.take() {
            Some(worker) => worker
                .join()
                .map_err(|panic| threads::panicked("the word-counting", panic))?,
            None => Err(Error::Invalid("word counting already finished".to_string())),
        }
    }
}

impl Drop for WordCounter {
    fn drop(&mut self) {
        // Closing the channel ends the worker; wait so no thread outlives us.
        self.full = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(documents: &[&str], max_words: Option<usize>) -> Vec<(Vec<u8>, u64)> {
        let mut counter = WordCounter::start(Pretokenizer::Gpt2, max_words, 2);
        for document in documents {
            counter.add(document).unwrap();
        }
        let counts = counter.finish().unwrap();
        let mut words: Vec<(Vec<u8>, u64)> = counts.iter().map(|(w, c)| (w.to_vec(), c)).collect();
        words.sort();
        words
    }

    #[test]
    fn counts_pretokens_within_documents() {
        let words = count(&["the cat", "the dog", "cat"], None);
        let expected: Vec<(Vec<u8>, u64)> = [(" cat", 1), (" dog", 1), ("cat", 1), ("the", 2)]
            .iter()
            .map(|(w, c)| (w.as_bytes().to_vec(), *c))
            .collect();
        assert_eq!(words, expected);
    }

    #[test]
    fn counts_do_not_depend_on_threads() {
        let text: Vec<String> = (0..5000)
            .map(|i| format!("word{} 한국어 {}", i % 97, i % 13))
            .collect();
        let documents: Vec<&str> = text.iter().map(String::as_str).collect();
        let mut by_threads = Vec::new();
        for threads in [1, 2, 3] {
            let mut counter = WordCounter::start(Pretokenizer::Gpt2, None, threads);
            for document in &documents {
                counter.add(document).unwrap();
            }
            let counts = counter.finish().unwrap();
            let mut words: Vec<(Vec<u8>, u64)> =
                counts.iter().map(|(w, c)| (w.to_vec(), c)).collect();
            words.sort();
            by_threads.push(words);
        }
        assert_eq!(by_threads[0], by_threads[1]);
        assert_eq!(by_threads[0], by_threads[2]);
    }

    fn batch_of(text: &str) -> TextBatch {
        let mut batch = TextBatch::default();
        batch.push(text);
        batch
    }

    fn kept_words(counts: &WordCounts) -> Vec<(Vec<u8>, u64)> {
        let mut kept: Vec<(Vec<u8>, u64)> = counts.iter().map(|(w, c)| (w.to_vec(), c)).collect();
        kept.sort();
        kept
    }

    #[test]
    fn pruning_drops_the_rarest_words_down_to_the_cap() {
        let mut counts = WordCounts::new(Some(4));
        let batch = batch_of("a a a b b c d e f");
        run_with_threads(1, || counts.add_batch(&Pretokenizer::Gpt2, &batch))
            .unwrap()
            .unwrap();
        // Seven distinct words over a cap of 4: " a" and " b" (seen twice)
        // stay, and of the five seen once the shortest, then the first in
        // byte order: "a" and " c".
        let kept = kept_words(&counts);
        let expected: Vec<(Vec<u8>, u64)> = [(" a", 2), (" b", 2), (" c", 1), ("a", 1)]
            .iter()
            .map(|(w, c)| (w.as_bytes().to_vec(), *c))
            .collect();
        assert_eq!(kept, expected);
        assert_eq!(counts.pruned_words, 3);
        assert_eq!(counts.pruned_occurrences, 3);
    }

    #[test]
    fn words_seen_once_are_capped_not_collapsed() {
        // 5000 distinct words seen once, in five batches, under a cap of 1500.
        let word = |mut i: usize| {
            let mut letters = String::from(" ");
            for _ in 0..3 {
                letters.push((b'a' + (i % 26) as u8) as char);
                i /= 26;
            }
            letters
        };
        let run = |threads| {
            let mut counts = WordCounts::new(Some(1500));
            for part in 0..5 {
                let words: String = (0..1000).map(|i| word(part * 1000 + i)).collect();
                let batch = batch_of(&words);
                run_with_threads(threads, || counts.add_batch(&Pretokenizer::Gpt2, &batch))
                    .unwrap()
                    .unwrap();
            }
            counts
        };
        let counts = run(2);
        assert_eq!(counts.len(), 1500);
        assert_eq!(counts.pruned_words, 3500);
        assert_eq!(counts.pruned_occurrences, 3500);
        assert_eq!(kept_words(&counts), kept_words(&run(1)));
    }
}
