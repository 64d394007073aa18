//! Many texts at once on all cores. Each text's ids depend only on the text,
//! so results are the same for any number of threads.

use crate::encode::{Encoder, Specials};
use crate::error::Error;
use rayon::prelude::*;
use rayon::ThreadPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A rayon pool with `threads` threads (0 = rayon's global pool), kept for reuse.
fn pool(threads: usize) -> Result<Option<Arc<ThreadPool>>, Error> {
    if threads == 0 {
        return Ok(None);
    }
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS.get_or_init(Default::default).lock().unwrap();
    if let Some(pool) = pools.get(&threads) {
        return Ok(Some(pool.clone()));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start {threads} threads: {e}")))?;
    let pool = Arc::new(pool);
    pools.insert(threads, pool.clone());
    Ok(Some(pool))
}

/// Runs `job` inside the pool for `threads` (0 = all cores).
pub fn run_with_threads<T: Send>(
    threads: usize,
    job: impl FnOnce() -> T + Send,
) -> Result<T, Error> {
    Ok(match pool(threads)? {
        Some(pool) => pool.install(job),
        None => job(),
    })
}

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

/// All ids of all texts in one vector, with `offsets[i]..offsets[i + 1]`
/// the ids of text `i`. Texts are encoded in chunks, each into one buffer,
/// so no vector is allocated per text.
pub fn encode_batch_flat<S: AsRef<str> + Sync>(
    encoder: &Encoder,
    texts: &[S],
    specials: Specials,
    threads: usize,
) -> Result<(Vec<u32>, Vec<u64>), Error> {
    const CHUNK: usize = 64;
    let chunks: Vec<(Vec<u32>, Vec<u64>)> = run_with_threads(threads, || {
        texts
            .par_chunks(CHUNK)
            .map(|chunk| {
                // At most one id per byte: no reallocation, and the pages
                // never written are never touched.
                let bytes: usize = chunk.iter().map(|t| t.as_ref().len()).sum();
                let mut ids = Vec::with_capacity(bytes);
                let mut ends = Vec::with_capacity(chunk.len());
                for text in chunk {
                    encoder.encode_into(text.as_ref(), specials, &mut ids, None)?;
                    ends.push(ids.len() as u64);
                }
                Ok((ids, ends))
            })
            .collect::<Result<_, Error>>()
    })??;
    let total = chunks.iter().map(|(ids, _)| ids.len()).sum();
    let mut ids = Vec::with_capacity(total);
    let mut offsets = Vec::with_capacity(texts.len() + 1);
    offsets.push(0u64);
    for (chunk_ids, ends) in chunks {
        let base = ids.len() as u64;
        offsets.extend(ends.iter().map(|end| base + end));
        ids.extend_from_slice(&chunk_ids);
    }
    Ok((ids, offsets))
}
