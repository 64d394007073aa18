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

/// Runs `job` with a rayon scope on the pool for `threads` (0 = all cores);
/// the calling thread keeps running `job` while spawned work runs on the pool.
pub fn scope_with_threads<'scope, T>(
    threads: usize,
    job: impl FnOnce(&rayon::Scope<'scope>) -> T,
) -> Result<T, Error> {
    Ok(match pool(threads)? {
        Some(pool) => pool.in_place_scope(job),
        None => rayon::in_place_scope(job),
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

/// Asks Linux to back a large buffer with 2 MB pages: writing hundreds of
/// megabytes of ids then takes a few hundred page faults instead of tens of
/// thousands. Only a hint; elsewhere, or if refused, nothing changes.
pub fn prefer_huge_pages(buffer: &mut [u32]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = buffer.as_mut_ptr() as usize;
        let end = start + std::mem::size_of_val(buffer);
        let aligned = start.next_multiple_of(HUGE);
        if end > aligned + HUGE {
            // SAFETY: the range lies inside `buffer`, which we own mutably;
            // MADV_HUGEPAGE changes only how the kernel backs it, not its contents.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    end - aligned,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buffer;
}

/// All ids of all texts in one vector, with `offsets[i]..offsets[i + 1]`
/// the ids of text `i`.
///
/// Texts are encoded in runs of similar size. Since a text never has more
/// ids than bytes, each run owns the region of one output vector that starts
/// at its first byte's position; the regions are then closed up. So the
/// output is allocated once and no vector is allocated per text.
pub fn encode_batch_flat<S: AsRef<str> + Sync>(
    encoder: &Encoder,
    texts: &[S],
    specials: Specials,
    threads: usize,
) -> Result<(Vec<u32>, Vec<u64>), Error> {
    let mut ids = Vec::new();
    let (count, offsets) = encode_batch_flat_into(encoder, texts, specials, threads, &mut ids)?;
    ids.truncate(count);
    Ok((ids, offsets))
}

/// [`encode_batch_flat`] into a buffer kept between calls: the ids are
/// `ids[..count]`, and the rest of `ids` is scratch. Encoding batch after
/// batch into the same buffer costs no page faults after the first.
pub fn encode_batch_flat_into<S: AsRef<str> + Sync>(
    encoder: &Encoder,
    texts: &[S],
    specials: Specials,
    threads: usize,
    ids: &mut Vec<u32>,
) -> Result<(usize, Vec<u64>), Error> {
    const RUN_BYTES: usize = 256 << 10;
    let runs = runs_by_size(texts, RUN_BYTES);
    let run_bytes: Vec<usize> = runs
        .iter()
        .map(|run| texts[run.clone()].iter().map(|t| t.as_ref().len()).sum())
        .collect();
    let needed: usize = run_bytes.iter().sum();
    if ids.len() < needed {
        // Zeroed memory comes from the OS untouched: pages never written cost nothing.
        *ids = vec![0u32; needed];
        prefer_huge_pages(ids);
    }
    let mut rest = &mut ids[..needed];
    let mut regions = Vec::with_capacity(runs.len());
    for &bytes in &run_bytes {
        let (region, tail) = rest.split_at_mut(bytes);
        regions.push(region);
        rest = tail;
    }
    let ends: Vec<Vec<usize>> = run_with_threads(threads, || {
        regions
            .into_par_iter()
            .zip(&runs)
            .map_init(Vec::new, |buffer, (region, run)| {
                buffer.clear();
                let mut ends = Vec::with_capacity(run.len());
                for text in &texts[run.clone()] {
                    encoder.encode_into(text.as_ref(), specials, buffer, None)?;
                    ends.push(buffer.len());
                }
                region[..buffer.len()].copy_from_slice(buffer);
                Ok(ends)
            })
            .collect::<Result<_, Error>>()
    })??;
    let mut offsets = Vec::with_capacity(texts.len() + 1);
    offsets.push(0u64);
    let (mut write, mut region_start) = (0, 0);
    for (run_ends, bytes) in ends.iter().zip(&run_bytes) {
        let count = run_ends.last().copied().unwrap_or(0);
        ids.copy_within(region_start..region_start + count, write);
        offsets.extend(run_ends.iter().map(|end| (write + end) as u64));
        write += count;
        region_start += bytes;
    }
    Ok((write, offsets))
}

/// Joins flat batches of consecutive texts into one, copying in parallel.
pub fn concat_flat(
    parts: Vec<(Vec<u32>, Vec<u64>)>,
    threads: usize,
) -> Result<(Vec<u32>, Vec<u64>), Error> {
    if parts.len() == 1 {
        return Ok(parts.into_iter().next().unwrap());
    }
    let total = parts.iter().map(|(ids, _)| ids.len()).sum();
    let mut ids = vec![0u32; total];
    prefer_huge_pages(&mut ids);
    let mut destinations = Vec::with_capacity(parts.len());
    let mut rest = ids.as_mut_slice();
    for (part, _) in &parts {
        let (head, tail) = rest.split_at_mut(part.len());
        destinations.push(head);
        rest = tail;
    }
    run_with_threads(threads, || {
        destinations
            .into_par_iter()
            .zip(&parts)
            .for_each(|(to, (from, _))| to.copy_from_slice(from));
    })?;
    let mut offsets = vec![0u64];
    for (part, part_offsets) in &parts {
        let base = *offsets.last().unwrap();
        offsets.extend(part_offsets[1..].iter().map(|o| base + o));
        debug_assert_eq!(*offsets.last().unwrap() - base, part.len() as u64);
    }
    Ok((ids, offsets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pretokenize::Pretokenizer;
    use crate::vocab::Vocab;

    #[test]
    fn flat_batch_matches_single_encodes_for_any_thread_count() {
        let entries: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        let merges = vec![(b"a".to_vec(), b"b".to_vec())];
        let mut entries = entries;
        entries.push((b"ab".to_vec(), 256));
        let encoder = Encoder::new(
            Vocab::new(entries, merges, vec![]).unwrap(),
            Pretokenizer::Gpt2,
            false,
        );
        let texts: Vec<String> = (0..500)
            .map(|i| "ab cab ".repeat(i % 37) + &"x".repeat(i % 5000))
            .collect();
        let expected: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| encoder.encode(t, Specials::None).unwrap())
            .collect();
        for threads in [1, 2, 3] {
            let (ids, offsets) =
                encode_batch_flat(&encoder, &texts, Specials::None, threads).unwrap();
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
    fn runs_cover_every_text_once() {
        let texts = ["aaaa", "b", "cc", "dddddddd", "", "e"];
        let runs = runs_by_size(&texts, 4);
        assert_eq!(runs, vec![0..1, 1..4, 4..6]);
        assert!(runs_by_size::<&str>(&[], 4).is_empty());
    }
}
