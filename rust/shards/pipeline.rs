//! A corpus to shards: a reader thread turns files into batches of
//! documents, the calling thread encodes each batch on all cores, and a
//! writer thread appends the ids to the shards — the three overlap. Each
//! document's ids depend only on its text, so the shards are the same for
//! any thread count.

use super::format::TokenDtype;
use super::sentences::sentence_spans;
use super::shard_bytes::{self, ShardBytes};
use super::writer::{ExistingShards, ShardRecord, ShardSet};
use crate::corpus::{read_documents, ReadOptions, ReadStats, TextBatch};
use crate::encode::batch::{encode_flat, FlatIds};
use crate::encode::{Encoder, Specials};
use crate::error::Error;
use crate::pretokenize::Pretokenizer;
use crate::system::threads;
use crate::vocab::{Vocab, END_OF_DOCUMENT_TOKENS};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::thread;

/// Text per batch handed from the reader to the encoder.
const BATCH_BYTES: usize = 8 << 20;

#[derive(Debug, Clone)]
pub struct ShardSettings {
    /// File names are `<prefix>_00000.bin` / `.idx`, ...
    pub prefix: String,
    /// A shard is closed once its `.bin` holds this many bytes.
    pub shard_bytes: u64,
    /// One sequence per sentence instead of per document.
    pub split_sentences: bool,
    /// End each document's last sequence with the vocabulary's
    /// end-of-document token ([`Vocab::end_of_document_id`]).
    pub append_eos: bool,
    /// 0 = every core.
    pub threads: usize,
    /// What to do with a shard set already in the output directory.
    pub existing: ExistingShards,
    /// Which share of a corpus split across machines this run encodes.
    pub part: Option<Part>,
}

/// One rank's share of a corpus split across machines (`bbpe encode --rank`),
/// recorded in its manifest so that the parts can be checked and combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub rank: u64,
    pub world_size: u64,
    /// SHA-256 of the whole corpus's file list (paths and sizes) that the
    /// ranks split: every part of one run records the same.
    pub corpus_sha256: String,
}

/// How far the run is, for progress bars.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Input bytes read (compressed size for compressed files) and in all.
    pub input_bytes: u64,
    pub total_bytes: u64,
    pub documents: u64,
    pub text_bytes: u64,
    pub tokens: u64,
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub shards: Vec<ShardRecord>,
    pub read: ReadStats,
    pub empty_documents: u64,
    /// Input documents taken over from an interrupted run, and their text.
    pub resumed_documents: u64,
    pub resumed_text_bytes: u64,
    /// What this run read and encoded (not counting resumed documents).
    pub documents: u64,
    pub tokens: u64,
    pub text_bytes: u64,
}

/// The whole dataset a run leaves: its shards' counts (earlier, resumed work
/// and appended end tokens included) and the text they came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetTotals {
    pub documents: u64,
    pub sequences: u64,
    pub tokens: u64,
    pub text_bytes: u64,
}

impl Summary {
    /// The dataset's totals; without shards (a count that writes none) what
    /// this run read.
    pub fn totals(&self) -> DatasetTotals {
        let total = |field: fn(&ShardRecord) -> u64| self.shards.iter().map(field).sum::<u64>();
        let written = !self.shards.is_empty();
        DatasetTotals {
            documents: if written {
                total(|s| s.documents)
            } else {
                self.documents
            },
            sequences: total(|s| s.sequences),
            tokens: if written {
                total(|s| s.tokens)
            } else {
                self.tokens
            },
            text_bytes: self.text_bytes + self.resumed_text_bytes,
        }
    }
}

/// One encoded batch: ids of all sequences end to end (the buffer is used
/// again for the next batch), where each sequence ends, and how many
/// sequences each document has.
struct Encoded {
    ids: Vec<u32>,
    ends: Vec<u64>,
    sequences_per_document: Vec<u32>,
}

/// Encodes `files` into shards in `dir`, with a manifest that records the
/// run (see [`manifest_header`]; `tokenizer` is the name it was loaded by)
/// and must match when resuming. `progress` returns `false` to stop (the
/// finished shards stay, ready to resume).
pub fn encode_to_shards(
    encoder: &Encoder,
    tokenizer: &str,
    files: &[PathBuf],
    read: &ReadOptions,
    dir: &Path,
    settings: &ShardSettings,
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> Result<Summary, Error> {
    let eos = end_of_document(encoder.vocab(), settings)?;
    let header = manifest_header(encoder, tokenizer, files, read, settings, eos);
    let dtype = TokenDtype::for_vocab_size(encoder.vocab().size());
    let (shards, skip) = ShardSet::open(
        dir,
        &settings.prefix,
        dtype,
        settings.shard_bytes,
        header,
        settings.existing,
        settings.threads,
    )?;
    let shards = Some((shards, eos));
    run(encoder, files, read, settings, shards, skip, progress)
}

/// The id that ends each document, if the settings ask for one.
fn end_of_document(vocab: &Vocab, settings: &ShardSettings) -> Result<Option<u32>, Error> {
    if !settings.append_eos {
        return Ok(None);
    }
    let id = vocab.end_of_document_id().ok_or_else(|| {
        Error::Invalid(format!(
            "the vocabulary has no end-of-document token ({})",
            END_OF_DOCUMENT_TOKENS.join(" or ")
        ))
    })?;
    Ok(Some(id))
}

/// What the manifest says about a run besides its shards, in the order it is
/// written: the tokenizer (name, size, fingerprint of the ids), the settings
/// (those of the shards, then of reading) and the input files with their
/// sizes, and for one rank of a split run which part it is. A run resumes
/// only where these are the same.
fn manifest_header(
    encoder: &Encoder,
    tokenizer: &str,
    files: &[PathBuf],
    read: &ReadOptions,
    settings: &ShardSettings,
    eos: Option<u32>,
) -> Map<String, Value> {
    let inputs: Vec<Value> = files
        .iter()
        .map(|file| {
            let bytes = std::fs::metadata(file).map(|m| m.len()).ok();
            json!({"path": file.display().to_string(), "bytes": bytes})
        })
        .collect();
    let header = json!({
        "tokenizer": {
            "name": tokenizer,
            "vocab_size": encoder.vocab().size(),
            "vocab_sha256": vocabulary_sha256(encoder),
        },
        "settings": {
            "prefix": settings.prefix,
            "shard_bytes": settings.shard_bytes,
            "split_sentences": settings.split_sentences,
            "append_eos": settings.append_eos,
            "eos_id": eos,
            "format": read.format.name(),
            "text_field": read.text_field,
            "on_bad_input": read.on_bad_input.name(),
        },
        "inputs": inputs,
    });
    let Value::Object(mut header) = header else {
        unreachable!("a JSON object literal")
    };
    if let Some(part) = &settings.part {
        let part = json!({
            "rank": part.rank,
            "world_size": part.world_size,
            "corpus_sha256": part.corpus_sha256,
        });
        header.insert("part".into(), part);
    }
    header
}

/// Reads and encodes `files` as [`encode_to_shards`] does, writing nothing:
/// counts and speed only.
pub fn count_tokens(
    encoder: &Encoder,
    files: &[PathBuf],
    read: &ReadOptions,
    threads: usize,
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> Result<Summary, Error> {
    // Documents whole, nothing appended: what the shards would hold by default.
    let settings = ShardSettings {
        prefix: String::new(),
        shard_bytes: u64::MAX,
        split_sentences: false,
        append_eos: false,
        threads,
        existing: ExistingShards::Refuse,
        part: None,
    };
    run(encoder, files, read, &settings, None, 0, progress)
}

/// The pipeline; without `shards` (and the id that ends each document)
/// nothing is converted or written.
fn run(
    encoder: &Encoder,
    files: &[PathBuf],
    read: &ReadOptions,
    settings: &ShardSettings,
    shards: Option<(ShardSet, Option<u32>)>,
    skip: u64,
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> Result<Summary, Error> {
    let (shards, eos) = shards.unzip();
    let (dtype, eos) = (shards.as_ref().map(ShardSet::dtype), eos.flatten());
    let mut state = Progress {
        total_bytes: crate::corpus::total_size(files),
        ..Default::default()
    };
    // Reading takes as many threads as encoding, where it can use them.
    let read_threads = threads::resolve(settings.threads)?;
    let input_bytes = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let (batch_sender, batches) = sync_channel::<TextBatch>(2);
    let (converted_sender, converted) = sync_channel::<ShardBytes>(2);
    // Used buffers travel back for reuse, so that memory is touched once.
    let (bytes_sender, bytes_buffers) = sync_channel::<Vec<u8>>(4);
    let (empty_sender, empties) = sync_channel::<TextBatch>(4);

    thread::scope(|scope| {
        let (input_bytes, stop) = (&input_bytes, &stop);
        // Named, so that profiles show each stage's share.
        let named = |name: &str| thread::Builder::new().name(format!("bbpe-{name}"));
        let cannot_start =
            |e: std::io::Error| Error::Invalid(format!("cannot start a thread: {e}"));
        let reader = named("reader")
            .spawn_scoped(scope, move || {
                let mut batch = TextBatch::default();
                let mut seen = 0u64;
                // The resumed documents are read again only to be skipped; their
                // size makes the run's totals (bytes per token) the whole dataset's.
                let mut skipped_bytes = 0u64;
                let stats = read_documents(
                    files,
                    read,
                    read_threads,
                    &mut |bytes| input_bytes.store(bytes, Ordering::Relaxed),
                    &mut |document| {
                        if stop.load(Ordering::Relaxed) {
                            return Err(Error::Invalid("encoding was stopped".into()));
                        }
                        seen += 1;
                        if seen <= skip {
                            skipped_bytes += document.len() as u64;
                            return Ok(());
                        }
                        batch.push(document);
                        if batch.bytes() >= BATCH_BYTES {
                            let next = empties.try_recv().unwrap_or_default();
                            let full = std::mem::replace(&mut batch, next);
                            batch_sender
                                .send(full)
                                .map_err(|_| Error::Invalid("encoding was stopped".into()))?;
                        }
                        Ok(())
                    },
                );
                if stats.is_ok() && !batch.is_empty() {
                    let _ = batch_sender.send(batch);
                }
                drop(batch_sender);
                stats.map(|stats| (stats, skipped_bytes))
            })
            .map_err(cannot_start)?;
        let writer = named("writer")
            .spawn_scoped(scope, move || -> Result<Option<ShardSet>, Error> {
                let Some(mut shards) = shards else {
                    return Ok(None);
                };
                for batch in converted {
                    if let Err(error) = shards.add_batch(&batch) {
                        // The failure is the error to report; what was whole
                        // before it is kept if it can be.
                        let _ = shards.publish_closed();
                        return Err(error);
                    }
                    // The encoder may have stopped; then the buffer is just dropped.
                    let _ = bytes_sender.try_send(batch.bytes);
                }
                Ok(Some(shards))
            })
            .map_err(cannot_start)?;

        let mut outcome = Ok(());
        let mut ids = Vec::new();
        for mut batch in batches {
            let result = encode_batch(encoder, &batch, settings, std::mem::take(&mut ids))
                .and_then(|encoded| {
                    state.documents += batch.len() as u64;
                    state.text_bytes += batch.bytes() as u64;
                    state.tokens += encoded.ids.len() as u64;
                    let Some(dtype) = dtype else {
                        ids = encoded.ids;
                        return Ok(());
                    };
                    let reused = bytes_buffers.try_recv().unwrap_or_default();
                    let shard_bytes = shard_bytes::convert(
                        dtype,
                        &encoded.ids,
                        &encoded.ends,
                        encoded.sequences_per_document,
                        eos,
                        settings.threads,
                        reused,
                    );
                    ids = encoded.ids;
                    converted_sender
                        .send(shard_bytes?)
                        .map_err(|_| Error::Invalid("the shard writer stopped".into()))
                });
            batch.clear();
            let _ = empty_sender.try_send(batch);
            state.input_bytes = input_bytes.load(Ordering::Relaxed);
            if let Err(e) = result {
                outcome = Err(e);
            } else if !progress(&state) {
                outcome = Err(Error::Invalid("encoding was stopped".into()));
            }
            if outcome.is_err() {
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
        drop(converted_sender);
        let read_stats = reader
            .join()
            .map_err(|panic| threads::panicked("the reader", panic))?;
        let shards = writer
            .join()
            .map_err(|panic| threads::panicked("the writer", panic))?;
        // A writer failure (a full disk) explains everything after it; a
        // reader failure (a bad line) explains the end of the input; a stop
        // or an encoding error is reported as itself.
        let mut shards = shards?;
        if let (Some(shards), true) = (shards.as_mut(), read_stats.is_err() || outcome.is_err()) {
            // Stopped early: the shards closed so far are kept, so a resumed
            // run starts after them. The stop itself is the error reported.
            let _ = shards.publish_closed();
        }
        let (read_stats, resumed_text_bytes) = match read_stats {
            Ok(read) => read,
            Err(e) => return Err(outcome.err().unwrap_or(e)),
        };
        outcome?;
        let empty_documents = shards.as_ref().map_or(0, ShardSet::empty_documents);
        state.input_bytes = state.total_bytes;
        progress(&state);
        Ok(Summary {
            shards: shards
                .map(ShardSet::finish)
                .transpose()?
                .unwrap_or_default(),
            read: read_stats,
            empty_documents,
            resumed_documents: skip,
            resumed_text_bytes,
            documents: state.documents,
            tokens: state.tokens,
            text_bytes: state.text_bytes,
        })
    })
}

/// A fingerprint of everything that decides the ids: each id's bytes, the
/// merges in rank order, the special tokens and the pre-tokenizer settings.
fn vocabulary_sha256(encoder: &Encoder) -> String {
    let vocab = encoder.vocab();
    let mut hasher = Sha256::new();
    hasher.update(encoder.pretokenizer().pattern().as_bytes());
    hasher.update([encoder.add_prefix_space() as u8]);
    for id in 0..vocab.size() as u32 {
        match vocab.token_bytes(id) {
            Some(bytes) => {
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(bytes);
            }
            None => hasher.update(u64::MAX.to_le_bytes()),
        }
    }
    for &(left, right, result) in vocab.merges() {
        hasher.update([left, right, result].map(u32::to_le_bytes).concat());
    }
    for special in vocab.specials() {
        hasher.update(special.id.to_le_bytes());
        hasher.update([special.lstrip as u8, special.rstrip as u8]);
        hasher.update(special.content.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

fn encode_batch(
    encoder: &Encoder,
    batch: &TextBatch,
    settings: &ShardSettings,
    ids: Vec<u32>,
) -> Result<Encoded, Error> {
    let documents: Vec<&str> = batch.documents(0..batch.len()).collect();
    let (pieces, sequences_per_document) = if settings.split_sentences {
        // On all threads: cutting runs the pre-tokenizer over the text, and
        // on the calling thread alone it took as long as encoding on two.
        let mut per_document = vec![Vec::new(); documents.len()];
        let tasks = documents
            .chunks(64)
            .zip(per_document.chunks_mut(64))
            .collect();
        threads::share_tasks(settings.threads, tasks, |(documents, pieces)| {
            for (document, pieces) in documents.iter().zip(pieces) {
                *pieces = sentence_pieces(encoder.pretokenizer(), document)?;
            }
            Ok::<_, Error>(())
        })??;
        let counts = per_document
            .iter()
            .map(|pieces| pieces.len() as u32)
            .collect();
        (per_document.into_iter().flatten().collect(), counts)
    } else {
        let counts = vec![1; documents.len()];
        (documents, counts)
    };
    // Text in the corpus is data: "<s>" in a document is three characters,
    // never the special token.
    let FlatIds { ids, mut offsets } =
        encode_flat(encoder, &pieces, Specials::None, settings.threads, ids)?;
    offsets.remove(0);
    Ok(Encoded {
        ids,
        ends: offsets,
        sequences_per_document,
    })
}

/// A document cut into sentences that together are the whole text. Each cut
/// is right after a sentence's last character, where the whole text has a
/// pre-token boundary too: pre-tokens never look behind, and none crosses
/// from non-space into the whitespace that follows, so encoding the pieces
/// one by one gives exactly the document's ids (the next sentence starts
/// with the whitespace between them).
pub(crate) fn sentence_pieces<'a>(
    pretokenizer: &Pretokenizer,
    text: &'a str,
) -> Result<Vec<&'a str>, Error> {
    let spans = sentence_spans(text);
    if spans.len() < 2 {
        return Ok(if text.is_empty() { vec![] } else { vec![text] });
    }
    let mut boundaries = Vec::new();
    pretokenizer.split(text, |_, end| boundaries.push(end))?;
    let mut pieces = Vec::with_capacity(spans.len());
    let mut start = 0;
    for span in &spans[..spans.len() - 1] {
        let cut = span.end;
        if cut > start && boundaries.binary_search(&cut).is_ok() {
            pieces.push(&text[start..cut]);
            start = cut;
        }
    }
    pieces.push(&text[start..]);
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_the_datasets_resumed_work_included() {
        let shard = |documents, tokens| ShardRecord {
            prefix: String::new(),
            documents,
            sequences: documents + 1,
            tokens,
            bin_bytes: 2 * tokens,
            bin_sha256: String::new(),
            idx_sha256: String::new(),
            input_documents: documents,
        };
        // A resumed run: the first shard came from the interrupted one.
        let resumed = Summary {
            shards: vec![shard(10, 400), shard(5, 100)],
            read: Default::default(),
            empty_documents: 0,
            resumed_documents: 10,
            resumed_text_bytes: 1_600,
            documents: 5,
            tokens: 100,
            text_bytes: 400,
        };
        let expected = DatasetTotals {
            documents: 15,
            sequences: 17,
            tokens: 500,
            text_bytes: 2_000,
        };
        assert_eq!(resumed.totals(), expected);
        // A count writes no shard: its totals are what it read.
        let counted = Summary {
            shards: Vec::new(),
            resumed_documents: 0,
            resumed_text_bytes: 0,
            ..resumed
        };
        let expected = DatasetTotals {
            documents: 5,
            sequences: 0,
            tokens: 100,
            text_bytes: 400,
        };
        assert_eq!(counted.totals(), expected);
    }

    #[test]
    fn the_manifest_header_records_the_run_in_a_fixed_order() {
        use crate::vocab::SpecialToken;
        let bytes: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        let specials = |names: &[&str]| {
            let tokens = names
                .iter()
                .zip(256..)
                .map(|(n, id)| SpecialToken::new(*n, id));
            let vocab = Vocab::new(bytes.clone(), vec![], tokens.collect()).unwrap();
            Encoder::new(vocab, Pretokenizer::Gpt2, false)
        };
        let settings = ShardSettings {
            prefix: "data".into(),
            shard_bytes: 1000,
            split_sentences: true,
            append_eos: true,
            threads: 1,
            existing: ExistingShards::Refuse,
            part: None,
        };
        let read = ReadOptions::parse("lines", "body", "skip").unwrap();
        let encoder = specials(&["<s>", "</s>"]);
        let eos = end_of_document(encoder.vocab(), &settings).unwrap();
        assert_eq!(eos, Some(257));
        let header = manifest_header(&encoder, "mine", &[], &read, &settings, eos);
        let keys = |map: &Map<String, Value>| map.keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&header), ["tokenizer", "settings", "inputs"]);
        let Value::Object(recorded) = &header["settings"] else {
            panic!("settings: {header:?}")
        };
        let expected = [
            "prefix",
            "shard_bytes",
            "split_sentences",
            "append_eos",
            "eos_id",
            "format",
            "text_field",
            "on_bad_input",
        ];
        assert_eq!(keys(recorded), expected);
        assert_eq!(header["settings"]["format"], "lines");
        assert_eq!(header["settings"]["on_bad_input"], "skip");
        assert_eq!(header["tokenizer"]["name"], "mine");
        assert_eq!(header["tokenizer"]["vocab_size"], 258);

        let without = specials(&["<s>"]);
        let error = end_of_document(without.vocab(), &settings).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the vocabulary has no end-of-document token (</s> or <|endoftext|>)"
        );
        let no_eos = ShardSettings {
            append_eos: false,
            ..settings.clone()
        };
        assert_eq!(end_of_document(without.vocab(), &no_eos).unwrap(), None);

        let part = Part {
            rank: 2,
            world_size: 7,
            corpus_sha256: "ab".repeat(32),
        };
        let of_a_part = ShardSettings {
            part: Some(part),
            ..settings
        };
        let header = manifest_header(&encoder, "mine", &[], &read, &of_a_part, eos);
        assert_eq!(keys(&header), ["tokenizer", "settings", "inputs", "part"]);
        let expected = json!({"rank": 2, "world_size": 7, "corpus_sha256": "ab".repeat(32)});
        assert_eq!(header["part"], expected);
    }

    #[test]
    fn sentence_pieces_cover_the_text_and_keep_its_ids() {
        let text =
            "  Mr. Smith went home.  \"Why?\" she asked.\n\n오늘은 좋다. 내일은 비가 올까? Done";
        let pieces = sentence_pieces(&Pretokenizer::Gpt2, text).unwrap();
        assert_eq!(pieces.concat(), text);
        assert!(pieces.len() >= 4, "{pieces:?}");
        let mut whole = Vec::new();
        Pretokenizer::Gpt2
            .split(text, |s, e| whole.push(&text[s..e]))
            .unwrap();
        let mut split = Vec::new();
        for piece in &pieces {
            Pretokenizer::Gpt2
                .split(piece, |s, e| split.push(&piece[s..e]))
                .unwrap();
        }
        assert_eq!(whole, split);
    }
}
