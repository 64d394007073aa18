//! Text queued between threads, bounded in bytes: a producer waits for room
//! before it queues more, and the consumer makes room as it takes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

/// The text a producer has queued, and a wait for room under its budget.
#[derive(Default)]
pub(super) struct Queued {
    bytes: Mutex<usize>,
    drained: Condvar,
}

impl Queued {
    /// Waits until `size` more bytes fit in `budget` (at once when nothing is
    /// queued, so a document larger than the budget still passes) or reading
    /// stops, then counts them.
    pub(super) fn reserve(&self, size: usize, budget: usize, stop: &AtomicBool) {
        let mut bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        while *bytes > 0 && *bytes + size > budget && !stop.load(Ordering::Relaxed) {
            bytes = self
                .drained
                .wait(bytes)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *bytes += size;
    }

    pub(super) fn release(&self, size: usize) {
        let mut bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        *bytes = bytes.saturating_sub(size);
        self.drained.notify_all();
    }

    /// Wakes a producer waiting for room, to see that reading stopped.
    pub(super) fn wake(&self) {
        let _bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        self.drained.notify_all();
    }
}
