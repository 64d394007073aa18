//! SHA-256 of a shard's `.bin` on a thread of its own, beside the writer.
//!
//! The writer thread converts every id to the shard's dtype, writes it and
//! hashes it; on all 114 MB of English (both threads) the writing took about
//! 3.7% of the command's CPU time and hashing 3.3%, so one thread doing both
//! would keep up with about 9.5 cores of encoding. Hashing here, a chunk
//! behind the writes, lets each keep up with about twice that.

use crate::error::Error;
use sha2::{Digest, Sha256};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;
use std::thread::{self, JoinHandle};

/// Chunks waiting to be hashed (and as many spare buffers coming back).
const QUEUED: usize = 2;

pub(super) struct BackgroundSha256 {
    chunks: Option<SyncSender<Vec<u8>>>,
    /// In a mutex only so that a shard set can be shared (`Receiver` is not
    /// `Sync`); only the writer thread takes from it.
    spares: Mutex<Receiver<Vec<u8>>>,
    thread: Option<JoinHandle<[u8; 32]>>,
}

impl BackgroundSha256 {
    pub fn start() -> Result<Self, Error> {
        let (chunks, received) = sync_channel::<Vec<u8>>(QUEUED);
        let (returned, spares) = sync_channel(QUEUED);
        let thread = thread::Builder::new()
            .name("bbpe-sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for mut chunk in received {
                    hasher.update(&chunk);
                    chunk.clear();
                    let _ = returned.try_send(chunk);
                }
                hasher.finalize().into()
            })
            .map_err(|e| Error::Invalid(format!("cannot start the hashing thread: {e}")))?;
        Ok(BackgroundSha256 {
            chunks: Some(chunks),
            spares: Mutex::new(spares),
            thread: Some(thread),
        })
    }

    /// Hashes `chunk` after everything handed over before it, and returns an
    /// empty buffer (a used one when there is one) for the next chunk.
    pub fn update(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>, Error> {
        let spares = self.spares.get_mut().unwrap_or_else(|e| e.into_inner());
        let spare = spares.try_recv().unwrap_or_default();
        let sent = self.chunks.as_ref().map(|chunks| chunks.send(chunk));
        match sent {
            Some(Ok(())) => Ok(spare),
            _ => Err(self.stopped()),
        }
    }

    /// The digest of everything handed over, in hex.
    pub fn finish(mut self) -> Result<String, Error> {
        self.chunks = None; // the thread sees the end and finalizes
        let thread = self.thread.take().expect("joined only here or on drop");
        thread
            .join()
            .map(hex::encode)
            .map_err(|panic| crate::system::threads::panicked("the hashing thread", panic))
    }

    /// The thread is gone before its end: it panicked, and joining says so.
    fn stopped(&mut self) -> Error {
        self.chunks = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(panic)) => crate::system::threads::panicked("the hashing thread", panic),
            _ => Error::Internal("the hashing thread stopped early".into()),
        }
    }
}

impl Drop for BackgroundSha256 {
    fn drop(&mut self) {
        self.chunks = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hash_as_one_stream() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut hasher = BackgroundSha256::start().unwrap();
        let mut buffer = Vec::new();
        for piece in data.chunks(123_457) {
            buffer.extend_from_slice(piece);
            buffer = hasher.update(std::mem::take(&mut buffer)).unwrap();
            assert!(buffer.is_empty());
        }
        assert_eq!(hasher.finish().unwrap(), hex::encode(Sha256::digest(&data)));
        let empty = BackgroundSha256::start().unwrap().finish().unwrap();
        assert_eq!(empty, hex::encode(Sha256::digest(b"")));
    }
}
