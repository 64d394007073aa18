//! Files parsed on several threads, their documents handed on in order.
//!
//! Making documents of lines (finding the line ends, checking UTF-8, reading
//! JSON) runs at 600-800 MB/s on one core, and encoding at about 150 MB/s per
//! core: one thread reading a large plain file would cap a 16-core machine
//! near five cores' worth. Here one thread, the splitter, only cuts the
//! files' text into blocks of whole lines ([`super::blocks`]: a read and a
//! count of line ends, 2.4 GB/s); `parsers` threads make each block's
//! documents; and the caller takes the blocks' documents in order, so
//! documents, errors and statistics come out as one thread would give them.
//!
//! Memory: the blocks cut but not yet handed on, waiting for a parser, being
//! parsed or parsed early, hold at most [`BLOCKS_PER_PARSER`] blocks' worth
//! of text per parser (or one block, however large its lines). Their memory
//! is used again: fresh memory for every block cost more in page faults than
//! the copy into it.
//!
//! No deadlock: the caller takes every parsed block as it comes (keeping the
//! ones that arrive early), so parsers never wait on it for long; a parser's
//! panic becomes its block's error, so the block the caller waits for always
//! comes; when the caller stops, parsers stop at their next block, and the
//! splitter's next send fails once they are gone.

use super::blocks::{Block, BlockReader, BLOCK_BYTES};
use super::documents::{format_of, parse_block, Buffers, Output};
use super::queued::Queued;
use super::{DocumentFormat, ReadOptions, ReadStats, TextBatch};
use crate::error::Error;
use crate::system::threads;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

/// Blocks in flight per parser: one waiting, one being parsed, and two
/// parsed and waiting for (or being handed on by) the caller.
const BLOCKS_PER_PARSER: usize = 4;

/// What the splitter hands on, numbered in file order.
enum Part {
    Block {
        file: usize,
        block: Block,
    },
    /// The end of a file: its bytes read from disk, or why it could not be
    /// read to the end.
    End(Result<u64, Error>),
}

/// What a parser hands on, numbered as the splitter numbered it.
enum Parsed {
    Documents {
        batch: TextBatch,
        stats: ReadStats,
        /// A bad line that stops reading, after the documents before it.
        error: Option<Error>,
        /// The block's size, and the file's bytes read from disk when it
        /// was cut.
        size: usize,
        consumed: u64,
    },
    End(Result<u64, Error>),
}

/// The bounds of the blocks in flight: their size, and their text in all.
#[derive(Clone, Copy)]
pub(super) struct Budget {
    pub block_bytes: usize,
    pub ahead_bytes: usize,
}

impl Budget {
    pub fn for_parsers(parsers: usize) -> Self {
        Budget {
            block_bytes: BLOCK_BYTES,
            ahead_bytes: BLOCKS_PER_PARSER * parsers.max(1) * BLOCK_BYTES,
        }
    }
}

/// A file as its blocks are parsed: its name for errors, and its format.
struct Named {
    name: String,
    format: DocumentFormat,
}

/// [`super::read_documents`] with the files' blocks parsed on `parsers`
/// threads.
pub(super) fn read_documents_parsed_ahead(
    files: &[PathBuf],
    options: &ReadOptions,
    parsers: usize,
    budget: Budget,
    progress: &mut dyn FnMut(u64),
    emit: &mut dyn FnMut(&str) -> Result<(), Error>,
) -> Result<ReadStats, Error> {
    let named: Vec<Named> = (files.iter())
        .map(|path| Named {
            name: path.display().to_string(),
            format: format_of(path, options.format),
        })
        .collect();
    let stop = AtomicBool::new(false);
    let queued = Queued::default();
    // Room on every queue for all the blocks the budget lets through.
    let blocks = BLOCKS_PER_PARSER * parsers.max(1) + 1;
    let (part_sender, parts) = sync_channel::<(u64, Part)>(blocks);
    let (parsed_sender, parsed) = sync_channel::<(u64, Parsed)>(blocks);
    let (returned, recycled) = sync_channel::<Vec<u8>>(blocks);
    let (emptied, batches) = sync_channel::<TextBatch>(blocks);
    let parts = Arc::new(Mutex::new(parts));
    let batches = Arc::new(Mutex::new(batches));
    thread::scope(|scope| {
        let (stop, queued, named) = (&stop, &queued, &named);
        let cannot_start =
            |e: std::io::Error| Error::Invalid(format!("cannot start a reader thread: {e}"));
        let splitter = thread::Builder::new()
            .name("bbpe-split".into())
            .spawn_scoped(scope, move || {
                let ahead = Ahead {
                    queued,
                    budget,
                    stop,
                };
                split(files, named, &ahead, &part_sender, &recycled)
            })
            .map_err(cannot_start)?;
        let mut workers = Vec::with_capacity(parsers);
        for _ in 0..parsers.max(1) {
            let (parts, batches) = (Arc::clone(&parts), Arc::clone(&batches));
            let (parsed_sender, returned) = (parsed_sender.clone(), returned.clone());
            let worker = thread::Builder::new()
                .name("bbpe-parse".into())
                .spawn_scoped(scope, move || {
                    parse(
                        named,
                        options,
                        &parts,
                        &batches,
                        &parsed_sender,
                        &returned,
                        stop,
                    )
                })
                .map_err(cannot_start)?;
            workers.push(worker);
        }
        // Only the workers hold these now: when they are gone, sends fail.
        drop((parts, batches, parsed_sender, returned));

        let outcome = take_in_order(&parsed, &emptied, queued, progress, emit);
        stop.store(true, Ordering::Relaxed);
        queued.wake(); // a splitter waiting for room sees the stop
        drop(parsed); // a parser blocked on a full queue wakes and stops
        let mut panicked = None;
        for thread in workers.into_iter().chain([splitter]) {
            if let Err(panic) = thread.join() {
                panicked.get_or_insert(threads::panicked("a reader", panic));
            }
        }
        if let Some(error) = panicked {
            return Err(error);
        }
        outcome
    })
}

/// The splitter's room to run ahead of the caller.
struct Ahead<'a> {
    queued: &'a Queued,
    budget: Budget,
    stop: &'a AtomicBool,
}

/// The splitter: every file's blocks, then its end, numbered in order.
fn split(
    files: &[PathBuf],
    named: &[Named],
    ahead: &Ahead,
    parts: &SyncSender<(u64, Part)>,
    recycled: &Receiver<Vec<u8>>,
) {
    let mut number = 0;
    let mut send = |part: Part| {
        if let Part::Block { block, .. } = &part {
            let size = block.bytes.len();
            (ahead.queued).reserve(size, ahead.budget.ahead_bytes, ahead.stop);
        }
        let sent = !ahead.stop.load(Ordering::Relaxed) && parts.send((number, part)).is_ok();
        number += 1;
        sent
    };
    for (file, path) in files.iter().enumerate() {
        let block_bytes = ahead.budget.block_bytes;
        let mut blocks = match BlockReader::open(path, named[file].format, block_bytes) {
            Ok(blocks) => blocks,
            Err(e) => {
                send(Part::End(Err(e)));
                return;
            }
        };
        loop {
            match blocks.next_block(recycled.try_recv().unwrap_or_default()) {
                Ok(Some(block)) => {
                    if !send(Part::Block { file, block }) {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    send(Part::End(Err(e)));
                    return;
                }
            }
        }
        if !send(Part::End(Ok(blocks.consumed()))) {
            return;
        }
    }
}

/// A parser: blocks into documents until the splitter or the caller stops.
fn parse(
    named: &[Named],
    options: &ReadOptions,
    parts: &Mutex<Receiver<(u64, Part)>>,
    batches: &Mutex<Receiver<TextBatch>>,
    parsed: &SyncSender<(u64, Parsed)>,
    returned: &SyncSender<Vec<u8>>,
    stop: &AtomicBool,
) {
    let mut buffers = Buffers::default();
    loop {
        let next = parts.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok((number, part)) = next else {
            return; // the splitter is done
        };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let result = match part {
            Part::End(end) => Parsed::End(end),
            Part::Block { file, block } => {
                let batch = batches
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .try_recv();
                let mut batch = batch.unwrap_or_default();
                let mut push = |document: &str| {
                    batch.push(document);
                    Ok(())
                };
                let mut output = Output::new(&mut push, options.on_bad_input);
                let Named { name, format } = &named[file];
                // A panic becomes this block's error, in its place: the
                // caller, waiting for this block, would otherwise wait forever.
                let parsed = catch_unwind(AssertUnwindSafe(|| {
                    parse_block(&block, name, *format, options, &mut buffers, &mut output)
                }));
                let error = match parsed {
                    Ok(result) => result.err(),
                    Err(panic) => Some(threads::panicked("a parser", panic)),
                };
                let stats = output.into_stats();
                let size = block.bytes.len();
                let _ = returned.try_send(block.bytes);
                Parsed::Documents {
                    batch,
                    stats,
                    error,
                    size,
                    consumed: block.consumed,
                }
            }
        };
        if parsed.send((number, result)).is_err() {
            return; // the caller has stopped
        }
    }
}

/// The caller's part: parsed blocks in the splitter's order, their documents
/// to `emit`.
fn take_in_order(
    parsed: &Receiver<(u64, Parsed)>,
    emptied: &SyncSender<TextBatch>,
    queued: &Queued,
    progress: &mut dyn FnMut(u64),
    emit: &mut dyn FnMut(&str) -> Result<(), Error>,
) -> Result<ReadStats, Error> {
    let mut early = BTreeMap::new();
    let mut stats = ReadStats::default();
    let mut done = 0; // bytes read from disk of the files before this one
    let mut next = 0;
    loop {
        let part = match early.remove(&next) {
            Some(part) => part,
            None => loop {
                let Ok((number, part)) = parsed.recv() else {
                    // Every part is taken (a file's end came last), or a
                    // thread panicked, which joining it says.
                    return Ok(stats);
                };
                if number == next {
                    break part;
                }
                early.insert(number, part);
            },
        };
        match part {
            Parsed::Documents {
                mut batch,
                stats: block,
                error,
                size,
                consumed,
            } => {
                progress(done + consumed);
                batch.documents(0..batch.len()).try_for_each(&mut *emit)?;
                queued.release(size);
                stats.add(block);
                if let Some(error) = error {
                    return Err(error);
                }
                batch.clear();
                let _ = emptied.try_send(batch);
            }
            Parsed::End(Ok(consumed)) => {
                done += consumed;
                stats.files += 1;
                progress(done);
            }
            Parsed::End(Err(error)) => return Err(error),
        }
        next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::testing::{xz, zstd, TempDir};
    use crate::corpus::{read_documents, total_size, DocumentFormat, OnBadInput};

    /// What reading gives: the documents, and the statistics or the error.
    type Read = (Vec<String>, Result<String, String>);

    fn read(files: &[PathBuf], options: &ReadOptions, parsers: usize, budget: Budget) -> Read {
        let mut documents = Vec::new();
        let mut push = |d: &str| {
            documents.push(d.to_string());
            Ok(())
        };
        let result = if parsers == 0 {
            read_documents(files, options, 1, &mut |_| {}, &mut push)
        } else {
            read_documents_parsed_ahead(files, options, parsers, budget, &mut |_| {}, &mut push)
        };
        let result = result.map(|s| format!("{s:?}")).map_err(|e| e.to_string());
        (documents, result)
    }

    /// Lines of every kind a corpus has, from a small generator: JSON with
    /// escapes, blank and whitespace lines (CRLF ones too), non-ASCII text,
    /// and with `bad` lines that are not JSON or not UTF-8.
    fn lines(seed: u64, count: usize, bad: bool) -> Vec<u8> {
        let mut next = crate::testing::random_stream(seed);
        let mut text = Vec::new();
        for i in 0..count {
            let line = match next() % 10 {
                0 => Vec::new(),
                1 => b" \t\r".to_vec(),
                2 => format!("{{\"text\": \"한국어 {i}\\n둘째 줄\"}}\r").into_bytes(),
                3 if bad => b"not json".to_vec(),
                4 if bad => b"{\"text\": \"\xff\"}".to_vec(),
                _ => {
                    let pad = "x".repeat((next() % 300) as usize);
                    format!("{{\"id\": {i}, \"text\": \"doc {i} {pad}\"}}").into_bytes()
                }
            };
            text.extend_from_slice(&line);
            text.push(b'\n');
        }
        text
    }

    fn small(block_bytes: usize, ahead_bytes: usize) -> Budget {
        Budget {
            block_bytes,
            ahead_bytes,
        }
    }

    #[test]
    fn blocks_parsed_at_once_give_what_one_thread_gives() {
        let dir = TempDir::new();
        let mut with_bom = b"\xef\xbb\xbf".to_vec();
        with_bom.extend(lines(1, 2_000, false));
        let files = vec![
            dir.write("a.jsonl", &with_bom),
            dir.write("b.jsonl", b""),
            dir.write("c.jsonl", &lines(2, 5_000, true)),
            dir.write("d.jsonl", b"{\"text\": \"no line end\"}"),
            dir.write("e.jsonl", &lines(3, 3_000, true)),
        ];
        for format in [
            DocumentFormat::Jsonl,
            DocumentFormat::Lines,
            DocumentFormat::Paragraphs,
        ] {
            for on_bad_input in [OnBadInput::Skip, OnBadInput::Stop] {
                let options = ReadOptions {
                    format,
                    on_bad_input,
                    ..ReadOptions::default()
                };
                let serial = read(&files, &options, 0, small(0, 0));
                // The bad lines of c.jsonl stop reading, or are skipped.
                let stopped = serial.1.as_ref().is_err_and(|e| e.contains("c.jsonl"));
                let skipped = serial.1.as_ref().is_ok_and(|s| !s.contains("skipped: 0"));
                let case = format!("{format:?} {on_bad_input:?}");
                assert!(
                    serial.0.len() > 100 && (stopped || skipped),
                    "{case} {:?}",
                    serial.1
                );
                for (parsers, budget) in [
                    (1, small(BLOCK_BYTES_FOR_TESTS, 1 << 20)),
                    (2, small(100, 0)),
                    (3, small(4_000, 20_000)),
                    (8, Budget::for_parsers(8)),
                ] {
                    let parallel = read(&files, &options, parsers, budget);
                    assert!(
                        parallel == serial,
                        "{case}, {parsers} parsers: {:?} against {:?}",
                        parallel.1,
                        serial.1
                    );
                }
            }
        }
    }

    const BLOCK_BYTES_FOR_TESTS: usize = 1 << 16;

    #[test]
    fn a_bad_line_is_named_by_file_and_line() {
        let dir = TempDir::new();
        let mut text = lines(4, 3_000, false);
        text.extend_from_slice(b"{\"text\": 5}\n");
        text.extend(lines(5, 3_000, false));
        let files = [dir.write("a.jsonl.zst", &zstd(&text))];
        let (documents, error) = read(&files, &ReadOptions::default(), 2, small(1_000, 10_000));
        let error = error.unwrap_err();
        assert!(
            error.contains("a.jsonl.zst") && error.contains("line 3001"),
            "{error}"
        );
        let serial = read(&files, &ReadOptions::default(), 0, small(0, 0));
        assert_eq!(documents, serial.0);
    }

    #[test]
    fn a_read_error_comes_after_the_lines_before_it() {
        let dir = TempDir::new();
        let mut data = xz(&lines(6, 4_000, false));
        data.truncate(data.len() / 2);
        let files = [dir.write("a.jsonl.xz", &data)];
        let serial = read(&files, &ReadOptions::default(), 0, small(0, 0));
        let parallel = read(&files, &ReadOptions::default(), 3, small(500, 5_000));
        assert!(
            serial.1.as_ref().unwrap_err().contains("a.jsonl.xz"),
            "{:?}",
            serial.1
        );
        assert!(serial.0.len() > 100);
        assert!(parallel == serial, "{:?}", parallel.1);
    }

    #[test]
    fn a_missing_file_stops_reading_there() {
        let dir = TempDir::new();
        let files = [
            dir.write("a.jsonl", &lines(7, 100, false)),
            dir.path().join("gone.jsonl"),
        ];
        let (documents, error) = read(&files, &ReadOptions::default(), 2, small(100, 1_000));
        assert!(error.unwrap_err().contains("gone.jsonl"));
        assert_eq!(
            documents,
            read(&files[..1], &ReadOptions::default(), 0, small(0, 0)).0
        );
    }

    #[test]
    fn an_error_from_emit_stops_every_thread() {
        let dir = TempDir::new();
        let files = [dir.write("a.jsonl", &lines(8, 20_000, false))];
        let mut taken = 0;
        let error = read_documents_parsed_ahead(
            &files,
            &ReadOptions::default(),
            3,
            small(1_000, 8_000),
            &mut |_| {},
            &mut |_| {
                taken += 1;
                if taken == 5_000 {
                    return Err(Error::Invalid("enough".into()));
                }
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "enough");
        assert_eq!(taken, 5_000);
    }

    #[test]
    fn a_panic_while_parsing_is_an_error_not_a_hang() {
        let dir = TempDir::new();
        let mut text = lines(11, 20_000, false);
        text.extend_from_slice(crate::encode::INJECTED_PANIC.as_bytes());
        text.push(b'\n');
        text.extend(lines(12, 20_000, false));
        let files = [dir.write("a.jsonl", &text)];
        let (documents, error) = read(&files, &ReadOptions::default(), 3, small(2_000, 16_000));
        let error = error.unwrap_err();
        assert!(error.contains("a parser thread failed"), "{error}");
        // The documents of the blocks before the bad one came first.
        assert!(documents.len() > 10_000 && documents.len() < 20_000);
    }

    #[test]
    fn progress_rises_to_the_files_sizes() {
        let dir = TempDir::new();
        let files = [
            dir.write("a.jsonl", &lines(9, 3_000, false)),
            dir.write("b.jsonl.xz", &xz(&lines(10, 3_000, false))),
        ];
        let mut seen = Vec::new();
        let budget = small(2_000, 20_000);
        let read = read_documents_parsed_ahead(
            &files,
            &ReadOptions::default(),
            2,
            budget,
            &mut |n| seen.push(n),
            &mut |_| Ok(()),
        );
        assert_eq!(read.unwrap().files, 2);
        assert!(
            seen.len() > 10 && seen.windows(2).all(|w| w[0] <= w[1]),
            "{seen:?}"
        );
        assert_eq!(seen.last(), Some(&total_size(&files)));
    }
}
