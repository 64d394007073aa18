//! Asking Linux to back large buffers with 2 MB pages. Each page a thread
//! touches first costs a fault; with 2 MB pages a buffer of hundreds of
//! megabytes takes a few hundred faults instead of tens of thousands, and a
//! randomly probed table needs far fewer TLB entries. Only a hint: elsewhere,
//! or if the kernel declines, nothing changes.

use allocator_api2::alloc::{AllocError, Allocator, Global, Layout};
use std::ptr::NonNull;

pub(crate) const HUGE: usize = 2 << 20;

/// Hints that the whole 2 MB pages inside `[start, start + bytes)` be huge.
pub(crate) fn advise(start: *mut u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        let start = start as usize;
        let end = start + bytes;
        let aligned = start.next_multiple_of(HUGE);
        if end >= aligned + HUGE {
            // SAFETY: the range lies inside an allocation the caller owns;
            // MADV_HUGEPAGE changes only how the kernel backs it.
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
    let _ = (start, bytes);
}

/// The whole capacity of `buffer`, written or not.
pub fn prefer_for_vec(buffer: &mut Vec<u32>) {
    let bytes = buffer.capacity() * std::mem::size_of::<u32>();
    advise(buffer.as_mut_ptr().cast(), bytes);
}

/// The global allocator, hinting huge pages for blocks of several megabytes
/// (the word cache's tables).
#[derive(Clone, Copy, Debug, Default)]
pub struct HugePageAllocator;

// SAFETY: every call is passed on to the global allocator unchanged; the
// hint does not touch the memory's contents.
unsafe impl Allocator for HugePageAllocator {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let block = Global.allocate(layout)?;
        if layout.size() >= 2 * HUGE {
            advise(block.as_ptr().cast(), layout.size());
        }
        Ok(block)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: `ptr` came from `allocate` above, that is from `Global`.
        unsafe { Global.deallocate(ptr, layout) }
    }
}
