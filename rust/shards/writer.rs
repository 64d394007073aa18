//! Writing shard pairs safely: each shard is written under `.partial` names
//! and published (flushed to disk, renamed, directory flushed) only when
//! complete, and `manifest.json` is published whole after every finished
//! shard. A closed shard is published once its checksum is ready, while
//! the next is written (`hasher`), and shards are published in order. A run
//! stopped at any point (a full disk, a crash, a power loss) can be resumed
//! after its last shard that the manifest lists and whose checksums still
//! match.

use super::format::{write_index, TokenDtype};
use super::hasher::BackgroundSha256;
use super::shard_bytes::ShardBytes;
use crate::error::Error;
use crate::system::publish::{partial_path, rename_durably, write_durably, PARTIAL};
use crate::system::threads;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";
/// How much a shard grows between two requests to start writing it back.
const WRITEBACK_BYTES: u64 = 8 << 20;
/// Closed shards whose hashing may still run while the next is written:
/// with the one being written, four hash at once, enough for 16 cores'
/// encoding of Korean (one thread hashes as fast as 4.5 cores encode it).
const HASHING_BEHIND: usize = 3;

fn is_partial(path: &Path) -> bool {
    path.to_string_lossy().ends_with(PARTIAL)
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(&path.display().to_string(), e)
}

/// One finished shard, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRecord {
    pub prefix: String,
    pub documents: u64,
    pub sequences: u64,
    pub tokens: u64,
    pub bin_bytes: u64,
    pub bin_sha256: String,
    pub idx_sha256: String,
    /// Input documents consumed up to the end of this shard (empty ones
    /// included): where a resumed run starts reading.
    pub input_documents: u64,
}

impl ShardRecord {
    fn to_json(&self) -> Value {
        json!({
            "prefix": self.prefix,
            "documents": self.documents,
            "sequences": self.sequences,
            "tokens": self.tokens,
            "bin_bytes": self.bin_bytes,
            "bin_sha256": self.bin_sha256,
            "idx_sha256": self.idx_sha256,
            "input_documents": self.input_documents,
        })
    }

    fn from_json(value: &Value, manifest: &Path) -> Result<Self, Error> {
        let bad = || Error::file(&manifest.display().to_string(), "shards", "malformed entry");
        let text = |key: &str| value[key].as_str().map(str::to_string).ok_or_else(bad);
        let number = |key: &str| value[key].as_u64().ok_or_else(bad);
        Ok(ShardRecord {
            prefix: text("prefix")?,
            documents: number("documents")?,
            sequences: number("sequences")?,
            tokens: number("tokens")?,
            bin_bytes: number("bin_bytes")?,
            bin_sha256: text("bin_sha256")?,
            idx_sha256: text("idx_sha256")?,
            input_documents: number("input_documents")?,
        })
    }
}

/// A shard being written: its documents are indexed as they come, and their
/// bytes, already in the shard's dtype, written to `<prefix>.bin.partial`
/// straight from the batch that holds them; a thread of its own hashes the
/// file as it grows. The index is kept in memory (12 bytes a sequence) and
/// written when the shard is published.
struct ShardWriter {
    dir: PathBuf,
    prefix: String,
    dtype: TokenDtype,
    bin: File,
    bin_path: PathBuf,
    hasher: BackgroundSha256,
    /// The `.bin`'s size once the indexed documents are written.
    bin_bytes: u64,
    lengths: Vec<i32>,
    document_indices: Vec<i64>,
    /// Bytes written so far.
    written: u64,
    /// Bytes of the `.bin` handed to the kernel's writeback so far.
    written_back: u64,
}

impl ShardWriter {
    fn create(dir: &Path, prefix: String, dtype: TokenDtype) -> Result<Self, Error> {
        let bin_path = partial_path(&dir.join(format!("{prefix}.bin")));
        // Readable too: the hashing thread reads what was written.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&bin_path)
            .map_err(io_error(&bin_path))?;
        Ok(ShardWriter {
            dir: dir.to_path_buf(),
            prefix,
            dtype,
            hasher: BackgroundSha256::start(&file, &bin_path)?,
            bin: file,
            bin_path,
            bin_bytes: 0,
            lengths: Vec::new(),
            document_indices: vec![0],
            written: 0,
            written_back: 0,
        })
    }

    /// Indexes a document whose sequences take `sizes` bytes each; its bytes
    /// are written by a later [`Self::write`].
    fn index_document(&mut self, sizes: &[usize]) -> Result<(), Error> {
        let itemsize = self.dtype.itemsize();
        if let Some(long) = sizes
            .iter()
            .find(|&&size| size / itemsize > i32::MAX as usize)
        {
            return Err(Error::Invalid(format!(
                "a sequence of {} tokens is too long for the index",
                long / itemsize
            )));
        }
        for &size in sizes {
            self.bin_bytes += size as u64;
            self.lengths.push((size / itemsize) as i32);
        }
        self.document_indices.push(self.lengths.len() as i64);
        Ok(())
    }

    /// Writes the indexed documents' next bytes, for the hashing thread to
    /// read.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.bin
            .write_all(bytes)
            .map_err(io_error(&self.bin_path))?;
        self.written += bytes.len() as u64;
        self.hasher.written(self.written);
        if self.written - self.written_back >= WRITEBACK_BYTES {
            self.start_writeback();
        }
        Ok(())
    }

    /// Starts writing what the shard has so far to disk without waiting for
    /// it, so that the `fsync` that closes the shard has little left to do
    /// (200 MB shards: 38-56 ms at each close before, 2-4 ms after).
    fn start_writeback(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let length = self.written - self.written_back;
            // SAFETY: a plain system call on an open descriptor; it only
            // starts writeback of a range of the file.
            unsafe {
                libc::sync_file_range(
                    self.bin.as_raw_fd(),
                    self.written_back as libc::off64_t,
                    length as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.written_back = self.written;
    }

    /// Ends the shard, every indexed byte written; the hashing goes on.
    fn close(&mut self) {
        debug_assert_eq!(self.written, self.bin_bytes);
        self.hasher.close();
    }

    /// Publishes the closed `.bin` once hashed, then the index.
    fn publish(self, input_documents: u64) -> Result<ShardRecord, Error> {
        self.bin.sync_all().map_err(io_error(&self.bin_path))?;
        let bin_sha256 = self.hasher.finish()?;
        let mut idx = Vec::new();
        write_index(&mut idx, self.dtype, &self.lengths, &self.document_indices)
            .expect("writing to memory cannot fail");
        let bin_final = self.dir.join(format!("{}.bin", self.prefix));
        let idx_final = self.dir.join(format!("{}.idx", self.prefix));
        rename_durably(&self.bin_path, &bin_final)?;
        write_durably(&idx_final, &idx)?;
        Ok(ShardRecord {
            prefix: self.prefix,
            documents: self.document_indices.len() as u64 - 1,
            sequences: self.lengths.len() as u64,
            tokens: self.bin_bytes / self.dtype.itemsize() as u64,
            bin_bytes: self.bin_bytes,
            bin_sha256,
            idx_sha256: hex::encode(Sha256::digest(&idx)),
            input_documents,
        })
    }
}

/// Shards `<prefix>_00000`, `<prefix>_00001`, ... in one directory, each
/// closed once its `.bin` reaches `shard_bytes` (at a document boundary, so
/// boundaries depend only on the input).
pub struct ShardSet {
    dir: PathBuf,
    prefix: String,
    dtype: TokenDtype,
    shard_bytes: u64,
    /// What the manifest says besides the shards (tokenizer, settings, inputs).
    header: Map<String, Value>,
    finished: Vec<ShardRecord>,
    /// Closed shards still hashing, oldest first.
    closing: VecDeque<Closed>,
    current: Option<ShardWriter>,
    input_documents: u64,
    empty_documents: u64,
}

/// A shard closed but not yet published, and the input documents consumed,
/// and left out as empty, up to its end.
struct Closed {
    shard: ShardWriter,
    input_documents: u64,
    empty_documents: u64,
}

/// What to do when the output directory already holds a shard set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingShards {
    /// Stop with an error: nothing written earlier is touched.
    Refuse,
    /// Continue the run its manifest describes.
    Resume,
    /// Delete the set (its manifest and `<prefix>_*` shards) and start anew.
    Overwrite,
}

impl std::str::FromStr for ExistingShards {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        match name {
            "refuse" => Ok(Self::Refuse),
            "resume" => Ok(Self::Resume),
            "overwrite" => Ok(Self::Overwrite),
            _ => Err(Error::Invalid(format!(
                "existing shards: expected refuse, resume or overwrite, not {name:?}"
            ))),
        }
    }
}

impl ShardSet {
    /// Starts a new set in `dir` (created if missing); an existing set is
    /// refused, resumed (provided `header`, the tokenizer and settings, is
    /// the same) or overwritten, as `existing` says. Returns the set and how
    /// many input documents its finished shards already hold.
    pub fn open(
        dir: &Path,
        prefix: &str,
        dtype: TokenDtype,
        shard_bytes: u64,
        header: Map<String, Value>,
        existing: ExistingShards,
        threads: usize,
    ) -> Result<(Self, u64), Error> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let manifest_path = dir.join(MANIFEST);
        let mut set = ShardSet {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            dtype,
            shard_bytes: shard_bytes.max(1),
            header,
            finished: Vec::new(),
            closing: VecDeque::new(),
            current: None,
            input_documents: 0,
            empty_documents: 0,
        };
        let ours = set.files_of_the_set()?;
        match existing {
            ExistingShards::Resume => set.take_over_whole_shards(&manifest_path, threads)?,
            ExistingShards::Overwrite => {}
            ExistingShards::Refuse => {
                if let Some(found) = ours.iter().find(|p| !is_partial(p)) {
                    return Err(Error::Invalid(format!(
                        "{} already holds shards ({}): resume that run (--resume), replace \
                         it (--overwrite), or choose another directory",
                        dir.display(),
                        found.file_name().unwrap_or_default().to_string_lossy()
                    )));
                }
            }
        }
        // What is left of an interrupted run beyond its whole shards (partial
        // files, a shard published but never listed) is written again.
        let kept = set.files_of_whole_shards();
        for path in ours.iter().filter(|p| !kept.contains(p)) {
            std::fs::remove_file(path).map_err(io_error(path))?;
        }
        let skip = set.input_documents;
        Ok((set, skip))
    }

    /// The manifest and every `<prefix>_*` shard file (whole or partial) in
    /// the directory; other files are never touched.
    fn files_of_the_set(&self) -> Result<Vec<PathBuf>, Error> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let path = entry.map_err(io_error(&self.dir))?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let shard = name.starts_with(&format!("{}_", self.prefix))
                && (name.ends_with(".bin") || name.ends_with(".idx") || name.ends_with(PARTIAL));
            let manifest = name == MANIFEST || name == format!("{MANIFEST}.{PARTIAL}");
            if (manifest || shard) && path.is_file() {
                files.push(path);
            }
        }
        Ok(files)
    }

    /// The files that stay when resuming: the manifest and the whole shards.
    fn files_of_whole_shards(&self) -> Vec<PathBuf> {
        let shards = self.finished.iter().flat_map(|shard| {
            [".bin", ".idx"].map(|suffix| self.dir.join(format!("{}{suffix}", shard.prefix)))
        });
        let manifest = self.dir.join(MANIFEST);
        let has_manifest = !self.finished.is_empty();
        shards.chain(has_manifest.then_some(manifest)).collect()
    }

    /// Takes over the shards of an interrupted run that its manifest lists
    /// and that are whole, up to the first that is not, after checking that
    /// the settings match. Without a readable manifest (none was published
    /// yet, or a power loss cut it short) nothing is verifiably whole, and
    /// the run starts from the beginning. A finished run is taken over too
    /// (nothing is left to encode): a process killed after finishing but
    /// before exiting looks interrupted, and resuming it must succeed.
    fn take_over_whole_shards(
        &mut self,
        manifest_path: &Path,
        threads: usize,
    ) -> Result<(), Error> {
        let shown = manifest_path.display().to_string();
        let Ok(text) = std::fs::read(manifest_path) else {
            return Ok(());
        };
        let Ok(manifest) = serde_json::from_slice::<Value>(&text) else {
            return Ok(());
        };
        for (key, value) in &self.header {
            if &manifest[key] != value {
                return Err(Error::file(
                    &shown,
                    key.as_str(),
                    format!(
                        "cannot resume: the earlier run had {}, this one {}",
                        manifest[key], value
                    ),
                ));
            }
        }
        let listed = manifest["shards"]
            .as_array()
            .ok_or_else(|| Error::file(&shown, "shards", "missing"))?
            .iter()
            .map(|shard| ShardRecord::from_json(shard, manifest_path))
            .collect::<Result<Vec<_>, Error>>()?;
        // Checksums of every listed shard, on `threads` threads (the ones
        // that then encode): 200 MB of shards took 0.21 s on one core from
        // the page cache, 0.36 s from disk.
        let mut whole = vec![false; listed.len()];
        let tasks = listed.iter().zip(whole.iter_mut()).collect();
        threads::share_tasks(threads, tasks, |(record, whole)| {
            *whole = self.is_whole(record);
            Ok::<_, Error>(())
        })??;
        let count = whole.iter().take_while(|&&w| w).count();
        self.finished = listed;
        self.finished.truncate(count);
        if let Some(last) = self.finished.last() {
            self.input_documents = last.input_documents;
            // Every input document is either written or empty.
            let written: u64 = self.finished.iter().map(|s| s.documents).sum();
            self.empty_documents = self.input_documents - written;
        }
        Ok(())
    }

    /// Whether a shard's files are there and match the manifest's checksums.
    fn is_whole(&self, record: &ShardRecord) -> bool {
        let bin = self.dir.join(format!("{}.bin", record.prefix));
        let idx = self.dir.join(format!("{}.idx", record.prefix));
        let matches = |path: &Path, bytes: Option<u64>, sha256: &str| {
            sha256_of_file(path, bytes).is_ok_and(|sum| sum == sha256)
        };
        matches(&bin, Some(record.bin_bytes), &record.bin_sha256)
            && matches(&idx, None, &record.idx_sha256)
    }

    /// Adds a batch of input documents, in the shards' dtype with each end
    /// token already after the last sequence. A document without tokens is
    /// counted but not written, as Megatron skips them.
    pub fn add_batch(&mut self, batch: &ShardBytes) -> Result<(), Error> {
        // The batch's bytes from `unwritten` to `indexed` belong to the
        // current shard's indexed documents and are written in one piece.
        let (mut unwritten, mut indexed) = (0, 0);
        let mut sizes = Vec::new();
        for sequences in batch.documents() {
            self.input_documents += 1;
            sizes.clear();
            sizes.extend(sequences.map(<[u8]>::len));
            let size: usize = sizes.iter().sum();
            if size == 0 {
                self.empty_documents += 1;
                continue;
            }
            if self.current.is_none() {
                let number = self.finished.len() + self.closing.len();
                let prefix = format!("{}_{number:05}", self.prefix);
                self.current = Some(ShardWriter::create(&self.dir, prefix, self.dtype)?);
            }
            let shard = self.current.as_mut().expect("just created");
            shard.index_document(&sizes)?;
            indexed += size;
            if shard.bin_bytes >= self.shard_bytes {
                shard.write(&batch.bytes[unwritten..indexed])?;
                unwritten = indexed;
                self.close_shard();
            }
            self.publish_hashed(false)?;
        }
        match self.current.as_mut() {
            Some(shard) => shard.write(&batch.bytes[unwritten..indexed]),
            None => Ok(()),
        }
    }

    fn close_shard(&mut self) {
        if let Some(mut shard) = self.current.take() {
            shard.close();
            self.closing.push_back(Closed {
                shard,
                input_documents: self.input_documents,
                empty_documents: self.empty_documents,
            });
        }
    }

    /// Publishes closed shards in order, each with a manifest that lists it:
    /// those already hashed, and more while too many are hashing (`all`:
    /// every one, waiting for their hashes).
    fn publish_hashed(&mut self, all: bool) -> Result<(), Error> {
        while let Some(oldest) = self.closing.front() {
            let hashed = oldest.shard.hasher.is_finished();
            if !(all || hashed || self.closing.len() > HASHING_BEHIND) {
                break;
            }
            let closed = self.closing.pop_front().expect("the oldest");
            self.finished
                .push(closed.shard.publish(closed.input_documents)?);
            self.write_manifest(closed.empty_documents, false)?;
        }
        Ok(())
    }

    /// The manifest of the published shards, which `empty_documents` were
    /// left out of.
    fn write_manifest(&self, empty_documents: u64, complete: bool) -> Result<(), Error> {
        let mut manifest = self.header.clone();
        let total = |f: fn(&ShardRecord) -> u64| self.finished.iter().map(f).sum::<u64>();
        manifest.insert("format".into(), json!("megatron-mmididx-v1"));
        manifest.insert("dtype".into(), json!(self.dtype.name()));
        manifest.insert("documents".into(), json!(total(|s| s.documents)));
        manifest.insert("sequences".into(), json!(total(|s| s.sequences)));
        manifest.insert("tokens".into(), json!(total(|s| s.tokens)));
        manifest.insert("empty_documents".into(), json!(empty_documents));
        manifest.insert(
            "shards".into(),
            Value::Array(self.finished.iter().map(ShardRecord::to_json).collect()),
        );
        manifest.insert("complete".into(), json!(complete));
        let text = serde_json::to_string_pretty(&Value::Object(manifest)).expect("JSON values");
        write_durably(&self.dir.join(MANIFEST), text.as_bytes())
    }

    /// Publishes every closed shard, waiting for the checksums still being
    /// taken, for a run that stops before its end (a full disk, a bad line,
    /// Ctrl-C): what was whole is kept, and a resumed run starts after it.
    /// The shard being written is left unfinished (and removed on drop).
    pub fn publish_closed(&mut self) -> Result<(), Error> {
        self.publish_hashed(true)
    }

    /// Closes the last shard and marks the run complete.
    pub fn finish(mut self) -> Result<Vec<ShardRecord>, Error> {
        self.close_shard();
        self.publish_hashed(true)?;
        self.write_manifest(self.empty_documents, true)?;
        Ok(std::mem::take(&mut self.finished))
    }

    pub fn dtype(&self) -> TokenDtype {
        self.dtype
    }

    pub fn empty_documents(&self) -> u64 {
        self.empty_documents
    }
}

impl Drop for ShardSet {
    /// Unpublished shards' `.partial` files are removed, not left behind.
    fn drop(&mut self) {
        let unpublished = self.closing.drain(..).map(|closed| closed.shard);
        for shard in unpublished.chain(self.current.take()) {
            let path = shard.bin_path.clone();
            drop(shard);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The SHA-256 of a file in hex, when it has `bytes` bytes (if given).
fn sha256_of_file(path: &Path, bytes: Option<u64>) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    if bytes.is_some_and(|bytes| file.metadata().map(|m| m.len()).ok() != Some(bytes)) {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        match file.read(&mut buffer)? {
            0 => return Ok(hex::encode(hasher.finalize())),
            n => hasher.update(&buffer[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::random_stream;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bbpe-writer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Documents as batches of up to `per_batch`, each document one sequence.
    fn batches(documents: &[Vec<u8>], per_batch: usize) -> Vec<ShardBytes> {
        documents
            .chunks(per_batch)
            .map(|batch| ShardBytes {
                bytes: batch.concat(),
                sequence_ends: batch
                    .iter()
                    .scan(0, |end, document| {
                        *end += document.len();
                        Some(*end)
                    })
                    .collect(),
                sequences_per_document: vec![1; batch.len()],
            })
            .collect()
    }

    /// Documents of one sequence each, some empty, as uint16 bytes.
    fn documents(count: usize) -> Vec<Vec<u8>> {
        let mut next = random_stream(7);
        (0..count)
            .map(|_| {
                let tokens = if next().is_multiple_of(9) {
                    0
                } else {
                    next() % 300
                };
                (0..tokens * 2).map(|_| next() as u8).collect()
            })
            .collect()
    }

    /// A shard set whose shards close after 4,000 bytes.
    fn open_small_shards(dir: &Path, existing: ExistingShards) -> (ShardSet, u64) {
        ShardSet::open(dir, "t", TokenDtype::U16, 4_000, Map::new(), existing, 2).unwrap()
    }

    /// A new shard set given the first 1,500 `documents`, in batches of 100,
    /// and no more: a run stopped there.
    fn stopped_after_1500(dir: &Path, documents: &[Vec<u8>]) -> ShardSet {
        let (mut set, _) = open_small_shards(dir, ExistingShards::Refuse);
        for batch in batches(&documents[..1_500], 100) {
            set.add_batch(&batch).unwrap();
        }
        set
    }

    fn read_manifest(dir: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).unwrap()).unwrap()
    }

    fn partial_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|entry| is_partial(&entry.as_ref().unwrap().path()))
            .count()
    }

    #[test]
    fn shards_hashed_behind_the_writer_are_published_whole_and_in_order() {
        let dir = scratch_dir("order");
        let documents = documents(3_000);
        let (mut set, skip) = open_small_shards(&dir, ExistingShards::Refuse);
        assert_eq!(skip, 0);
        // Batches that close several shards, and batches inside one.
        for batch in batches(&documents[..2_000], 250)
            .iter()
            .chain(&batches(&documents[2_000..], 3))
        {
            set.add_batch(batch).unwrap();
        }
        let records = set.finish().unwrap();
        assert!(records.len() > 50, "{} shards", records.len());
        let mut all = Vec::new();
        for (number, record) in records.iter().enumerate() {
            assert_eq!(record.prefix, format!("t_{number:05}"));
            let bin = dir.join(format!("{}.bin", record.prefix));
            assert_eq!(
                sha256_of_file(&bin, Some(record.bin_bytes)).unwrap(),
                record.bin_sha256
            );
            all.extend(std::fs::read(bin).unwrap());
        }
        assert_eq!(all, documents.concat());
        let manifest = read_manifest(&dir);
        let empty = documents.iter().filter(|d| d.is_empty()).count();
        assert_eq!(manifest["empty_documents"], empty);
        assert_eq!(manifest["shards"].as_array().unwrap().len(), records.len());
        assert_eq!(manifest["complete"], true);
        let leftovers = partial_files(&dir);
        assert_eq!(leftovers, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stopped_run_publishes_the_shards_it_closed() {
        let dir = scratch_dir("kept");
        let documents = documents(2_000);
        let mut set = stopped_after_1500(&dir, &documents);
        let closed = set.finished.len() + set.closing.len();
        assert!(closed > 10, "{closed} shards closed");
        set.publish_closed().unwrap();
        assert!(set.closing.is_empty());
        let through = set.finished.last().unwrap().input_documents;
        drop(set);
        let manifest = read_manifest(&dir);
        assert_eq!(manifest["shards"].as_array().unwrap().len(), closed);
        assert_eq!(partial_files(&dir), 0);
        let (_, skip) = open_small_shards(&dir, ExistingShards::Resume);
        assert_eq!(skip, through);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_run_stopped_while_shards_hash_resumes_after_its_published_ones() {
        let dir = scratch_dir("stopped");
        let documents = documents(2_000);
        let set = stopped_after_1500(&dir, &documents);
        drop(set); // stopped: closed shards still hashing are abandoned
        let partial = partial_files(&dir);
        assert_eq!(partial, 0, "abandoned shards leave no .partial files");

        let (mut set, skip) = open_small_shards(&dir, ExistingShards::Resume);
        assert!(skip > 0 && skip < 1_500, "resumed after {skip} documents");
        for batch in batches(&documents[skip as usize..], 7) {
            set.add_batch(&batch).unwrap();
        }
        let records = set.finish().unwrap();
        let all: Vec<u8> = records
            .iter()
            .flat_map(|r| std::fs::read(dir.join(format!("{}.bin", r.prefix))).unwrap())
            .collect();
        assert_eq!(all, documents.concat());
        let manifest = read_manifest(&dir);
        let empty = documents.iter().filter(|d| d.is_empty()).count();
        assert_eq!(manifest["empty_documents"], empty);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
