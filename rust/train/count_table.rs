//! The count table: training's first phase written down, so that counting can
//! run anywhere (one process per partition of a corpus, on any scheduler)
//! and learning once, on the merged counts, with the merges one machine
//! would learn from the whole corpus.
//!
//! Layout, version 1 (integers little-endian; `varint` is unsigned LEB128):
//!
//! ```text
//! magic    8 bytes   "bbpe-wc\0"
//! version  u32       1
//! header   u32 length, then that many bytes of JSON (CountHeader): the split
//!                    pattern and normalisation that shaped the words, and
//!                    the documents, text bytes and pruned words behind them
//! records  per word, in strictly ascending byte order:
//!            varint  bytes shared with the previous word's start
//!            varint  length of the rest, then the rest
//!            varint  count (at least 1; a u64)
//! end      the record 0, 0, count 0
//! footer   u64 words, u64 occurrences, SHA-256 of every byte before it
//! ```
//!
//! Sorted words make the file canonical (the same counts give the same
//! bytes, however they were gathered) and let tables be merged by streaming
//! them side by side in memory bounded by the number of inputs. Shared
//! prefixes shrink sorted words by about half.

use crate::error::Error;
use crate::system::publish::{partial_path, rename_durably};
use crate::train::word_counts::WordCounts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"bbpe-wc\0";
const VERSION: u32 = 1;
/// JSON headers are a few hundred bytes; anything near this is not one.
const MAX_HEADER_BYTES: u32 = 1 << 20;
/// bbpe changes no text before splitting it (JSON's lone surrogates become
/// U+FFFD when read); a table made otherwise must not be merged with ours.
pub const NORMALIZATION: &str = "none";

/// What shaped a table's words, and what they were counted from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountHeader {
    /// The split pattern, spelled out (GPT-2's too), compared as a string.
    pub pattern: String,
    pub normalization: String,
    /// Count runs merged into this table (1 for a table counted directly).
    pub parts: u64,
    pub documents: u64,
    pub text_bytes: u64,
    /// Words a run's cap dropped, and their occurrences: when not 0 the
    /// counts are those of the most frequent words per run, not exact.
    pub pruned_words: u64,
    pub pruned_occurrences: u64,
    /// Set when the table is some ranks' share of a corpus cut among ranks
    /// (`bbpe count --rank R --world-size W`): learning then needs them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<CountPart>,
}

/// Which ranks' shares of a corpus a table counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountPart {
    pub world_size: u64,
    /// The whole corpus's file list (paths and sizes), the same for every
    /// rank only if all of them cut the same files.
    pub corpus_sha256: String,
    /// Ascending.
    pub ranks: Vec<u64>,
}

impl CountPart {
    /// Ranks of the corpus that no table counted.
    pub fn missing_ranks(&self) -> Vec<u64> {
        (0..self.world_size)
            .filter(|rank| self.ranks.binary_search(rank).is_err())
            .collect()
    }

    /// `theirs` joined to `self`: the same corpus and world size, no rank twice.
    fn join(&mut self, theirs: &CountPart, path: &Path, first: &Path) -> Result<(), Error> {
        let shown = path.display().to_string();
        if (self.world_size, &self.corpus_sha256) != (theirs.world_size, &theirs.corpus_sha256) {
            return Err(Error::file(
                &shown,
                "",
                format!(
                    "counted as ranks of {} of another corpus split than {} ({} ranks):                      tables of different rank runs cannot be merged",
                    theirs.world_size,
                    first.display(),
                    self.world_size
                ),
            ));
        }
        if let Some(rank) = theirs.ranks.iter().find(|r| self.ranks.contains(r)) {
            return Err(Error::file(
                &shown,
                "",
                format!(
                    "rank {rank} of {} is counted twice: merge each rank's table once",
                    self.world_size
                ),
            ));
        }
        self.ranks.extend(&theirs.ranks);
        self.ranks.sort_unstable();
        Ok(())
    }
}

impl CountHeader {
    pub fn new(pattern: &str, counts: &WordCounts) -> Self {
        CountHeader {
            pattern: pattern.to_string(),
            normalization: NORMALIZATION.to_string(),
            parts: 1,
            documents: counts.documents,
            text_bytes: counts.text_bytes,
            pruned_words: counts.pruned_words,
            pruned_occurrences: counts.pruned_occurrences,
            part: None,
        }
    }

    /// The header of `tables` merged: the same pattern and normalisation
    /// (else an error naming the first table that differs), totals summed.
    pub fn merged(tables: &[(PathBuf, CountHeader)]) -> Result<CountHeader, Error> {
        let Some((first_path, first)) = tables.first() else {
            return Err(Error::Invalid("no count tables to merge".to_string()));
        };
        let mut merged = CountHeader {
            part: first.part.as_ref().map(|part| CountPart {
                ranks: Vec::new(),
                ..part.clone()
            }),
            parts: 0,
            documents: 0,
            text_bytes: 0,
            pruned_words: 0,
            pruned_occurrences: 0,
            ..first.clone()
        };
        for (path, header) in tables {
            for (what, ours, theirs) in [
                ("split pattern", &first.pattern, &header.pattern),
                ("normalization", &first.normalization, &header.normalization),
            ] {
                if ours != theirs {
                    return Err(Error::file(
                        &path.display().to_string(),
                        "",
                        format!(
                            "its {what} {theirs:?} differs from {ours:?} in {}: \
                             counts of differently split text cannot be merged",
                            first_path.display()
                        ),
                    ));
                }
            }
            let sum = |a: u64, b: u64| {
                a.checked_add(b).ok_or_else(|| {
                    Error::file(&path.display().to_string(), "", "totals overflow 64 bits")
                })
            };
            merged.parts = sum(merged.parts, header.parts)?;
            merged.documents = sum(merged.documents, header.documents)?;
            merged.text_bytes = sum(merged.text_bytes, header.text_bytes)?;
            merged.pruned_words = sum(merged.pruned_words, header.pruned_words)?;
            merged.pruned_occurrences = sum(merged.pruned_occurrences, header.pruned_occurrences)?;
            if let (Some(ours), Some(theirs)) = (&mut merged.part, &header.part) {
                ours.join(theirs, path, first_path)?;
            } else if header.part.is_some() != first.part.is_some() {
                let (ranked, plain) = if first.part.is_some() {
                    (first_path, path)
                } else {
                    (path, first_path)
                };
                return Err(Error::file(
                    &plain.display().to_string(),
                    "",
                    format!(
                        "was not counted as a rank, but {} was: merge the tables of one \
                         rank run only",
                        ranked.display()
                    ),
                ));
            }
        }
        Ok(merged)
    }
}

/// What a written table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountSummary {
    pub header: CountHeader,
    pub words: u64,
    pub occurrences: u64,
    pub file_bytes: u64,
}

/// Writes the counts as a table at `path` (published whole: written under a
/// partial name, flushed, renamed).
pub fn write_counts(
    path: &Path,
    counts: &WordCounts,
    pattern: &str,
    part: Option<CountPart>,
) -> Result<CountSummary, Error> {
    let mut words: Vec<(&[u8], u64)> = counts.iter().collect();
    words.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let header = CountHeader {
        part,
        ..CountHeader::new(pattern, counts)
    };
    let mut writer = TableWriter::create(path, &header)?;
    for (word, count) in words {
        writer.add(word, count)?;
    }
    writer.finish()
}

/// Merges tables into one at `output`, streaming them side by side.
pub fn merge_count_files(inputs: &[PathBuf], output: &Path) -> Result<CountSummary, Error> {
    for input in inputs {
        if same_file(input, output) {
            return Err(Error::Invalid(format!(
                "{}: the merged table would overwrite one of its inputs",
                output.display()
            )));
        }
    }
    let mut readers = open_all(inputs)?;
    let header = merged_header(&readers)?;
    let mut writer = TableWriter::create(output, &header)?;
    merge_words(&mut readers, &mut |word, count| writer.add(word, count))?;
    writer.finish()
}

/// The merged counts of `inputs`, ready to learn from, and their header.
/// `max_words` keeps only the most frequent words of the merged counts, by
/// the rule counting prunes by.
pub fn read_counts(
    inputs: &[PathBuf],
    max_words: Option<usize>,
) -> Result<(WordCounts, CountHeader), Error> {
    let mut readers = open_all(inputs)?;
    let header = merged_header(&readers)?;
    if let Some(part) = &header.part {
        let missing = part.missing_ranks();
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(10).map(u64::to_string).collect();
            return Err(Error::Invalid(format!(
                "the count tables hold {} of {} ranks: rank{} {}{} missing, and a vocabulary \
                 learned without them would not be the corpus's",
                part.ranks.len(),
                part.world_size,
                if missing.len() > 1 { "s" } else { "" },
                shown.join(", "),
                if missing.len() > 10 { ", ..." } else { "" },
            )));
        }
    }
    let mut counts = WordCounts::new(max_words);
    // Each word arrives once with its final count, so pruning to the cap on
    // the way keeps exactly the words pruning at the end would: memory stays
    // within twice the cap.
    let prune_at = max_words.map_or(usize::MAX, |cap| cap.saturating_mul(2));
    merge_words(&mut readers, &mut |word, count| {
        counts.add_word(word, count);
        if counts.len() >= prune_at {
            counts.apply_cap();
        }
        Ok(())
    })?;
    counts.documents = header.documents;
    counts.text_bytes = header.text_bytes;
    // Words the counting runs dropped, besides those pruned here.
    counts.pruned_words += header.pruned_words;
    counts.pruned_occurrences += header.pruned_occurrences;
    counts.apply_cap();
    Ok((counts, header))
}

/// A table's header and totals, checking the whole file (order, checksum).
pub fn inspect(path: &Path) -> Result<CountSummary, Error> {
    let mut reader = TableReader::open(path)?;
    while reader.next_word()?.is_some() {}
    Ok(CountSummary {
        header: reader.header.clone(),
        words: reader.words,
        occurrences: reader.occurrences,
        file_bytes: reader.bytes_read,
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn open_all(inputs: &[PathBuf]) -> Result<Vec<TableReader>, Error> {
    if inputs.is_empty() {
        return Err(Error::Invalid("no count tables given".to_string()));
    }
    inputs.iter().map(|path| TableReader::open(path)).collect()
}

fn merged_header(readers: &[TableReader]) -> Result<CountHeader, Error> {
    let headers: Vec<(PathBuf, CountHeader)> = readers
        .iter()
        .map(|r| (r.path.clone(), r.header.clone()))
        .collect();
    CountHeader::merged(&headers)
}

/// Takes each merged word and its count.
type WordSink<'a> = dyn FnMut(&[u8], u64) -> Result<(), Error> + 'a;

/// Calls `sink` with every distinct word of the tables, in ascending byte
/// order, and the sum of its counts.
fn merge_words(readers: &mut [TableReader], sink: &mut WordSink) -> Result<(), Error> {
    // Each reader's current word, smallest first; ties by reader number.
    let mut heads: BinaryHeap<Reverse<(Vec<u8>, usize, u64)>> = BinaryHeap::new();
    for (number, reader) in readers.iter_mut().enumerate() {
        if let Some((word, count)) = reader.next_word()? {
            heads.push(Reverse((word.to_vec(), number, count)));
        }
    }
    while let Some(Reverse((word, number, mut count))) = heads.pop() {
        let mut advance = vec![number];
        while let Some(Reverse((next, _, _))) = heads.peek() {
            if *next != word {
                break;
            }
            let Reverse((_, other, more)) = heads.pop().expect("peeked");
            count = count.checked_add(more).ok_or_else(|| {
                Error::Invalid(format!(
                    "the count of word {:?} overflows 64 bits",
                    String::from_utf8_lossy(&word)
                ))
            })?;
            advance.push(other);
        }
        sink(&word, count)?;
        for number in advance {
            if let Some((next, count)) = readers[number].next_word()? {
                heads.push(Reverse((next.to_vec(), number, count)));
            }
        }
    }
    Ok(())
}

/// Bytes written (or read) so far, hashed on the way.
struct Hashed<T> {
    inner: T,
    hasher: Sha256,
    bytes: u64,
}

impl<T: Write> Write for Hashed<T> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(data)?;
        self.hasher.update(&data[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<T: Read> Read for Hashed<T> {
    fn read(&mut self, data: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(data)?;
        self.hasher.update(&data[..read]);
        self.bytes += read as u64;
        Ok(read)
    }
}

fn write_varint(out: &mut impl Write, mut value: u64) -> std::io::Result<()> {
    let mut bytes = [0u8; 10];
    let mut n = 0;
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes[n] = low;
            n += 1;
            break;
        }
        bytes[n] = low | 0x80;
        n += 1;
    }
    out.write_all(&bytes[..n])
}

struct TableWriter {
    path: PathBuf,
    partial: PathBuf,
    out: Option<Hashed<BufWriter<File>>>,
    header: CountHeader,
    previous: Vec<u8>,
    words: u64,
    occurrences: u64,
}

impl TableWriter {
    fn create(path: &Path, header: &CountHeader) -> Result<Self, Error> {
        let partial = partial_path(path);
        let file =
            File::create(&partial).map_err(|e| Error::io(&partial.display().to_string(), e))?;
        let mut writer = TableWriter {
            path: path.to_path_buf(),
            partial,
            out: Some(Hashed {
                inner: BufWriter::with_capacity(1 << 20, file),
                hasher: Sha256::new(),
                bytes: 0,
            }),
            header: header.clone(),
            previous: Vec::new(),
            words: 0,
            occurrences: 0,
        };
        let json = serde_json::to_vec(header).expect("the header serializes");
        writer.io(|out| {
            out.write_all(MAGIC)?;
            out.write_all(&VERSION.to_le_bytes())?;
            out.write_all(&(json.len() as u32).to_le_bytes())?;
            out.write_all(&json)
        })?;
        Ok(writer)
    }

    fn io(
        &mut self,
        f: impl FnOnce(&mut Hashed<BufWriter<File>>) -> std::io::Result<()>,
    ) -> Result<(), Error> {
        let out = self.out.as_mut().expect("open until finished");
        f(out).map_err(|e| Error::io(&self.partial.display().to_string(), e))
    }

    fn add(&mut self, word: &[u8], count: u64) -> Result<(), Error> {
        if word <= self.previous.as_slice() && self.words > 0 || word.is_empty() || count == 0 {
            return Err(Error::Internal(format!(
                "count table {}: word {:?} with count {count} is out of order or empty (a bug in bbpe)",
                self.path.display(),
                String::from_utf8_lossy(word)
            )));
        }
        let shared = word
            .iter()
            .zip(&self.previous)
            .take_while(|(a, b)| a == b)
            .count();
        self.occurrences = self.occurrences.checked_add(count).ok_or_else(|| {
            Error::Invalid(format!(
                "{}: occurrences overflow 64 bits",
                self.path.display()
            ))
        })?;
        self.io(|out| {
            write_varint(out, shared as u64)?;
            write_varint(out, (word.len() - shared) as u64)?;
            out.write_all(&word[shared..])?;
            write_varint(out, count)
        })?;
        self.previous.clear();
        self.previous.extend_from_slice(word);
        self.words += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<CountSummary, Error> {
        let (words, occurrences) = (self.words, self.occurrences);
        self.io(|out| {
            out.write_all(&[0, 0, 0])?;
            out.write_all(&words.to_le_bytes())?;
            out.write_all(&occurrences.to_le_bytes())
        })?;
        let out = self.out.take().expect("open until finished");
        let digest = out.hasher.finalize();
        let file_bytes = out.bytes + digest.len() as u64;
        let mut inner = out.inner;
        let shown = self.partial.display().to_string();
        inner
            .write_all(&digest)
            .and_then(|()| inner.into_inner().map_err(|e| e.into_error()))
            .and_then(|file| file.sync_all())
            .map_err(|e| Error::io(&shown, e))?;
        rename_durably(&self.partial, &self.path)?;
        Ok(CountSummary {
            header: self.header.clone(),
            words,
            occurrences,
            file_bytes,
        })
    }
}

impl Drop for TableWriter {
    /// A table left unfinished (an error on the way) leaves no partial file.
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

struct TableReader {
    path: PathBuf,
    input: Hashed<BufReader<File>>,
    header: CountHeader,
    word: Vec<u8>,
    words: u64,
    occurrences: u64,
    bytes_read: u64,
    finished: bool,
}

impl TableReader {
    fn open(path: &Path) -> Result<Self, Error> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|e| Error::io(&shown, e))?;
        let mut input = Hashed {
            inner: BufReader::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let bad = |message: String| Error::file(&shown, "", message);
        let mut magic = [0u8; 8];
        read_exact(&mut input, &mut magic, &shown)?;
        if &magic != MAGIC {
            return Err(bad(
                "not a bbpe count table (written by `bbpe count`)".to_string()
            ));
        }
        let version = read_u32(&mut input, &shown)?;
        if version != VERSION {
            return Err(bad(format!(
                "count table version {version}; this bbpe reads version {VERSION}"
            )));
        }
        let length = read_u32(&mut input, &shown)?;
        if length > MAX_HEADER_BYTES {
            return Err(bad(format!(
                "header of {length} bytes: the file is damaged"
            )));
        }
        let mut json = vec![0u8; length as usize];
        read_exact(&mut input, &mut json, &shown)?;
        let header: CountHeader = serde_json::from_slice(&json)
            .map_err(|e| bad(format!("header is not a count table's: {e}")))?;
        Ok(TableReader {
            path: path.to_path_buf(),
            input,
            header,
            word: Vec::new(),
            words: 0,
            occurrences: 0,
            bytes_read: 0,
            finished: false,
        })
    }

    /// The next word and its count; `None` after the last, once the footer
    /// has been checked.
    fn next_word(&mut self) -> Result<Option<(&[u8], u64)>, Error> {
        if self.finished {
            return Ok(None);
        }
        let shown = self.path.display().to_string();
        let record = self.words + 1;
        let bad = |message: String| Error::file(&shown, format!("word {record}"), message);
        let shared = read_varint(&mut self.input, &shown)?;
        let rest = read_varint(&mut self.input, &shown)?;
        if shared > self.word.len() as u64 || rest > u32::MAX as u64 {
            return Err(bad(format!(
                "lengths {shared} + {rest} do not fit: the file is damaged"
            )));
        }
        let mut word = self.word[..shared as usize].to_vec();
        // Read through `take`, so a damaged length fails at the end of the
        // file instead of allocating its value first.
        let read = (&mut self.input)
            .take(rest)
            .read_to_end(&mut word)
            .map_err(|e| Error::io(&shown, e))?;
        if read as u64 != rest {
            return Err(Error::file(&shown, "", "ends early: the file is truncated"));
        }
        let count = read_varint(&mut self.input, &shown)?;
        if shared == 0 && rest == 0 && count == 0 {
            self.check_footer()?;
            self.finished = true;
            return Ok(None);
        }
        if count == 0 || word.is_empty() {
            return Err(bad(
                "an empty word or a count of 0: the file is damaged".to_string()
            ));
        }
        if self.words > 0 && word <= self.word {
            return Err(bad("words out of order: the file is damaged".to_string()));
        }
        self.word = word;
        self.words += 1;
        self.occurrences = self
            .occurrences
            .checked_add(count)
            .ok_or_else(|| bad("occurrences overflow 64 bits".to_string()))?;
        Ok(Some((&self.word, count)))
    }

    fn check_footer(&mut self) -> Result<(), Error> {
        let shown = self.path.display().to_string();
        let bad = |message: String| Error::file(&shown, "footer", message);
        let words = read_u64(&mut self.input, &shown)?;
        let occurrences = read_u64(&mut self.input, &shown)?;
        let expected = std::mem::take(&mut self.input.hasher).finalize();
        let mut digest = [0u8; 32];
        self.input
            .inner
            .read_exact(&mut digest)
            .map_err(|e| truncated(&shown, e))?;
        if digest[..] != expected[..] {
            return Err(bad(
                "SHA-256 does not match: the file is damaged".to_string()
            ));
        }
        if (words, occurrences) != (self.words, self.occurrences) {
            return Err(bad(format!(
                "says {words} words and {occurrences} occurrences, holds {} and {}",
                self.words, self.occurrences
            )));
        }
        let mut extra = [0u8; 1];
        if self
            .input
            .inner
            .read(&mut extra)
            .map_err(|e| Error::io(&shown, e))?
            != 0
        {
            return Err(bad(
                "bytes follow the footer: the file is damaged".to_string()
            ));
        }
        self.bytes_read = self.input.bytes + digest.len() as u64;
        Ok(())
    }
}

fn truncated(path: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::file(path, "", "ends early: the file is truncated")
    } else {
        Error::io(path, e)
    }
}

fn read_exact(input: &mut impl Read, buffer: &mut [u8], path: &str) -> Result<(), Error> {
    input.read_exact(buffer).map_err(|e| truncated(path, e))
}

fn read_u32(input: &mut impl Read, path: &str) -> Result<u32, Error> {
    let mut bytes = [0u8; 4];
    read_exact(input, &mut bytes, path)?;
    Ok(u32::from_le_bytes(bytes))
}

fn read_u64(input: &mut impl Read, path: &str) -> Result<u64, Error> {
    let mut bytes = [0u8; 8];
    read_exact(input, &mut bytes, path)?;
    Ok(u64::from_le_bytes(bytes))
}

fn read_varint(input: &mut impl Read, path: &str) -> Result<u64, Error> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8; 1];
        read_exact(input, &mut byte, path)?;
        let low = u64::from(byte[0] & 0x7f);
        if shift == 63 && low > 1 {
            break;
        }
        value |= low << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Error::file(
        path,
        "",
        "a number longer than 64 bits: the file is damaged",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{learn_vocab, CountSettings, TextCounter, TrainSettings};

    /// A corpus with repeated and rare words, Korean and digits, so that
    /// merges tie on counts and the cap has choices to make.
    fn corpus() -> Vec<String> {
        let mut state = 11u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let syllables = ["ka", "to", "ri", "na", "mu", "한", "국", "어", " 7", "ssi"];
        (0..400)
            .map(|_| {
                (0..next() % 30 + 1)
                    .map(|_| {
                        let word: String = (0..next() % 4 + 1)
                            .map(|_| syllables[next() % 10])
                            .collect();
                        format!(" {word}")
                    })
                    .collect()
            })
            .collect()
    }

    fn count(documents: &[String], settings: &CountSettings) -> WordCounts {
        let mut counter = TextCounter::start(settings, Default::default()).unwrap();
        for document in documents {
            counter.push(document);
            counter.flush_if_full().unwrap();
        }
        counter.finish().unwrap().0
    }

    fn learn(counts: WordCounts, settings: &TrainSettings) -> Vec<(u32, u32, u32)> {
        learn_vocab(counts, settings, &mut |_| true)
            .unwrap()
            .0
            .merges()
            .to_vec()
    }

    fn settings() -> TrainSettings {
        TrainSettings {
            vocab_size: 400,
            min_frequency: 1,
            threads: 1,
            ..Default::default()
        }
    }

    /// The corpus cut into `parts` runs of documents, each counted to a table.
    fn tables(dir: &Path, documents: &[String], parts: usize) -> Vec<PathBuf> {
        let pattern = crate::pretokenize::Pretokenizer::Gpt2.pattern().to_string();
        let per_part = documents.len().div_ceil(parts);
        (0..parts)
            .map(|part| {
                let start = (part * per_part).min(documents.len());
                let end = ((part + 1) * per_part).min(documents.len());
                let counts = count(&documents[start..end], &settings().counting());
                let path = dir.join(format!("part{part}.bin"));
                write_counts(&path, &counts, &pattern, None).unwrap();
                path
            })
            .collect()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("bbpe-count-table-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn merged_partitions_learn_the_merges_of_one_machine() {
        let documents = corpus();
        let whole = learn(count(&documents, &settings().counting()), &settings());
        assert!(whole.len() > 50, "{} merges", whole.len());
        let dir = scratch("partitions");
        for parts in [1, 2, 7] {
            let paths = tables(&dir, &documents, parts);
            let (counts, header) = read_counts(&paths, None).unwrap();
            assert_eq!(header.parts, parts as u64);
            assert_eq!(header.documents, documents.len() as u64);
            assert_eq!(learn(counts, &settings()), whole, "{parts} parts");
            // Merged in two orders, then merged again: the same bytes.
            let forward = dir.join("forward.bin");
            let mut reversed_paths = paths.clone();
            reversed_paths.reverse();
            let reversed = dir.join("reversed.bin");
            merge_count_files(&paths, &forward).unwrap();
            merge_count_files(&reversed_paths, &reversed).unwrap();
            assert_eq!(
                std::fs::read(&forward).unwrap(),
                std::fs::read(&reversed).unwrap()
            );
            let (counts, _) = read_counts(&[forward], None).unwrap();
            assert_eq!(
                learn(counts, &settings()),
                whole,
                "{parts} parts merged to a file"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_cap_on_merged_counts_equals_one_pass_over_one_batch() {
        // One machine prunes after each 16 MB batch: on a corpus of one
        // batch that is once, over the whole counts, as after merging.
        let documents = corpus();
        let capped = TrainSettings {
            max_words: Some(150),
            ..settings()
        };
        let one_machine = count(&documents, &capped.counting());
        // Enough distinct words for merged counts to be pruned on the way.
        assert!(
            one_machine.pruned_words > 300,
            "{}",
            one_machine.pruned_words
        );
        let (pruned_words, pruned_occurrences) =
            (one_machine.pruned_words, one_machine.pruned_occurrences);
        let whole = learn(one_machine, &capped);
        let dir = scratch("cap");
        let tables = tables(&dir, &documents, 7);
        // A cap of 150 prunes on the way (at 300 words) and at the end.
        let (merged, _) = read_counts(&tables, Some(150)).unwrap();
        assert_eq!(merged.len(), 150);
        assert_eq!(
            (merged.pruned_words, merged.pruned_occurrences),
            (pruned_words, pruned_occurrences)
        );
        assert_eq!(learn(merged, &capped), whole);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_cap_while_counting_is_cruder_than_a_cap_after_merging() {
        // The difference `bbpe.train_from_counts` documents: one machine
        // prunes after each batch, so a word dropped early loses those
        // occurrences for good; merged counts are pruned once they are whole.
        let batches = [" x x y y z", " z z z"];
        let mut streaming = WordCounts::new(Some(2));
        for text in batches {
            let mut batch = crate::corpus::TextBatch::default();
            batch.push(text);
            crate::system::threads::run_with_threads(1, || {
                streaming.add_batch(&crate::pretokenize::Pretokenizer::Gpt2, &batch)
            })
            .unwrap()
            .unwrap();
        }
        let dir = scratch("crude-cap");
        let pattern = crate::pretokenize::Pretokenizer::Gpt2.pattern();
        let parts: Vec<PathBuf> = batches
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let path = dir.join(format!("{i}.bin"));
                let counts = count(&[text.to_string()], &CountSettings::default());
                write_counts(&path, &counts, pattern, None).unwrap();
                path
            })
            .collect();
        let (merged, _) = read_counts(&parts, Some(2)).unwrap();
        let sorted = |counts: &WordCounts| {
            let mut words: Vec<(Vec<u8>, u64)> =
                counts.iter().map(|(w, c)| (w.to_vec(), c)).collect();
            words.sort();
            words
        };
        let words = |pairs: &[(&str, u64)]| -> Vec<(Vec<u8>, u64)> {
            pairs
                .iter()
                .map(|(w, c)| (w.as_bytes().to_vec(), *c))
                .collect()
        };
        assert_eq!(sorted(&streaming), words(&[(" x", 2), (" z", 3)]));
        assert_eq!(sorted(&merged), words(&[(" x", 2), (" z", 4)]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rank_tables_are_learned_only_when_every_rank_is_there_once() {
        let dir = scratch("ranks");
        let mut counts = WordCounts::new(None);
        counts.add_word(b"word", 3);
        let table = |name: &str, rank: u64, corpus: &str| {
            let path = dir.join(name);
            let part = CountPart {
                world_size: 3,
                corpus_sha256: corpus.to_string(),
                ranks: vec![rank],
            };
            write_counts(&path, &counts, "p", Some(part)).unwrap();
            path
        };
        let ranks: Vec<PathBuf> = (0..3)
            .map(|r| table(&format!("r{r}.bin"), r, "c"))
            .collect();
        let error = |paths: &[PathBuf]| read_counts(paths, None).unwrap_err().to_string();
        // A tree of merges: ranks 2 and 0, then rank 1.
        let some = dir.join("some.bin");
        merge_count_files(&[ranks[2].clone(), ranks[0].clone()], &some).unwrap();
        assert!(error(std::slice::from_ref(&some)).contains("rank 1 missing"));
        let all = dir.join("all.bin");
        let summary = merge_count_files(&[some.clone(), ranks[1].clone()], &all).unwrap();
        assert_eq!(summary.header.part.unwrap().ranks, [0, 1, 2]);
        let (merged, _) = read_counts(&[all], None).unwrap();
        assert_eq!(merged.iter().next(), Some((&b"word"[..], 9)));

        let twice = error(&[some.clone(), ranks[0].clone(), ranks[1].clone()]);
        assert!(twice.contains("r0.bin") && twice.contains("rank 0 of 3 is counted twice"));
        let other = table("other.bin", 1, "another corpus");
        let mixed = error(&[some.clone(), other]);
        assert!(mixed.contains("other.bin") && mixed.contains("another corpus split"));
        let plain = dir.join("plain.bin");
        write_counts(&plain, &counts, "p", None).unwrap();
        let unranked = error(&[some, plain]);
        assert!(unranked.contains("plain.bin") && unranked.contains("not counted as a rank"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn counts_beyond_32_bits_survive_the_file_and_the_merge() {
        let dir = scratch("wide");
        let mut counts = WordCounts::new(None);
        counts.add_word(b" big", 3 << 40);
        counts.add_word(b"a", 1);
        let paths = [dir.join("a.bin"), dir.join("b.bin")];
        for path in &paths {
            write_counts(path, &counts, "p", None).unwrap();
        }
        let (merged, _) = read_counts(&paths, None).unwrap();
        let words: Vec<(Vec<u8>, u64)> = merged.iter().map(|(w, c)| (w.to_vec(), c)).collect();
        assert_eq!(words, [(b" big".to_vec(), 6 << 40), (b"a".to_vec(), 2)]);
        let mut huge = WordCounts::new(None);
        huge.add_word(b"a", u64::MAX);
        write_counts(&paths[1], &huge, "p", None).unwrap();
        let error = read_counts(&paths, None).unwrap_err().to_string();
        assert!(error.contains("overflows 64 bits"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_or_mismatched_tables_are_refused_by_name() {
        let dir = scratch("damaged");
        let mut counts = WordCounts::new(None);
        for word in ["alpha", "alphabet", "beta", "gamma"] {
            counts.add_word(word.as_bytes(), 5);
        }
        let good = dir.join("good.bin");
        let summary = write_counts(&good, &counts, "p", None).unwrap();
        assert_eq!((summary.words, summary.occurrences), (4, 20));
        assert_eq!(inspect(&good).unwrap(), summary);
        let bytes = std::fs::read(&good).unwrap();
        assert_eq!(bytes.len() as u64, summary.file_bytes);

        let cases: [(&str, Vec<u8>, &str); 4] = [
            (
                "truncated.bin",
                bytes[..bytes.len() - 10].to_vec(),
                "truncated",
            ),
            (
                "flipped.bin",
                {
                    let mut b = bytes.clone();
                    let at = b.len() - 50;
                    b[at] ^= 1;
                    b
                },
                "damaged",
            ),
            (
                "text.bin",
                b"{\"text\": \"not a table\"}\n".to_vec(),
                "not a bbpe count table",
            ),
            (
                "longer.bin",
                [bytes.as_slice(), b"x"].concat(),
                "follow the footer",
            ),
        ];
        for (name, contents, expected) in cases {
            let path = dir.join(name);
            std::fs::write(&path, contents).unwrap();
            let error = inspect(&path).unwrap_err().to_string();
            assert!(error.contains(name) && error.contains(expected), "{error}");
        }
        let other = dir.join("other.bin");
        write_counts(&other, &counts, "another pattern", None).unwrap();
        let error = read_counts(&[good.clone(), other], None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("other.bin") && error.contains("split pattern"),
            "{error}"
        );
        let error = merge_count_files(std::slice::from_ref(&good), &good)
            .unwrap_err()
            .to_string();
        assert!(error.contains("overwrite"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
