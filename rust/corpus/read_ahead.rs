//! Several files read at once, their documents handed on in file order.
//!
//! One decompressor is slow (xz: about 27 MB/s of text on this machine's
//! cores, against 150 MB/s of encoding per core), and a corpus usually comes
//! as many files. `readers` threads each take every `readers`-th file,
//! decompress and parse it into pieces of documents, and queue the pieces on
//! a bounded channel of their own; the caller's thread takes the files'
//! pieces in file order, so documents, errors and statistics come out as one
//! reader would give them.
//!
//! Memory: each reader queues at most [`AHEAD_BYTES`] / `readers` bytes of
//! text (or one piece, however large its documents), so a reader gets that
//! far into its next file while the files before it are handed on. A file
//! much longer than its share is mostly read at one decompressor's pace when
//! its turn comes: many files of moderate size (or zstd, which decompresses
//! ten times faster than xz) make the most of it.
//!
//! No deadlock: a reader finishes one file before it starts its next, and the
//! caller drains a reader's channel in the order the reader filled it.

use super::documents::{read_file, Buffers, Output};
use super::queued::Queued;
use super::{ReadOptions, ReadStats, TextBatch};
use crate::error::Error;
use crate::system::threads;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread;

/// Text queued ahead of the caller, all readers together.
pub(super) const AHEAD_BYTES: usize = 512 << 20;
/// Text per piece handed from a reader to the caller.
pub(super) const PIECE_BYTES: usize = 1 << 20;

/// What a reader queues for the caller.
enum Piece {
    Documents(TextBatch),
    /// The end of a file: what reading it gave, or its error.
    End(Result<ReadStats, Error>),
}

/// [`super::read_documents`] with `readers` (at least 2) files read at once
/// and about `ahead_bytes` of text queued (at least two pieces per reader).
pub(super) fn read_documents_ahead(
    files: &[PathBuf],
    options: &ReadOptions,
    readers: usize,
    ahead_bytes: usize,
    progress: &mut dyn FnMut(u64),
    emit: &mut dyn FnMut(&str) -> Result<(), Error>,
) -> Result<ReadStats, Error> {
    let budget = ahead_bytes / readers;
    let queued = (budget / PIECE_BYTES).max(2);
    let consumed = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let room: Vec<Queued> = (0..readers).map(|_| Queued::default()).collect();
    thread::scope(|scope| {
        let mut lanes = Vec::with_capacity(readers);
        for (first, queued_text) in room.iter().enumerate().take(files.len()) {
            let (pieces, received) = sync_channel(queued);
            let (returned, recycled) = sync_channel(queued);
            let lane = Lane {
                pieces,
                recycled,
                queued: queued_text,
                budget,
                consumed: &consumed,
                stop: &stop,
            };
            let mine = files.iter().skip(first).step_by(readers);
            let reader = thread::Builder::new()
                .name("bbpe-read".into())
                .spawn_scoped(scope, move || read_files(mine, options, &lane))
                .map_err(|e| Error::Invalid(format!("cannot start a reader thread: {e}")))?;
            lanes.push((received, returned, reader));
        }
        let mut stats = ReadStats::default();
        let mut outcome = Ok(());
        'files: for index in 0..files.len() {
            let (received, returned, _) = &lanes[index % readers];
            loop {
                match received.recv() {
                    Ok(Piece::Documents(mut batch)) => {
                        room[index % readers].release(batch.bytes());
                        progress(consumed.load(Ordering::Relaxed));
                        if let Err(e) = batch.documents(0..batch.len()).try_for_each(&mut *emit) {
                            outcome = Err(e);
                            break 'files;
                        }
                        batch.clear();
                        let _ = returned.try_send(batch);
                    }
                    Ok(Piece::End(Ok(file))) => {
                        stats.add(file);
                        stats.files += 1;
                        break;
                    }
                    Ok(Piece::End(Err(e))) => {
                        outcome = Err(e);
                        break 'files;
                    }
                    // The reader is gone without an end: it panicked, and
                    // joining it below says so.
                    Err(_) => break 'files,
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        room.iter().for_each(Queued::wake); // a reader waiting for room sees the stop
        let mut panicked = None;
        for (received, returned, reader) in lanes {
            drop((received, returned)); // a reader blocked on a full channel wakes and stops
            if let Err(panic) = reader.join() {
                panicked.get_or_insert(threads::panicked("a reader", panic));
            }
        }
        if let Some(error) = panicked {
            return Err(error);
        }
        outcome.map(|()| {
            progress(consumed.load(Ordering::Relaxed));
            stats
        })
    })
}

/// A reader's end of its queue.
struct Lane<'a> {
    pieces: SyncSender<Piece>,
    recycled: Receiver<TextBatch>,
    queued: &'a Queued,
    budget: usize,
    consumed: &'a AtomicU64,
    stop: &'a AtomicBool,
}

/// One reader: its files in turn, each as pieces of documents and an end.
fn read_files<'a>(files: impl Iterator<Item = &'a PathBuf>, options: &ReadOptions, lane: &Lane) {
    let Lane {
        pieces,
        recycled,
        queued,
        budget,
        consumed,
        stop,
    } = lane;
    let stopped = || Error::Invalid("reading was stopped".into());
    let mut buffers = Buffers::default();
    for path in files {
        let mut batch = TextBatch::default();
        let send = |batch: &mut TextBatch| {
            queued.reserve(batch.bytes(), *budget, stop);
            let next = recycled.try_recv().unwrap_or_default();
            let full = std::mem::replace(batch, next);
            pieces.send(Piece::Documents(full)).map_err(|_| stopped())
        };
        let mut emit = |document: &str| {
            if stop.load(Ordering::Relaxed) {
                return Err(stopped());
            }
            batch.push(document);
            if batch.bytes() >= PIECE_BYTES {
                send(&mut batch)?;
            }
            Ok(())
        };
        let mut output = Output::new(&mut emit, options.on_bad_input);
        let mut reported = 0;
        let result = read_file(path, options, &mut buffers, &mut output, &mut |n| {
            consumed.fetch_add(n - reported, Ordering::Relaxed);
            reported = n;
        });
        let result = result.map(|_| output.into_stats());
        // Documents before a bad line are handed on, as one reader would.
        let last = if batch.is_empty() {
            Ok(())
        } else {
            send(&mut batch)
        };
        if last.is_err() || pieces.send(Piece::End(result)).is_err() {
            return; // the caller has stopped taking pieces
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::read_documents;
    use crate::corpus::testing::{gzip, xz, zstd, TempDir};
    use crate::corpus::{total_size, DocumentFormat, OnBadInput};

    /// What reading gives: the documents, the statistics or the error.
    type Read = (Vec<String>, Result<String, String>);

    fn read(files: &[PathBuf], options: &ReadOptions, readers: usize, ahead: usize) -> Read {
        let mut documents = Vec::new();
        let result = if readers == 1 {
            read_documents(files, options, 1, &mut |_| {}, &mut |d| {
                documents.push(d.to_string());
                Ok(())
            })
        } else {
            read_documents_ahead(files, options, readers, ahead, &mut |_| {}, &mut |d| {
                documents.push(d.to_string());
                Ok(())
            })
        };
        (
            documents,
            result.map(|s| format!("{s:?}")).map_err(|e| e.to_string()),
        )
    }

    /// Files of every compression, some several pieces long, an empty one, and
    /// (with `bad`) lines that are not JSON in two of them.
    fn corpus(dir: &TempDir, bad: bool) -> Vec<PathBuf> {
        let lines = |tag: &str, n: usize| -> Vec<u8> {
            (0..n)
                .flat_map(|i| {
                    format!("{{\"text\": \"{tag} {i} {}\"}}\n", "x".repeat(i % 300)).into_bytes()
                })
                .collect()
        };
        let mut second = lines("b", 9_000);
        if bad {
            second.extend_from_slice(b"not json\n");
            second.extend(lines("b2", 10));
        }
        let mut fifth = lines("e", 20);
        if bad {
            fifth.splice(0..0, b"{\"text\": 3}\n".iter().copied());
        }
        vec![
            dir.write("a.jsonl.xz", &xz(&lines("a", 30_000))),
            dir.write("b.jsonl.gz", &gzip(&second)),
            dir.write("c.jsonl", b""),
            dir.write("d.jsonl.zst", &zstd(&lines("d", 12_000))),
            dir.write("e.jsonl", &fifth),
            dir.write("f.jsonl.xz", &xz(&lines("f", 5))),
            dir.write("g.jsonl.gz", &gzip(&lines("g", 25_000))),
        ]
    }

    #[test]
    fn files_read_at_once_give_what_one_reader_gives() {
        let dir = TempDir::new();
        let files = corpus(&dir, false);
        let jsonl = ReadOptions::default();
        let serial = read(&files, &jsonl, 1, 0);
        assert!(
            serial.0.len() > 70_000 && serial.1.is_ok(),
            "{:?}",
            serial.1
        );
        // Queues of two pieces make readers wait on the caller; big ones let them run ahead.
        for (readers, ahead) in [(2, 0), (3, 0), (2, AHEAD_BYTES), (16, AHEAD_BYTES)] {
            assert!(
                read(&files, &jsonl, readers, ahead) == serial,
                "{readers} readers"
            );
        }
        let skip = ReadOptions {
            on_bad_input: OnBadInput::Skip,
            ..ReadOptions::default()
        };
        let files = corpus(&dir, true);
        let serial = read(&files, &skip, 1, 0);
        assert!(
            serial.1.as_ref().unwrap().contains("skipped: 2"),
            "{:?}",
            serial.1
        );
        assert!(
            serial.1.as_ref().unwrap().contains("b.jsonl.gz"),
            "{:?}",
            serial.1
        );
        assert!(read(&files, &skip, 3, 0) == serial);
        let lines = ReadOptions {
            format: DocumentFormat::Lines,
            ..ReadOptions::default()
        };
        assert!(read(&files, &lines, 2, 0) == read(&files, &lines, 1, 0));
    }

    #[test]
    fn documents_larger_than_the_budget_pass_one_at_a_time() {
        let dir = TempDir::new();
        let big = |tag: &str| -> Vec<u8> {
            (0..3)
                .flat_map(|i| {
                    format!("{{\"text\": \"{tag}{i} {}\"}}\n", "y".repeat(3 << 20)).into_bytes()
                })
                .collect()
        };
        let files = vec![
            dir.write("a.jsonl.gz", &gzip(&big("a"))),
            dir.write("b.jsonl", &big("b")),
            dir.write("c.jsonl.zst", &zstd(&big("c"))),
        ];
        let serial = read(&files, &ReadOptions::default(), 1, 0);
        assert_eq!(serial.0.len(), 9);
        // A budget of 1 MB, split between the readers: every piece is over it.
        assert!(read(&files, &ReadOptions::default(), 2, 1 << 20) == serial);
    }

    #[test]
    fn a_bad_line_stops_reading_where_one_reader_stops() {
        let dir = TempDir::new();
        let files = corpus(&dir, true);
        let serial = read(&files, &ReadOptions::default(), 1, 0);
        let error = serial.1.as_ref().unwrap_err();
        assert!(
            error.contains("b.jsonl.gz") && error.contains("line 9001"),
            "{error}"
        );
        for readers in [2, 4] {
            assert!(read(&files, &ReadOptions::default(), readers, 0) == serial);
        }
    }

    #[test]
    fn an_error_from_emit_stops_every_reader() {
        let dir = TempDir::new();
        let files = corpus(&dir, false);
        let mut taken = 0;
        let error = read_documents_ahead(
            &files,
            &ReadOptions::default(),
            3,
            0,
            &mut |_| {},
            &mut |_| {
                taken += 1;
                if taken == 40_000 {
                    return Err(Error::Invalid("enough".into()));
                }
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "enough");
        assert_eq!(taken, 40_000);
    }

    #[test]
    fn progress_rises_to_the_files_sizes() {
        let dir = TempDir::new();
        let files = corpus(&dir, false);
        let mut seen = Vec::new();
        read_documents_ahead(
            &files,
            &ReadOptions::default(),
            3,
            0,
            &mut |n| seen.push(n),
            &mut |_| Ok(()),
        )
        .unwrap();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert_eq!(seen.last(), Some(&total_size(&files)));
    }
}
