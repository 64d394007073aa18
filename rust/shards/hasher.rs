//! SHA-256 of a shard's `.bin` on a thread of its own, which reads the file
//! back from the page cache as the writer reports bytes written. Nothing ties
//! it to the writer's pace: a closed shard's hashing goes on while the next
//! shard is written, so several shards hash at once.
//!
//! One thread hashes about 1.1 GB/s here (SHA-NI), which kept up with 16
//! cores' encoding of English but only 4.5 of Korean, whose shards take 3.7
//! times as many bytes per byte of text (`benches/shard_stages.rs`).

use crate::error::Error;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

/// Bytes read and hashed at a time.
const PIECE_BYTES: usize = 4 << 20;

/// What the writer has told the hashing thread.
#[derive(Default)]
struct Written {
    bytes: u64,
    /// No more bytes will come: hash to the end and finish.
    closed: bool,
    /// The shard is abandoned: stop without finishing.
    abandoned: bool,
}

#[derive(Default)]
struct Shared {
    written: Mutex<Written>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, change: impl FnOnce(&mut Written)) {
        change(&mut self.written.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_one();
    }

    /// Waits until more than `hashed` bytes are written or the file is
    /// closed; `None` when abandoned.
    fn wait_beyond(&self, hashed: u64) -> Option<(u64, bool)> {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        while written.bytes == hashed && !written.closed && !written.abandoned {
            written = self
                .changed
                .wait(written)
                .unwrap_or_else(PoisonError::into_inner);
        }
        (!written.abandoned).then_some((written.bytes, written.closed))
    }
}

pub(super) struct BackgroundSha256 {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<[u8; 32], Error>>>,
}

impl BackgroundSha256 {
    /// Starts hashing `file` (opened for writing at `path`) from its start.
    pub fn start(file: &File, path: &Path) -> Result<Self, Error> {
        let shown = path.display().to_string();
        let file = file.try_clone().map_err(|e| Error::io(&shown, e))?;
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        let thread = thread::Builder::new()
            .name("bbpe-sha256".into())
            .spawn(move || hash_as_written(&file, &theirs, &shown))
            .map_err(|e| Error::Invalid(format!("cannot start the hashing thread: {e}")))?;
        Ok(BackgroundSha256 {
            shared,
            thread: Some(thread),
        })
    }

    /// The file now holds `bytes` bytes, all to be hashed.
    pub fn written(&self, bytes: u64) {
        self.shared.update(|written| written.bytes = bytes);
    }

    /// No more bytes will come; the hashing goes on until [`Self::finish`].
    pub fn close(&self) {
        self.shared.update(|written| written.closed = true);
    }

    /// Whether [`Self::finish`] would return without waiting.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// The digest of the whole file as written, in hex; waits for it.
    pub fn finish(mut self) -> Result<String, Error> {
        self.close();
        let thread = self.thread.take().expect("joined only here or on drop");
        thread
            .join()
            .map_err(|panic| crate::system::threads::panicked("the hashing thread", panic))?
            .map(hex::encode)
    }
}

impl Drop for BackgroundSha256 {
    /// An abandoned shard's hashing stops at its next piece.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shared.update(|written| written.abandoned = true);
            let _ = thread.join();
        }
    }
}

fn hash_as_written(file: &File, shared: &Shared, shown: &str) -> Result<[u8; 32], Error> {
    let mut hasher = Sha256::new();
    let mut piece = vec![0; PIECE_BYTES];
    let mut hashed = 0u64;
    loop {
        let Some((written, closed)) = shared.wait_beyond(hashed) else {
            return Err(Error::Invalid("the shard was abandoned".into()));
        };
        while hashed < written {
            let length = (written - hashed).min(PIECE_BYTES as u64) as usize;
            read_exact_at(file, &mut piece[..length], hashed).map_err(|e| Error::io(shown, e))?;
            hasher.update(&piece[..length]);
            hashed += length as u64;
        }
        if closed && hashed == written {
            return Ok(hasher.finalize().into());
        }
    }
}

/// Reads `buffer.len()` bytes at `offset`, leaving the writer's position alone.
fn read_exact_at(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
    }
    #[cfg(windows)]
    {
        let (mut buffer, mut offset) = (buffer, offset);
        while !buffer.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(file, buffer, offset)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buffer = &mut std::mem::take(&mut buffer)[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_file_hashes_as_one_stream_whatever_the_writes() {
        let data: Vec<u8> = (0..9_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let dir = std::env::temp_dir().join(format!("bbpe-hasher-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shard.bin.partial");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let hasher = BackgroundSha256::start(&file, &path).unwrap();
        let mut written = 0;
        // Pieces smaller and larger than the hasher's, some reported late.
        for (i, piece) in data.chunks(1_234_567).enumerate() {
            file.write_all(piece).unwrap();
            written += piece.len() as u64;
            if i % 3 != 1 {
                hasher.written(written);
            }
        }
        hasher.written(written);
        assert_eq!(hasher.finish().unwrap(), hex::encode(Sha256::digest(&data)));

        let empty = File::create(dir.join("empty")).unwrap();
        let hasher = BackgroundSha256::start(&empty, &dir.join("empty")).unwrap();
        assert_eq!(hasher.finish().unwrap(), hex::encode(Sha256::digest(b"")));
        // Dropped unfinished: the thread stops instead of waiting for bytes.
        drop(BackgroundSha256::start(&empty, &dir.join("empty")).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
