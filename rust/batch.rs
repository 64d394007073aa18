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

/// Consecutive runs of texts of about `target` bytes each (a longer text is a
/// run of its own): units of work of similar size, whatever the documents.
fn runs_by_size<S: AsRef<str>>(texts: &[S], target: usize) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, text) in texts.iter().enumerate() {
        bytes += text.as_ref().len();
        if bytes >= target {
            runs.push(start..i + 1);
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < texts.len() {
        runs.push(start..texts.len());
    }
    runs
}

/// All ids of all texts in one vector, with `offsets[i]..offsets[i + 1]`
/// the ids of text `i`. Texts are encoded in runs of similar size, each into
/// one buffer, so no vector is allocated per text.
pub fn encode_batch_flat<S: AsRef<str> + Sync>(
    encoder: &Encoder,
    texts: &[S],
    specials: Specials,
    threads: usize,
) -> Result<(Vec<u32>, Vec<u64>), Error> {
    const RUN_BYTES: usize = 256 << 10;
    let runs = runs_by_size(texts, RUN_BYTES);
    let encoded: Vec<(Vec<u32>, Vec<u64>)> = run_with_threads(threads, || {
        runs.par_iter()
            .map(|run| {
                let run = &texts[run.clone()];
                // At most one id per byte: no reallocation, and the pages
                // never written are never touched.
                let bytes: usize = run.iter().map(|t| t.as_ref().len()).sum();
                let mut ids = Vec::with_capacity(bytes);
                let mut ends = Vec::with_capacity(run.len());
                for text in run {
                    encoder.encode_into(text.as_ref(), specials, &mut ids, None)?;
                    ends.push(ids.len() as u64);
                }
                Ok((ids, ends))
            })
            .collect::<Result<_, Error>>()
    })??;
    let total = encoded.iter().map(|(ids, _)| ids.len()).sum();
    let mut ids = Vec::with_capacity(total);
    let mut offsets = Vec::with_capacity(texts.len() + 1);
    offsets.push(0u64);
    for (run_ids, ends) in encoded {
        let base = ids.len() as u64;
        offsets.extend(ends.iter().map(|end| base + end));
        ids.extend_from_slice(&run_ids);
    }
    Ok((ids, offsets))
}

#[cfg(test)]
mod tests {
    use super::runs_by_size;

    #[test]
    fn runs_cover_every_text_once() {
        let texts = ["aaaa", "b", "cc", "dddddddd", "", "e"];
        let runs = runs_by_size(&texts, 4);
        assert_eq!(runs, vec![0..1, 1..4, 4..6]);
        assert!(runs_by_size::<&str>(&[], 4).is_empty());
    }
}
