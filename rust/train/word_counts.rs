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
use crate::threads::run_with_threads;
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
    counts: Counts<Box<[u8]>>,
    max_words: Option<usize>,
    /// Words dropped to stay under `max_words`, and their occurrences.
    pub pruned_words: u64,
    pub pruned_occurrences: u64,
    pub documents: u64,
    pub text_bytes: u64,
}

impl WordCounts {
    /// `max_words` caps the distinct words kept: when a batch takes the map
    /// past it, the rarest words are dropped (see [`WordCounts::prune`]).
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

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> {
        self.counts
            .iter()
            .map(|(word, &count)| (word.as_ref(), count))
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
                // Look up by slice first: only a word new to the corpus allocates.
                match self.counts.get_mut(word) {
                    Some(total) => *total += count,
                    None => {
                        self.counts.insert(word.into(), count);
                    }
                }
            }
        }
        self.documents += batch.len() as u64;
        self.text_bytes += batch.bytes() as u64;
        if let Some(max_words) = self.max_words {
            if self.counts.len() > max_words {
                self.prune(max_words * 3 / 4);
            }
        }
        Ok(())
    }

    /// Drops every word whose count is at most the smallest threshold that
    /// leaves no more than `keep` words. Whole count classes go at once, so the
    /// result does not depend on the map's order.
    fn prune(&mut self, keep: usize) {
        let mut counts: Vec<u64> = self.counts.values().copied().collect();
        let drop_at_least = counts.len().saturating_sub(keep);
        if drop_at_least == 0 {
            return;
        }
        let (_, &mut threshold, _) = counts.select_nth_unstable(drop_at_least - 1);
        let (mut words, mut occurrences) = (0, 0);
        self.counts.retain(|_, &mut count| {
            let drop = count <= threshold;
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
                .map_err(|_| Error::Invalid("word counting panicked".to_string()))?,
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

    #[test]
    fn pruning_drops_whole_count_classes_of_the_rarest_words() {
        let mut counts = WordCounts::new(Some(4));
        let mut batch = TextBatch::default();
        batch.push("a a a b b c d e f");
        run_with_threads(1, || counts.add_batch(&Pretokenizer::Gpt2, &batch))
            .unwrap()
            .unwrap();
        // Seven distinct words over a cap of 4: prune to 3, which drops every
        // word seen once ("a", " c", " d", " e", " f"), leaving " a" and " b".
        let mut kept: Vec<Vec<u8>> = counts.iter().map(|(w, _)| w.to_vec()).collect();
        kept.sort();
        assert_eq!(kept, vec![b" a".to_vec(), b" b".to_vec()]);
        assert_eq!(counts.pruned_words, 5);
        assert_eq!(counts.pruned_occurrences, 5);
    }
}
