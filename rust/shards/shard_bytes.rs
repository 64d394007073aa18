//! An encoded batch as the shards store it: every id in the shards' dtype,
//! each document's end token after its last sequence. The conversion runs on
//! all threads before the batch reaches the writer, whose one thread then
//! only copies bytes into the file. On one thread the conversion kept up
//! with 11-18x one core's encoding of English but 6-7x of Korean
//! (`benches/shard_stages.rs`): too little for 16 cores.

use super::format::TokenDtype;
use crate::error::Error;
use crate::system::threads;

/// Ids converted per task: large enough that a task's overhead is lost in
/// it, small enough that the threads share a batch evenly.
const TASK_IDS: usize = 1 << 18;

/// One batch's documents in a shard's bytes.
#[derive(Default)]
pub struct ShardBytes {
    /// Every sequence's ids end to end (with the end tokens).
    pub bytes: Vec<u8>,
    /// Where each sequence's bytes end.
    pub sequence_ends: Vec<usize>,
    pub sequences_per_document: Vec<u32>,
}

impl ShardBytes {
    /// Each document's sequences as byte slices, in order.
    pub fn documents(&self) -> impl Iterator<Item = impl Iterator<Item = &[u8]>> {
        let mut sequence = 0;
        self.sequences_per_document.iter().map(move |&count| {
            let first = sequence;
            sequence += count as usize;
            (first..sequence).map(|i| {
                let start = if i == 0 { 0 } else { self.sequence_ends[i - 1] };
                &self.bytes[start..self.sequence_ends[i]]
            })
        })
    }
}

/// Converts a batch's ids: `ends` says where each sequence's ids end, and
/// `sequences_per_document` how many sequences each document has. `eos`
/// follows every document that has ids (an empty document stays empty, as
/// Megatron skips those). `bytes` is a buffer to reuse.
pub fn convert(
    dtype: TokenDtype,
    ids: &[u32],
    ends: &[u64],
    sequences_per_document: Vec<u32>,
    eos: Option<u32>,
    threads: usize,
    mut bytes: Vec<u8>,
) -> Result<ShardBytes, Error> {
    let too_large = |id: u32| {
        Error::Invalid(format!(
            "token id {id} does not fit the shards' {} ids",
            dtype.name()
        ))
    };
    // Where each document's ids and bytes start and end, and where each
    // sequence's bytes end: one pass over the sequences.
    let mut documents = Vec::with_capacity(sequences_per_document.len());
    let mut sequence_ends = Vec::with_capacity(ends.len());
    let (mut sequence, mut id_start, mut byte_start) = (0, 0, 0);
    for &count in &sequences_per_document {
        let last = sequence + count as usize;
        let id_end = if count == 0 {
            id_start
        } else {
            ends[last - 1] as usize
        };
        let has_eos = eos.is_some() && id_end > id_start;
        for (i, &end) in ends[sequence..last].iter().enumerate() {
            let eos_here = has_eos && sequence + i + 1 == last;
            let tokens = end as usize - id_start + eos_here as usize;
            sequence_ends.push(byte_start + tokens * dtype.itemsize());
        }
        let byte_end = byte_start + (id_end - id_start + has_eos as usize) * dtype.itemsize();
        documents.push((id_start..id_end, byte_end - byte_start));
        (sequence, id_start, byte_start) = (last, id_end, byte_end);
    }
    bytes.clear();
    bytes.resize(byte_start, 0);

    // Documents grouped into tasks, each with its own part of the bytes.
    let mut tasks = Vec::new();
    let mut rest = bytes.as_mut_slice();
    let mut first = 0;
    while first < documents.len() {
        let mut last = first;
        let (mut task_ids, mut task_bytes) = (0, 0);
        while last < documents.len() && task_ids < TASK_IDS {
            task_ids += documents[last].0.len();
            task_bytes += documents[last].1;
            last += 1;
        }
        let (part, after) = std::mem::take(&mut rest).split_at_mut(task_bytes);
        tasks.push((&documents[first..last], part));
        rest = after;
        first = last;
    }
    let convert_task = |(documents, mut out): (&[(std::ops::Range<usize>, usize)], &mut [u8])| {
        for (range, size) in documents {
            let (document, after) = std::mem::take(&mut out).split_at_mut(*size);
            let ids = &ids[range.clone()];
            let (converted, end) = document.split_at_mut(ids.len() * dtype.itemsize());
            dtype.write_bytes(ids, converted).map_err(too_large)?;
            if let (Some(eos), false) = (eos, end.is_empty()) {
                dtype.write_bytes(&[eos], end).map_err(too_large)?;
            }
            out = after;
        }
        Ok(())
    };
    threads::share_tasks(threads, tasks, convert_task)??;
    Ok(ShardBytes {
        bytes,
        sequence_ends,
        sequences_per_document,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::random_stream;

    /// What the writer did before: each document's sequences converted one
    /// id at a time, the end token after the last.
    fn one_by_one(
        dtype: TokenDtype,
        ids: &[u32],
        ends: &[u64],
        counts: &[u32],
        eos: Option<u32>,
    ) -> Vec<Vec<Vec<u8>>> {
        let mut sequences = ends.iter().scan(0, |start, &end| {
            let sequence = &ids[*start..end as usize];
            *start = end as usize;
            Some(sequence)
        });
        counts
            .iter()
            .map(|&count| {
                let document: Vec<&[u32]> = sequences.by_ref().take(count as usize).collect();
                let has_eos = document.iter().any(|s| !s.is_empty());
                let last = document.len().saturating_sub(1);
                document
                    .iter()
                    .enumerate()
                    .map(|(i, sequence)| {
                        let mut bytes = Vec::new();
                        let with_eos = eos.filter(|_| has_eos && i == last);
                        for &id in sequence.iter().chain(with_eos.as_ref()) {
                            match dtype {
                                TokenDtype::U16 => bytes.extend((id as u16).to_le_bytes()),
                                TokenDtype::I32 => bytes.extend((id as i32).to_le_bytes()),
                            }
                        }
                        bytes
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn batches_convert_as_each_sequence_would_on_its_own() {
        let mut next = random_stream(18);
        for round in 0..60 {
            let dtype = if round % 2 == 0 {
                TokenDtype::U16
            } else {
                TokenDtype::I32
            };
            let eos = [None, Some(50_256)][round % 3 % 2];
            // Some documents with no sequences, some with empty ones, and
            // enough ids in some rounds for several tasks.
            let documents = (next() % 40) as usize;
            let scale = if round % 10 == 0 { 40_000 } else { 8 };
            let (mut ids, mut ends, mut counts) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..documents {
                let count = (next() % 4) as u32;
                for _ in 0..count {
                    let length = if next().is_multiple_of(4) {
                        0
                    } else {
                        next() % scale
                    };
                    ids.extend((0..length).map(|_| (next() % 60_000) as u32));
                    ends.push(ids.len() as u64);
                }
                counts.push(count);
            }
            let converted = convert(dtype, &ids, &ends, counts.clone(), eos, 2, vec![7; 5])
                .expect("every id fits");
            let got: Vec<Vec<Vec<u8>>> = converted
                .documents()
                .map(|document| document.map(<[u8]>::to_vec).collect())
                .collect();
            assert_eq!(
                got,
                one_by_one(dtype, &ids, &ends, &counts, eos),
                "round {round}"
            );
            let whole: usize = got.iter().flatten().map(Vec::len).sum();
            assert_eq!(whole, converted.bytes.len());
        }
    }

    #[test]
    fn an_id_too_large_for_the_dtype_is_named() {
        let ids = [5, 70_000, 6];
        let error = convert(TokenDtype::U16, &ids, &[3], vec![1], None, 1, Vec::new())
            .err()
            .expect("70000 does not fit uint16");
        assert!(error
            .to_string()
            .contains("token id 70000 does not fit the shards' uint16 ids"));
        let eos_too_large = convert(
            TokenDtype::U16,
            &[1],
            &[1],
            vec![1],
            Some(65_536),
            1,
            Vec::new(),
        );
        assert!(eos_too_large.is_err());
    }
}
