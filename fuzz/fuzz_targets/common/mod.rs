//! What several targets share: a guard against huge allocations, and the
//! plain merge loop that the encoder is compared with.
#![allow(dead_code)]

use bbpe::Vocab;
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;

/// The largest single allocation a target may make. libFuzzer's own
/// `-malloc_limit_mb` needs a sanitizer's allocator hooks, which a stable
/// build without sanitizers lacks, so the targets check it themselves.
const ALLOCATION_LIMIT: usize = 1 << 30;

pub struct LimitedAllocator;

unsafe impl GlobalAlloc for LimitedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

fn check(size: usize) {
    if size > ALLOCATION_LIMIT {
        // No allocation may happen here: write the message raw and abort,
        // which libFuzzer reports as a crash with the input saved.
        let message = b"==fuzz== allocation over 1 GiB\n";
        unsafe { libc_write(2, message.as_ptr(), message.len()) };
        std::process::abort();
    }
}

extern "C" {
    #[link_name = "write"]
    fn libc_write(fd: i32, buf: *const u8, count: usize) -> isize;
}

/// GPT-2's merging in its plainest form: while some adjacent pair has a
/// merge, replace the pair of lowest rank (the leftmost among equals) by
/// its result.
pub struct ReferenceMerges {
    /// (left, right) -> (rank, result).
    ranks: HashMap<(u32, u32), (usize, u32)>,
    byte_ids: Vec<u32>,
}

impl ReferenceMerges {
    pub fn new(vocab: &Vocab) -> Self {
        let ranks = vocab
            .merges()
            .iter()
            .enumerate()
            .map(|(rank, &(left, right, result))| ((left, right), (rank, result)))
            .collect();
        let byte_ids = (0..=255u8).map(|b| vocab.byte_id(b)).collect();
        ReferenceMerges { ranks, byte_ids }
    }

    pub fn merge(&self, piece: &[u8]) -> Vec<u32> {
        let mut symbols: Vec<u32> = piece.iter().map(|&b| self.byte_ids[b as usize]).collect();
        loop {
            // Tuples compare by rank first, then by position: leftmost wins.
            let best = symbols
                .windows(2)
                .enumerate()
                .filter_map(|(i, pair)| {
                    let &(rank, result) = self.ranks.get(&(pair[0], pair[1]))?;
                    Some((rank, i, result))
                })
                .min();
            let Some((_, i, result)) = best else {
                return symbols;
            };
            symbols.splice(i..i + 2, [result]);
        }
    }
}
