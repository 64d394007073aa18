//! Many texts at once on all cores. Each text's ids depend only on the text,
//! so results are the same for any number of threads.

use super::{Encoder, Specials};
use crate::error::Error;
use crate::pretokenize::gpt2_cut_at_or_after;
use crate::system::huge_pages::prefer_for_vec;
use crate::system::threads::{self, catch_panic, pool, run_with_threads};
use rayon::prelude::*;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex};

pub fn encode_batch<S: AsRef<str> + Sync>(
    encoder: &Encoder,
    texts: &[S],
    specials: Specials,
    threads: usize,
) -> Result<Vec<Vec<u32>>, Error> {
    run_with_threads(threads, || {
        texts
            .par_iter()
            .with_min_len(4)
            .map(|text| encoder.encode(text.as_ref(), specials))
            .collect()
    })?
}

/// Texts are encoded in runs of about this many bytes: enough work to be
/// worth a task, little enough that a run's ids are still in the CPU's cache
/// when they are copied to the output.
const RUN_BYTES: usize = 256 << 10;

/// All ids of many texts end to end: `ids[offsets[i]..offsets[i + 1]]` are
/// the ids of text `i`.
#[derive(Default)]
pub struct FlatIds {
    pub ids: Vec<u32>,
    pub offsets: Vec<u64>,
}

/// The ids of one run of texts and where each text's ids end.
#[derive(Default)]
struct RunIds {
    ids: Vec<u32>,
    ends: Vec<usize>,
}

/// Takes finished runs in any order and appends them to the output in order.
struct Collector {
    /// The run to append next; later runs wait in `finished`.
    next: usize,
    finished: BTreeMap<usize, Result<RunIds, Error>>,
    output: FlatIds,
    /// Buffers of appended runs, handed out again.
    spare: Vec<RunIds>,
    error: Option<Error>,
}

impl Collector {
    fn append_ready(&mut self) {
        while let Some(run) = self.finished.remove(&self.next) {
            self.next += 1;
            match run {
                Ok(run) if self.error.is_none() => {
                    let FlatIds { ids, offsets } = &mut self.output;
                    let base = ids.len();
                    if ids.capacity() - base < run.ids.len() {
                        ids.reserve(run.ids.len());
                        prefer_for_vec(ids);
                    }
                    ids.extend_from_slice(&run.ids);
                    offsets.extend(run.ends.iter().map(|&end| (base + end) as u64));
                    self.spare.push(run);
                }
                Ok(run) => self.spare.push(run),
                Err(error) => {
                    self.error.get_or_insert(error);
                }
            }
        }
    }
}

/// A text or part of a text: borrowed from the caller, or copied into its
/// run's buffer.
enum Piece<'env> {
    Borrowed(&'env str),
    Copied(Range<usize>),
}

/// The texts of one run, each marked if it ends its text, and the buffer
/// that holds the copied ones.
#[derive(Default)]
struct RunTexts<'env> {
    pieces: Vec<(Piece<'env>, bool)>,
    copies: String,
}

impl RunTexts<'_> {
    fn texts(&self) -> impl Iterator<Item = (&str, bool)> {
        self.pieces.iter().map(|(piece, ends_text)| match piece {
            Piece::Borrowed(text) => (*text, *ends_text),
            Piece::Copied(range) => (&self.copies[range.clone()], *ends_text),
        })
    }
}

/// What the encoding threads share: runs not yet taken, in order, the
/// collector, and a signal that it has appended runs.
struct Shared<'env> {
    /// Runs not yet taken, each with its number.
    waiting: Mutex<VecDeque<(usize, RunTexts<'env>)>>,
    collector: Mutex<Collector>,
    appended: Condvar,
    /// Buffers of encoded runs' copies, handed out again: copied texts
    /// reuse memory already in use instead of touching fresh pages.
    spare_copies: Mutex<Vec<String>>,
}

impl<'env> Shared<'env> {
    /// Encodes the oldest run not yet taken, if any.
    fn encode_next(&self, encoder: &Encoder, specials: Specials) -> bool {
        let next = self.waiting.lock().unwrap().pop_front();
        match next {
            Some((index, texts)) => {
                encode_run(encoder, specials, self, index, &texts);
                let mut copies = texts.copies;
                copies.clear();
                self.spare_copies.lock().unwrap().push(copies);
                true
            }
            None => false,
        }
    }
}

/// Hands texts to the pool a run at a time; see [`encode_flat_fed`].
pub struct Feeder<'scope, 'env> {
    /// Where helper threads are started, if there are any.
    scope: Option<&'scope rayon::ScopeFifo<'env>>,
    /// How many helper threads there are.
    helpers: usize,
    encoder: &'env Encoder,
    specials: Specials<'env>,
    shared: Arc<Shared<'env>>,
    run: RunTexts<'env>,
    run_bytes: usize,
    submitted: usize,
    /// `submitted` when [`Self::has_backlog`] last looked at the queue.
    backlog_checked: usize,
    /// Long texts are cut into parts of about a run (see
    /// [`Encoder::can_cut_texts`]): no run is much longer than another, so
    /// the last runs end together and few finished ones wait for a slow one.
    cut_long_texts: bool,
    /// `submitted` when [`Self::take_appended`] last took ids, the runs
    /// appended by then, and whether it has taken any (the output's first
    /// offset, 0, is then gone).
    taken_at: usize,
    taken_runs: usize,
    taken: bool,
}

/// Encodes run number `index` and hands it to the collector.
fn encode_run(
    encoder: &Encoder,
    specials: Specials,
    shared: &Shared<'_>,
    index: usize,
    texts: &RunTexts,
) {
    let mut run = shared.collector.lock().unwrap().spare.pop();
    let run = run.get_or_insert_with(RunIds::default);
    run.ids.clear();
    run.ends.clear();
    // A panic here must still deliver the run, or `Feeder::wait` waits forever.
    let encoded = catch_panic(|| {
        texts.texts().try_for_each(|(text, ends_text)| {
            encoder.encode_into(text, specials, &mut run.ids, None)?;
            if ends_text {
                run.ends.push(run.ids.len());
            }
            Ok(())
        })
    })
    .and_then(|encoded| encoded);
    let mut collector = shared.collector.lock().unwrap();
    let run = std::mem::take(run);
    collector.finished.insert(index, encoded.map(|()| run));
    collector.append_ready();
    shared.appended.notify_all();
}

impl<'env> Feeder<'_, 'env> {
    /// Queues `text`, to be encoded on the pool with the texts around it.
    pub fn push(&mut self, text: &'env str) {
        self.push_parts(text, |feeder, part, ends_text| {
            feeder.queue(Piece::Borrowed(part), part.len(), ends_text)
        });
    }

    /// Queues a copy of `text`, made in a buffer of its run that is used
    /// again once the run is encoded.
    pub fn push_copy(&mut self, text: &str) {
        self.push_parts(text, |feeder, part, ends_text| {
            let start = feeder.run.copies.len();
            feeder.run.copies.push_str(part);
            let copied = Piece::Copied(start..feeder.run.copies.len());
            feeder.queue(copied, part.len(), ends_text)
        });
    }

    /// Hands `text` to `queue` whole, or in parts of about a run where it
    /// may be cut (see `cut_long_texts`), the last part marked as ending it.
    fn push_parts<'t>(
        &mut self,
        mut text: &'t str,
        mut queue: impl FnMut(&mut Self, &'t str, bool),
    ) {
        while self.cut_long_texts && text.len() > 2 * RUN_BYTES {
            let Some(cut) = gpt2_cut_at_or_after(text, RUN_BYTES) else {
                break;
            };
            queue(self, &text[..cut], false);
            text = &text[cut..];
        }
        queue(self, text, true);
    }

    fn queue(&mut self, piece: Piece<'env>, len: usize, ends_text: bool) {
        self.run.pieces.push((piece, ends_text));
        self.run_bytes += len;
        if self.run_bytes >= RUN_BYTES {
            self.submit();
        }
    }

    /// Whether more runs wait than the pool needs to stay busy, so that the
    /// feeding thread had better encode one itself (see [`Self::encode_one`]).
    /// Looked at only when a run was queued since the last time: the queue
    /// grows only then, and many short texts go into each run.
    pub fn has_backlog(&mut self) -> bool {
        if self.submitted == self.backlog_checked {
            return false;
        }
        self.backlog_checked = self.submitted;
        self.shared.waiting.lock().unwrap().len() > 2 * self.helpers + 1
    }

    /// Encodes on this thread the oldest run queued and not yet taken, if
    /// any. (A Python caller does this without the GIL.)
    pub fn encode_one(&mut self) -> bool {
        self.shared.encode_next(self.encoder, self.specials)
    }

    fn submit(&mut self) {
        if self.run.pieces.is_empty() {
            return;
        }
        let copies = self.shared.spare_copies.lock().unwrap().pop();
        let next = RunTexts {
            pieces: Vec::new(),
            copies: copies.unwrap_or_default(),
        };
        let texts = std::mem::replace(&mut self.run, next);
        self.run_bytes = 0;
        let index = self.submitted;
        self.submitted += 1;
        self.shared
            .waiting
            .lock()
            .unwrap()
            .push_back((index, texts));
        if let Some(scope) = self.scope {
            let (encoder, specials, shared) = (self.encoder, self.specials, self.shared.clone());
            // One task per run, each taking the oldest run left: runs start in
            // the order they came, so few wait to be appended.
            scope.spawn_fifo(move |_| {
                shared.encode_next(encoder, specials);
            });
        }
    }

    /// Whether runs were queued since [`Self::take_appended`] last took ids:
    /// only then can there be new ones, and looking costs a lock.
    pub fn may_have_appended(&self) -> bool {
        self.submitted != self.taken_at
    }

    /// Moves the ids appended to the output so far onto the end of `ids`,
    /// and the positions in `ids` where the texts they finish end onto
    /// `ends`: a caller that turns finished texts into something else (such
    /// as Python lists) does so while the pool encodes the next runs. What
    /// is taken is no longer in the result of [`encode_flat_fed`].
    pub fn take_appended(&mut self, ids: &mut Vec<u32>, ends: &mut Vec<usize>) {
        self.taken_at = self.submitted;
        let mut collector = self.shared.collector.lock().unwrap();
        let output = &mut collector.output;
        let base = ids.len();
        if ids.is_empty() {
            // The usual case: the caller used up what it took before.
            std::mem::swap(ids, &mut output.ids);
        } else {
            ids.extend_from_slice(&output.ids);
        }
        let starts_with_zero = usize::from(!self.taken);
        let finished = output.offsets.get(starts_with_zero..).unwrap_or_default();
        ends.extend(finished.iter().map(|&end| base + end as usize));
        output.ids.clear();
        output.offsets.clear();
        self.taken = true;
        self.taken_runs = collector.next;
    }

    /// Queues the last partial run: every text pushed is then in a run.
    pub fn send_last_run(&mut self) {
        self.submit();
    }

    /// Blocks until a run that [`Self::take_appended`] has not taken is
    /// appended; `false` once every queued run has been taken.
    pub fn wait_for_appended(&self) -> bool {
        let mut collector = self.shared.collector.lock().unwrap();
        loop {
            if collector.next > self.taken_runs {
                return true;
            }
            if self.taken_runs == self.submitted {
                return false;
            }
            collector = self.shared.appended.wait(collector).unwrap();
        }
    }

    /// Sends the last partial run, encodes runs on this thread too until
    /// none is left, and blocks until every run is appended. (A Python
    /// caller does this without the GIL.)
    pub fn wait(&mut self) {
        self.submit();
        while self.encode_one() {}
        // The runs still unfinished are being encoded by running threads.
        let mut collector = self.shared.collector.lock().unwrap();
        while collector.next < self.submitted {
            collector = self.shared.appended.wait(collector).unwrap();
        }
    }
}

/// An output vector for texts of `chars` characters in all (counted before
/// their UTF-8 exists). A text has at most an id per UTF-8 byte, and outside
/// emoji and other astral characters at most three bytes per character: with
/// room for that the output never moves (which would lose its huge pages),
/// and pages never written cost nothing. Where that much address space is
/// refused, an id per character, and the vector grows if it must.
pub fn flat_output_for_chars(chars: usize) -> Vec<u32> {
    let mut ids = Vec::new();
    if ids.try_reserve_exact(3 * chars).is_err() {
        ids.reserve(chars);
    }
    ids
}

/// Encodes the texts that `feed` pushes into a [`Feeder`], in runs, on
/// `threads` threads (0 = all cores): the caller, which feeds and then
/// encodes, and a pool of the others, which encode while `feed` goes on.
/// Each run's ids are appended to `ids` (cleared first: pass a vector back
/// to reuse its memory) as soon as the runs before it are, so the output is
/// written once, densely, in order, by whichever thread finished.
pub fn encode_flat_fed<'env, T>(
    encoder: &'env Encoder,
    specials: Specials<'env>,
    threads: usize,
    mut ids: Vec<u32>,
    feed: impl FnOnce(&mut Feeder<'_, 'env>) -> T,
) -> Result<(T, FlatIds), Error> {
    ids.clear();
    prefer_for_vec(&mut ids);
    let shared = Arc::new(Shared {
        waiting: Mutex::default(),
        collector: Mutex::new(Collector {
            next: 0,
            finished: BTreeMap::new(),
            output: FlatIds {
                ids,
                offsets: vec![0],
            },
            spare: Vec::new(),
            error: None,
        }),
        appended: Condvar::new(),
        spare_copies: Mutex::default(),
    });
    // The caller is one of the threads: with one, nothing is handed over.
    let helpers = threads::resolve(threads)? - 1;
    let feed_and_wait = |scope: Option<&rayon::ScopeFifo<'env>>| {
        let mut feeder = Feeder {
            scope,
            helpers,
            encoder,
            specials,
            shared: shared.clone(),
            run: RunTexts::default(),
            run_bytes: 0,
            submitted: 0,
            backlog_checked: 0,
            cut_long_texts: encoder.can_cut_texts(specials),
            taken_at: 0,
            taken_runs: 0,
            taken: false,
        };
        let fed = feed(&mut feeder);
        feeder.wait();
        fed
    };
    let fed = match helpers {
        0 => catch_panic(|| feed_and_wait(None))?,
        helpers => {
            let helpers = pool(helpers)?;
            catch_panic(|| helpers.in_place_scope_fifo(|scope| feed_and_wait(Some(scope))))?
        }
    };
    let mut collector = shared.collector.lock().unwrap();
    match collector.error.take() {
        Some(error) => Err(error),
        None => Ok((fed, std::mem::take(&mut collector.output))),
    }
}

/// All ids of `texts` in one vector (see [`encode_flat_fed`]), reusing `ids`.
pub fn encode_flat<S: AsRef<str> + Sync>(
    encoder: &Encoder,
    texts: &[S],
    specials: Specials,
    threads: usize,
    mut ids: Vec<u32>,
) -> Result<FlatIds, Error> {
    // No text has more ids than bytes: with room for that, the vector never
    // moves, and pages it never writes cost nothing.
    let bytes: usize = texts.iter().map(|t| t.as_ref().len()).sum();
    ids.clear();
    ids.reserve(bytes);
    let (_, flat) = encode_flat_fed(encoder, specials, threads, ids, |feeder| {
        texts.iter().for_each(|text| feeder.push(text.as_ref()))
    })?;
    Ok(flat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pretokenize::Pretokenizer;
    use crate::vocab::Vocab;

    fn toy_encoder() -> Encoder {
        let mut entries: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        entries.push((b"ab".to_vec(), 256));
        // A merge across the space before a word: a text cut between the two
        // would encode differently.
        entries.push((b" c".to_vec(), 257));
        let merges = vec![
            (b"a".to_vec(), b"b".to_vec()),
            (b" ".to_vec(), b"c".to_vec()),
        ];
        Encoder::new(
            Vocab::new(entries, merges, vec![]).unwrap(),
            Pretokenizer::Gpt2,
            false,
        )
    }

    #[test]
    fn ids_taken_while_feeding_are_each_texts_ids_in_order() {
        let encoder = toy_encoder();
        // Long texts (cut into parts across runs), empty ones and short ones.
        let texts: Vec<String> = (0..300)
            .map(|i| match i % 5 {
                0 => String::new(),
                1 => "ab c".repeat(RUN_BYTES / 2 + i),
                _ => "ab cab ".repeat(i % 41),
            })
            .collect();
        let expected: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| encoder.encode(t, Specials::None).unwrap())
            .collect();
        for threads in [1, 2, 3] {
            let (mut ids, mut ends) = (Vec::new(), Vec::new());
            let mut got: Vec<Vec<u32>> = Vec::new();
            let mut finish = |ids: &mut Vec<u32>, ends: &mut Vec<usize>| {
                let mut start = 0;
                for &end in ends.iter() {
                    got.push(ids[start..end].to_vec());
                    start = end;
                }
                ids.drain(..start);
                ends.clear();
            };
            let (_, rest) = encode_flat_fed(&encoder, Specials::None, threads, vec![], |feeder| {
                for text in &texts {
                    feeder.push(text);
                    if feeder.may_have_appended() {
                        feeder.take_appended(&mut ids, &mut ends);
                        finish(&mut ids, &mut ends);
                    }
                }
                feeder.send_last_run();
                loop {
                    feeder.take_appended(&mut ids, &mut ends);
                    finish(&mut ids, &mut ends);
                    if !(feeder.encode_one() || feeder.wait_for_appended()) {
                        break;
                    }
                }
            })
            .unwrap();
            assert!(ids.is_empty() && rest.ids.is_empty(), "{threads} threads");
            assert_eq!(got, expected, "{threads} threads");
        }
    }

    #[test]
    fn flat_batch_matches_single_encodes_for_any_thread_count() {
        let encoder = toy_encoder();
        // Sizes around RUN_BYTES, so that runs hold one text or many.
        let texts: Vec<String> = (0..500)
            .map(|i| "ab cab ".repeat(i % 37) + &"x".repeat((i * 7919) % (RUN_BYTES / 20)))
            .collect();
        let expected: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| encoder.encode(t, Specials::None).unwrap())
            .collect();
        for threads in [1, 2, 3] {
            // A reused buffer holding stale ids must not leak into the output.
            let stale = vec![7; 1000];
            let FlatIds { ids, offsets } =
                encode_flat(&encoder, &texts, Specials::None, threads, stale).unwrap();
            assert_eq!(offsets.len(), texts.len() + 1);
            assert_eq!(*offsets.last().unwrap() as usize, ids.len());
            for (i, want) in expected.iter().enumerate() {
                let span = offsets[i] as usize..offsets[i + 1] as usize;
                assert_eq!(&ids[span], want.as_slice());
            }
            assert_eq!(
                encode_batch(&encoder, &texts, Specials::None, threads).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn fed_texts_are_encoded_while_feeding_and_in_order() {
        let encoder = toy_encoder();
        let texts: Vec<String> = (0..2000).map(|i| "ab ".repeat(i % 300)).collect();
        let (pushed, flat) = encode_flat_fed(&encoder, Specials::None, 2, Vec::new(), |feeder| {
            for text in &texts {
                feeder.push(text);
            }
            // Waiting midway and pushing more is allowed.
            feeder.wait();
            feeder.push("ab");
            texts.len() + 1
        })
        .unwrap();
        assert_eq!(pushed, 2001);
        assert_eq!(flat.offsets.len(), 2002);
        assert_eq!(&flat.ids[flat.offsets[2000] as usize..], &[256]);
        let last = &texts[1999];
        let span = flat.offsets[1999] as usize..flat.offsets[2000] as usize;
        assert_eq!(
            flat.ids[span],
            encoder.encode(last, Specials::None).unwrap()
        );
    }

    #[test]
    fn long_texts_cut_into_parts_encode_as_a_whole() {
        let encoder = toy_encoder();
        assert!(encoder.can_cut_texts(Specials::None));
        let words = "ab cab\n\n  abab\tx ";
        let texts = vec![
            words.repeat(3 * RUN_BYTES / words.len()),
            "ab cab ".repeat(3 * RUN_BYTES / 7),
            "ab".repeat(RUN_BYTES * 3 / 2),
            "short ab".to_string(),
            " \n".repeat(RUN_BYTES * 2) + "ab",
        ];
        for threads in [1, 2] {
            let FlatIds { ids, offsets } =
                encode_flat(&encoder, &texts, Specials::None, threads, Vec::new()).unwrap();
            assert_eq!(offsets.len(), texts.len() + 1);
            for (i, text) in texts.iter().enumerate() {
                let span = offsets[i] as usize..offsets[i + 1] as usize;
                assert_eq!(ids[span], encoder.encode(text, Specials::None).unwrap());
            }
        }
    }

    #[test]
    fn copied_texts_encode_as_borrowed_ones_do() {
        // Copies made in runs' buffers, which are used again, long ones cut
        // into parts; the feeder encoding runs itself midway, as Python does.
        let encoder = toy_encoder();
        let texts: Vec<String> = (0..400)
            .map(|i| "ab cab\n ".repeat((i * 7919) % 5000) + &"x".repeat(i % 3))
            .chain(["ab cab ".repeat(3 * RUN_BYTES / 7)])
            .collect();
        let expected: Vec<u32> = (texts.iter())
            .flat_map(|text| encoder.encode(text, Specials::None).unwrap())
            .collect();
        for threads in [1, 2, 3] {
            let (_, flat) =
                encode_flat_fed(&encoder, Specials::None, threads, Vec::new(), |feeder| {
                    for (i, text) in texts.iter().enumerate() {
                        if i % 2 == 0 {
                            feeder.push_copy(&text.clone());
                        } else {
                            feeder.push(text);
                        }
                        if feeder.has_backlog() {
                            feeder.encode_one();
                        }
                    }
                })
                .unwrap();
            assert_eq!(flat.ids, expected, "{threads} threads");
            assert_eq!(flat.offsets.len(), texts.len() + 1);
        }
    }

    #[test]
    fn a_panic_while_encoding_is_an_error_not_a_hang() {
        use crate::encode::INJECTED_PANIC;
        use std::sync::mpsc;
        use std::time::Duration;
        let encoder = Arc::new(toy_encoder());
        // The panic in the first run, in a middle one and in the last.
        for at in [0, 150, 299] {
            let mut texts: Vec<String> = (0..300).map(|i| "ab cab ".repeat(i * 40)).collect();
            texts[at] = INJECTED_PANIC.to_string();
            let texts = Arc::new(texts);
            for threads in [1, 2, 3] {
                let (done, results) = mpsc::channel();
                let (encoder, texts) = (encoder.clone(), texts.clone());
                std::thread::spawn(move || {
                    let flat = encode_flat(&encoder, &texts, Specials::None, threads, Vec::new());
                    let lists = encode_batch(&encoder, &texts, Specials::None, threads);
                    done.send((flat.err(), lists.err())).unwrap();
                });
                let (flat, lists) = results
                    .recv_timeout(Duration::from_secs(60))
                    .unwrap_or_else(|_| panic!("hung: panic in text {at}, {threads} threads"));
                for error in [flat, lists] {
                    let error = error.expect("an error");
                    assert!(matches!(error, Error::Internal(_)), "{error}");
                    assert!(error.to_string().contains("injected panic"), "{error}");
                }
            }
        }
    }

    #[test]
    fn encoding_from_inside_a_pool_task_does_not_block_the_pool() {
        // The caller is the only thread of the pool that its runs go to: it
        // must run them itself while it waits, not sleep.
        let encoder = toy_encoder();
        let texts: Vec<String> = (0..300).map(|i| "ab cab ".repeat(i * 40)).collect();
        let expected = encode_flat(&encoder, &texts, Specials::None, 1, Vec::new()).unwrap();
        let inside = run_with_threads(1, || {
            encode_flat(&encoder, &texts, Specials::None, 0, Vec::new()).unwrap()
        })
        .unwrap();
        assert_eq!(inside.ids, expected.ids);
        assert_eq!(inside.offsets, expected.offsets);
    }

    #[test]
    fn no_texts_give_no_ids() {
        let flat = encode_flat::<&str>(&toy_encoder(), &[], Specials::None, 2, vec![1, 2]).unwrap();
        assert!(flat.ids.is_empty());
        assert_eq!(flat.offsets, vec![0]);
    }
}
