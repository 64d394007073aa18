//! Vocabulary training: documents -> word counts ([`word_counts`]) ->
//! merges ([`merges`]) -> a [`Vocab`] the encoder and every file format use.
//!
//! With the same settings the merges equal Hugging Face's BpeTrainer's (with
//! a ByteLevel pre-tokenizer and the full byte alphabet): special tokens get
//! the first ids, then the 256 bytes, then merged tokens in order.

pub mod count_table;
pub mod merges;
pub mod word_counts;
mod word_table;

use crate::corpus::{read_documents, ReadOptions, ReadStats};
use crate::error::Error;
use crate::formats::ROBERTA_SPECIALS;
use crate::pretokenize::Pretokenizer;
use crate::system::threads;
use crate::vocab::{SpecialToken, Vocab};
use merges::{Learned, MergeLimits};
use rayon::ThreadPool;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use word_counts::{WordCounter, WordCounts};

/// The longest token of GPT-2's and RoBERTa's vocabularies, trained without a
/// limit: longer ones come from long runs of one character and only waste
/// vocabulary slots (bbpe.train's default too).
pub const DEFAULT_MAX_TOKEN_LENGTH: usize = 128;

/// RoBERTa's vocabulary size: 50,000 merges, the 256 bytes, 4 special tokens
/// (and `<mask>`, added by fairseq after them).
pub const DEFAULT_VOCAB_SIZE: usize = 50_265;

#[derive(Debug, Clone)]
pub struct TrainSettings {
    /// Distinct tokens wanted, special tokens and the 256 bytes included.
    pub vocab_size: usize,
    pub min_frequency: u64,
    pub special_tokens: Vec<String>,
    /// Longest token to form, in bytes ([`DEFAULT_MAX_TOKEN_LENGTH`] by
    /// default; `None` for no limit, as Hugging Face's default).
    pub max_token_length: Option<usize>,
    /// Split pattern; GPT-2's when `None`.
    pub pattern: Option<String>,
    /// Cap on distinct words kept while counting (the rarest go first).
    pub max_words: Option<usize>,
    /// Worker threads; 0 = every core.
    pub threads: usize,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            vocab_size: DEFAULT_VOCAB_SIZE,
            min_frequency: 2,
            special_tokens: ROBERTA_SPECIALS.iter().map(|s| s.to_string()).collect(),
            max_token_length: Some(DEFAULT_MAX_TOKEN_LENGTH),
            pattern: None,
            max_words: None,
            threads: 0,
        }
    }
}

impl TrainSettings {
    /// The most merges training can make: every token after the 256 bytes
    /// and the special tokens (fewer if merges run out, or a merge spells a
    /// token that exists already).
    pub fn most_merges(&self) -> usize {
        self.vocab_size
            .saturating_sub(256 + self.special_tokens.len())
    }

    pub fn check(&self) -> Result<(), Error> {
        let floor = 256 + self.special_tokens.len();
        if self.vocab_size < floor {
            return Err(Error::Invalid(format!(
                "vocab_size {} is below {floor}: the 256 bytes and {} special tokens come first",
                self.vocab_size,
                self.special_tokens.len()
            )));
        }
        for (i, token) in self.special_tokens.iter().enumerate() {
            if token.is_empty() {
                return Err(Error::Invalid("a special token is empty".to_string()));
            }
            if self.special_tokens[..i].contains(token) {
                return Err(Error::Invalid(format!(
                    "special token {token:?} is given twice"
                )));
            }
        }
        if self.max_token_length == Some(0) {
            return Err(Error::Invalid("max_token_length must be at least 1".into()));
        }
        self.counting().check()
    }

    pub fn pretokenizer(&self) -> Result<Pretokenizer, Error> {
        self.counting().pretokenizer()
    }

    /// The settings of the counting phase.
    pub fn counting(&self) -> CountSettings {
        CountSettings {
            pattern: self.pattern.clone(),
            max_words: self.max_words,
            threads: self.threads,
        }
    }
}

/// What shapes training's first phase, counting words.
#[derive(Debug, Clone, Default)]
pub struct CountSettings {
    /// Split pattern; GPT-2's when `None`.
    pub pattern: Option<String>,
    /// Cap on distinct words kept while counting (the rarest go first).
    pub max_words: Option<usize>,
    /// Worker threads; 0 = every core.
    pub threads: usize,
}

impl CountSettings {
    pub fn check(&self) -> Result<(), Error> {
        if self.max_words == Some(0) {
            return Err(Error::Invalid("max_words must be at least 1".into()));
        }
        self.pretokenizer().map(|_| ())
    }

    pub fn pretokenizer(&self) -> Result<Pretokenizer, Error> {
        match &self.pattern {
            None => Ok(Pretokenizer::Gpt2),
            Some(pattern) => Pretokenizer::from_pattern(pattern),
        }
    }

    fn start_counter(&self) -> Result<WordCounter, Error> {
        self.check()?;
        Ok(WordCounter::start(
            self.pretokenizer()?,
            self.max_words,
            self.threads,
        ))
    }
}

/// Every `every`-th document (the last of each run of `every`) is held back
/// from training, up to `max_bytes`, to measure the vocabulary on unseen text.
#[derive(Debug, Default)]
pub struct Holdout {
    every: u64,
    max_bytes: usize,
    seen: u64,
    bytes: usize,
    pub documents: Vec<String>,
}

impl Holdout {
    pub fn new(every: u64, max_bytes: usize) -> Self {
        Holdout {
            every,
            max_bytes,
            ..Default::default()
        }
    }

    /// Whether `document` is held back (and kept) rather than trained on.
    pub fn take(&mut self, document: &str) -> bool {
        self.seen += 1;
        if self.every == 0 || !self.seen.is_multiple_of(self.every) || self.bytes >= self.max_bytes
        {
            return false;
        }
        self.bytes += document.len();
        self.documents.push(document.to_string());
        true
    }
}

/// Counts the words of corpus files (read by [`crate::corpus`]); `progress`
/// gets the input bytes consumed so far and returns `false` to stop early
/// (then the result is an error).
pub fn count_files(
    files: &[PathBuf],
    options: &ReadOptions,
    settings: &CountSettings,
    holdout: &mut Holdout,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<(WordCounts, ReadStats), Error> {
    let mut counter = settings.start_counter()?;
    // Set by the progress callback, seen by the next document.
    let stopped = std::cell::Cell::new(false);
    let read_threads = threads::resolve(settings.threads)?;
    let stats = read_documents(
        files,
        options,
        read_threads,
        &mut |done| {
            if !progress(done) {
                stopped.set(true);
            }
        },
        &mut |document| {
            if stopped.get() {
                return Err(Error::Invalid("training was stopped".to_string()));
            }
            if holdout.take(document) {
                return Ok(());
            }
            counter.add(document)
        },
    )?;
    Ok((counter.finish()?, stats))
}

/// Counts the words of texts handed over one at a time (a caller's strings,
/// such as a Python iterable's), holding back the holdout's share: what
/// [`count_files`] does for corpus files.
pub struct TextCounter {
    counter: WordCounter,
    holdout: Holdout,
    text_bytes: u64,
}

impl TextCounter {
    pub fn start(settings: &CountSettings, holdout: Holdout) -> Result<Self, Error> {
        Ok(TextCounter {
            counter: settings.start_counter()?,
            holdout,
            text_bytes: 0,
        })
    }

    /// Takes a text without waiting for the counting thread; follow with
    /// [`TextCounter::flush_if_full`] (which may wait) when convenient.
    pub fn push(&mut self, text: &str) {
        self.text_bytes += text.len() as u64;
        if !self.holdout.take(text) {
            self.counter.push(text);
        }
    }

    pub fn is_full(&self) -> bool {
        self.counter.is_full()
    }

    pub fn flush_if_full(&mut self) -> Result<(), Error> {
        self.counter.flush_if_full()
    }

    /// The UTF-8 bytes of every text taken so far, held back ones included.
    pub fn text_bytes(&self) -> u64 {
        self.text_bytes
    }

    /// The counts, and the texts held back.
    pub fn finish(self) -> Result<(WordCounts, Holdout), Error> {
        Ok((self.counter.finish()?, self.holdout))
    }
}

/// What a training run did, for summaries.
#[derive(Debug, Clone, Default)]
pub struct TrainReport {
    pub documents: u64,
    pub text_bytes: u64,
    pub unique_words: u64,
    pub pruned_words: u64,
    pub pruned_occurrences: u64,
    pub merges: u64,
    pub vocab_size: u64,
    pub merge_seconds: f64,
}

/// Learns merges from counted words and builds the vocabulary. `progress`
/// gets the number of merges made so far and returns `false` to stop early.
pub fn learn_vocab(
    counts: WordCounts,
    settings: &TrainSettings,
    progress: &mut (dyn FnMut(usize) -> bool + Send),
) -> Result<(Vocab, TrainReport), Error> {
    settings.check()?;
    let started = Instant::now();
    let limits = MergeLimits {
        vocab_size: settings.vocab_size,
        min_frequency: settings.min_frequency,
        max_token_length: settings.max_token_length,
    };
    let mut report = TrainReport {
        documents: counts.documents,
        text_bytes: counts.text_bytes,
        unique_words: counts.len() as u64,
        pruned_words: counts.pruned_words,
        pruned_occurrences: counts.pruned_occurrences,
        merges: 0,
        vocab_size: 0,
        merge_seconds: 0.0,
    };
    let words = merges::Words::from_counts(counts.iter());
    // The words are in the merge arena now: the counts go before the pair
    // index grows (with the compact table, 3.95M distinct words peaked at
    // 517 MB, against 773 MB with a hash map kept to the end).
    drop(counts);
    let pool = threads::pool(settings.threads)?;
    let learned = learn_on_pool(&pool, words, &settings.special_tokens, &limits, progress)?;
    let vocab = to_vocab(&learned, &settings.special_tokens)?;
    report.merges = vocab.merges().len() as u64;
    report.vocab_size = learned.tokens.len() as u64;
    report.merge_seconds = started.elapsed().as_secs_f64();
    Ok((vocab, report))
}

/// How often the caller hears how many merges were made while it waits.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(50);

/// Learns merges in a task on `pool` while the calling thread reports
/// progress. The merge loop runs on a pool thread, so a merge that rewrites
/// many words shares them out without handing work across threads (from the
/// calling thread, 50,000 merges on 114 MB of English took 3-6% longer);
/// progress, and with it Python's Ctrl-C, stays on the caller, the only
/// thread where Python sees signals. `progress` returning `false` stops the
/// loop after the merge in hand.
fn learn_on_pool(
    pool: &ThreadPool,
    words: merges::Words,
    specials: &[String],
    limits: &MergeLimits,
    progress: &mut dyn FnMut(usize) -> bool,
) -> Result<Learned, Error> {
    let made = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (sender, learned) = mpsc::channel();
    pool.in_place_scope(|scope| {
        scope.spawn(|_| {
            let result = threads::catch_panic(|| {
                merges::learn_words(words, specials, limits, pool, &mut |merges| {
                    made.store(merges, Ordering::Relaxed);
                    !stop.load(Ordering::Relaxed)
                })
            });
            let _ = sender.send(result);
        });
        loop {
            match learned.recv_timeout(PROGRESS_INTERVAL) {
                Ok(result) => {
                    progress(made.load(Ordering::Relaxed));
                    return result;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if !progress(made.load(Ordering::Relaxed)) {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Internal(
                        "merge learning ended without a result (a bug in bbpe)".to_string(),
                    ))
                }
            }
        }
    })
}

/// The vocabulary of a training run. A pair merged twice (possible when a
/// merge spells a token that already exists) keeps only its later rank, as
/// Hugging Face's model does when it files merges by pair.
pub fn to_vocab(learned: &Learned, specials: &[String]) -> Result<Vocab, Error> {
    let entries = learned
        .tokens
        .iter()
        .enumerate()
        .map(|(id, bytes)| (bytes.clone(), id as u32))
        .collect();
    let mut last_rank = rustc_hash::FxHashMap::default();
    for (rank, &(left, right, _)) in learned.merges.iter().enumerate() {
        last_rank.insert((left, right), rank);
    }
    let merges = learned
        .merges
        .iter()
        .enumerate()
        .filter(|&(rank, &(left, right, _))| last_rank[&(left, right)] == rank)
        .map(|(_, &(left, right, _))| {
            (
                learned.tokens[left as usize].clone(),
                learned.tokens[right as usize].clone(),
            )
        })
        .collect();
    let specials = specials
        .iter()
        .enumerate()
        .map(|(id, content)| SpecialToken::new(content.clone(), id as u32))
        .collect();
    Vocab::new(entries, merges, specials)
        .map_err(|e| Error::Invalid(format!("trained vocabulary is inconsistent: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{Encoder, Specials};

    fn train(documents: &[&str], settings: &TrainSettings) -> Vocab {
        let mut counter = WordCounter::start(settings.pretokenizer().unwrap(), None, 1);
        for document in documents {
            counter.add(document).unwrap();
        }
        let counts = counter.finish().unwrap();
        learn_vocab(counts, settings, &mut |_| true).unwrap().0
    }

    #[test]
    fn trained_vocabulary_encodes_and_round_trips() {
        let settings = TrainSettings {
            vocab_size: 300,
            min_frequency: 1,
            ..Default::default()
        };
        let text = "the cat sat on the mat; the cat ate the rat. 고양이가 매트 위에 앉았다";
        let vocab = train(&[text, text, "the end"], &settings);
        assert_eq!(vocab.special_id("<s>"), Some(0));
        assert_eq!(vocab.special_id("<mask>"), Some(4));
        // RoBERTa's stripping, as the vocabulary will have when loaded from its files.
        let stripping: Vec<_> = vocab.specials().iter().map(|s| s.lstrip).collect();
        assert_eq!(stripping, [false, false, false, false, true]);
        assert!(vocab.merges().len() > 10);
        assert!(vocab.merges().len() <= settings.most_merges());
        assert_eq!(settings.most_merges(), 300 - 256 - 5);
        let encoder = Encoder::new(vocab, Pretokenizer::Gpt2, false);
        let ids = encoder.encode(text, Specials::All).unwrap();
        assert!(ids.len() < text.len() / 3);
        assert_eq!(encoder.decode(&ids, false).unwrap(), text.as_bytes());
    }

    #[test]
    fn progress_is_reported_on_the_calling_thread() {
        // Python sees Ctrl-C only on its main thread, the one that calls in.
        // The first merge, "a" + "b", rewrites 5,000 words: several pool tasks.
        let words: Vec<String> = (0..5_000).map(|i| format!(" ab{i}")).collect();
        let documents: Vec<&str> = words.iter().map(String::as_str).collect();
        let settings = TrainSettings {
            vocab_size: 320,
            threads: 2,
            ..Default::default()
        };
        let mut counter = WordCounter::start(settings.pretokenizer().unwrap(), None, 1);
        for document in &documents {
            counter.add(document).unwrap();
        }
        let counts = counter.finish().unwrap();
        let caller = std::thread::current().id();
        let mut reported_from = Vec::new();
        learn_vocab(counts, &settings, &mut |_| {
            reported_from.push(std::thread::current().id());
            true
        })
        .unwrap();
        assert!(!reported_from.is_empty());
        assert!(reported_from.iter().all(|&thread| thread == caller));
    }

    #[test]
    fn texts_are_counted_or_held_back() {
        let settings = TrainSettings::default();
        let mut counter = TextCounter::start(&settings.counting(), Holdout::new(2, 100)).unwrap();
        for text in ["one two", "held back", "two three", "also held"] {
            counter.push(text);
        }
        assert_eq!(counter.text_bytes(), 7 + 9 + 9 + 9);
        let (counts, holdout) = counter.finish().unwrap();
        assert_eq!(holdout.documents, ["held back", "also held"]);
        let mut words: Vec<(String, u64)> = counts
            .iter()
            .map(|(word, count)| (String::from_utf8(word.to_vec()).unwrap(), count))
            .collect();
        words.sort();
        let expected = [(" three", 1), (" two", 1), ("one", 1), ("two", 1)];
        assert_eq!(words, expected.map(|(w, c)| (w.to_string(), c)));
    }

    #[test]
    fn progress_can_stop_learning() {
        // 40,000 distinct pseudo-random words: thousands of merges to make,
        // far more than the loop makes before the first report (50 ms).
        let mut state = 7u64;
        let mut letter = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (b'a' + (state >> 59) as u8 % 26) as char
        };
        let words: Vec<String> = (0..40_000)
            .map(|_| (0..8).map(|_| letter()).collect())
            .collect();
        let settings = TrainSettings {
            vocab_size: 20_000,
            threads: 2,
            ..Default::default()
        };
        let mut counter = TextCounter::start(&settings.counting(), Holdout::default()).unwrap();
        for word in &words {
            counter.push(word);
        }
        let (counts, _) = counter.finish().unwrap();
        let (vocab, report) = learn_vocab(counts, &settings, &mut |_| false).unwrap();
        assert!(report.merges < 5_000, "{} merges", report.merges);
        assert_eq!(vocab.merges().len() as u64, report.merges);
    }

    #[test]
    fn settings_are_checked() {
        let too_small = TrainSettings {
            vocab_size: 200,
            ..Default::default()
        };
        assert!(too_small
            .check()
            .unwrap_err()
            .to_string()
            .contains("vocab_size 200"));
        let repeated = TrainSettings {
            special_tokens: vec!["<s>".into(), "<s>".into()],
            ..Default::default()
        };
        assert!(repeated.check().unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn holdout_keeps_every_nth_document_up_to_a_budget() {
        let mut holdout = Holdout::new(3, 4);
        let taken: Vec<bool> = ["a", "b", "cc", "d", "e", "ffff", "g", "h", "i"]
            .iter()
            .map(|d| holdout.take(d))
            .collect();
        assert_eq!(
            taken,
            [false, false, true, false, false, true, false, false, false]
        );
        assert_eq!(holdout.documents, ["cc", "ffff"]);
    }
}
