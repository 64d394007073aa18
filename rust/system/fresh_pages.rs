//! Large zeroed buffers taken straight from the kernel, so that a page costs
//! memory only once something is written to it. `calloc` promises that only
//! for memory it maps afresh: once the process has freed a large block,
//! glibc raises its threshold for mapping and serves the next few megabytes
//! from its heap, clearing every byte. Each encoder thread's caches (4.3 MB,
//! one set per core, made with the tokenizer) would then be written whole
//! before any text: 4.1 MB of resident memory per core, measured.

#[cfg(target_os = "linux")]
use super::huge_pages::{advise, HUGE};
use allocator_api2::alloc::{AllocError, Allocator, Global, Layout};
use std::ptr::NonNull;

/// Blocks at least this large, on Linux, are mapped for themselves.
#[cfg(target_os = "linux")]
const MAPPED: usize = 64 << 10;
#[cfg(target_os = "linux")]
const PAGE: usize = 4096;

/// Whether `layout`'s block is mapped for itself: decided from the layout
/// alone, so that freeing a block takes the path that allocated it.
#[cfg(target_os = "linux")]
fn mapped(layout: Layout) -> bool {
    layout.size() >= MAPPED && layout.align() <= PAGE
}

/// A private anonymous mapping of `size` bytes, on a 2 MB boundary when it
/// holds whole 2 MB pages, which the kernel is then asked to use: the first
/// write to each costs one fault instead of 512.
#[cfg(target_os = "linux")]
fn map_aligned(size: usize) -> Option<NonNull<u8>> {
    let size = size.next_multiple_of(PAGE);
    let align = if size >= HUGE { HUGE } else { PAGE };
    // Mapped with room to move to the boundary; the rest is unmapped.
    let length = size + align - PAGE;
    // SAFETY: a fresh private anonymous mapping; no existing memory is named.
    let block = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            length,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if block == libc::MAP_FAILED {
        return None;
    }
    let start = block as usize;
    let aligned = start.next_multiple_of(align);
    let (head, tail) = (aligned - start, start + length - (aligned + size));
    // SAFETY: the head and tail lie inside the mapping just made and
    // outside the block handed out.
    unsafe {
        if head > 0 {
            libc::munmap(block, head);
        }
        if tail > 0 {
            libc::munmap((aligned + size) as *mut libc::c_void, tail);
        }
    }
    advise(aligned as *mut u8, size);
    NonNull::new(aligned as *mut u8)
}

/// A block for `layout` from [`map_aligned`].
#[cfg(target_os = "linux")]
fn map(layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
    let block = map_aligned(layout.size()).ok_or(AllocError)?;
    Ok(NonNull::slice_from_raw_parts(block, layout.size()))
}

/// Blocks of 64 KB or more as anonymous mappings on Linux (zeroed, and
/// untouched until used); everything else, and every block elsewhere, from
/// the global allocator.
#[derive(Clone, Copy, Debug, Default)]
pub struct FreshPages;

// SAFETY: a mapped block is page-aligned (at least the layout's alignment,
// checked by `mapped`), of the layout's size, valid until `deallocate`
// unmaps it; other blocks are the global allocator's.
unsafe impl Allocator for FreshPages {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        #[cfg(target_os = "linux")]
        if mapped(layout) {
            return map(layout);
        }
        Global.allocate(layout)
    }

    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        #[cfg(target_os = "linux")]
        if mapped(layout) {
            // An anonymous mapping is zeroed memory.
            return map(layout);
        }
        Global.allocate_zeroed(layout)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        #[cfg(target_os = "linux")]
        if mapped(layout) {
            // SAFETY: `ptr` is a mapping of `layout.size()` bytes made above.
            unsafe { libc::munmap(ptr.as_ptr().cast(), layout.size().next_multiple_of(PAGE)) };
            return;
        }
        // SAFETY: the other blocks came from `Global`.
        unsafe { Global.deallocate(ptr, layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_zeroed_writable_and_freed_where_they_came_from() {
        let sizes = [
            (16, 8),
            (4096, 64),
            (1 << 20, 64),
            (1 << 20, 8192),
            (5 << 20, 64),
            (70_001, 8),
        ];
        for (size, align) in sizes {
            let layout = Layout::from_size_align(size, align).unwrap();
            let block = FreshPages.allocate_zeroed(layout).unwrap();
            let start = block.cast::<u8>().as_ptr();
            assert_eq!(start as usize % align, 0, "{size} aligned to {align}");
            // SAFETY: the block holds `size` bytes, all ours.
            let bytes = unsafe { std::slice::from_raw_parts_mut(start, size) };
            assert!(bytes.iter().all(|&b| b == 0), "{size} bytes zeroed");
            bytes.fill(7);
            // SAFETY: allocated above with this layout.
            unsafe { FreshPages.deallocate(block.cast(), layout) };
        }
    }

    /// Pages of `[start, start + size)` the process holds in memory.
    #[cfg(target_os = "linux")]
    fn resident_pages(start: *mut u8, size: usize) -> usize {
        let mut flags = vec![0u8; size.div_ceil(PAGE)];
        // SAFETY: the range is one mapping of ours; `flags` has a byte per page.
        let done = unsafe { libc::mincore(start.cast(), size, flags.as_mut_ptr()) };
        assert_eq!(done, 0);
        flags.iter().filter(|&&f| f & 1 == 1).count()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_block_costs_memory_only_where_written() {
        let layout = Layout::from_size_align(4 << 20, 64).unwrap();
        let block = FreshPages.allocate_zeroed(layout).unwrap().cast::<u8>();
        let start = block.as_ptr();
        assert_eq!(start as usize % HUGE, 0, "on a 2 MB boundary");
        assert_eq!(resident_pages(start, layout.size()), 0);
        // SAFETY: inside the block.
        unsafe { start.add(3 << 20).write(1) };
        let held = resident_pages(start, layout.size());
        // One 4 KB page, or one 2 MB page where the kernel grants them.
        assert!(held == 1 || held == HUGE / PAGE, "{held} pages");
        // SAFETY: allocated above with this layout.
        unsafe { FreshPages.deallocate(block, layout) };
    }
}
