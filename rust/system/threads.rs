//! The process's worker threads: a rayon pool per thread count in use, never
//! rayon's global pool, for three reasons.
//!
//! - A forked child (a `multiprocessing` or DataLoader worker, `datasets.map`)
//!   inherits the parent's pool without its threads: work handed to it waits
//!   forever. The global pool cannot be rebuilt, these are, on the first use
//!   after the process id changed.
//! - No thread is started before work needs one, so a process that only loads
//!   a tokenizer and forks has none to lose.
//! - The number of pools and threads is bounded: at most two pools (all cores,
//!   and the latest other size asked for), of at most [`limit`] threads.
//!
//! A panic on a worker thread reaches the caller as [`Error::Internal`]
//! (see [`catch_panic`]), never as a hang or an unwinding across Python.

use crate::error::Error;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// How many threads this process may run at once (its CPU affinity, cgroup
/// quota or core count): the size of the default pool. Asked once: on Linux
/// the answer reads cgroup files, too slow for every batch.
pub fn available() -> usize {
    static AVAILABLE: OnceLock<usize> = OnceLock::new();
    *AVAILABLE.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The most threads a caller may ask for: four per available core, so a
/// mistyped count fails clearly instead of starting OS threads without end.
pub fn limit() -> usize {
    4 * available()
}

/// The number of threads a caller's `threads` means (0 = [`available`]),
/// or an error if it is above [`limit`].
pub fn resolve(threads: usize) -> Result<usize, Error> {
    match threads {
        0 => Ok(available()),
        n if n <= limit() => Ok(n),
        n => Err(Error::Invalid(format!(
            "threads={n} is more than {} (four per core of the {} this process may use); \
             ask for fewer, or leave threads unset for one per core",
            limit(),
            available()
        ))),
    }
}

/// The pool that runs work on `threads` threads (0 = [`available`]).
pub fn pool(threads: usize) -> Result<Arc<ThreadPool>, Error> {
    let size = resolve(threads)?;
    struct Pools {
        pid: u32,
        pools: Vec<(usize, Arc<ThreadPool>)>,
    }
    static POOLS: Mutex<Pools> = Mutex::new(Pools {
        pid: 0,
        pools: Vec::new(),
    });
    let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    let pid = std::process::id();
    if pools.pid != pid {
        // A forked child (or the first use): the pools' threads live in the
        // parent. Their handles are leaked, not dropped, since dropping one
        // wakes threads through locks that a parent's thread may have held
        // when it forked.
        pools.pools.drain(..).for_each(std::mem::forget);
        pools.pid = pid;
    }
    if let Some((_, pool)) = pools.pools.iter().find(|(n, _)| *n == size) {
        return Ok(pool.clone());
    }
    let pool = ThreadPoolBuilder::new()
        .num_threads(size)
        .thread_name(|i| format!("bbpe-{i}"))
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start {size} threads: {e}")))?;
    let pool = Arc::new(pool);
    // A pool's threads live as long as it is kept (and any call using it).
    pools.pools.retain(|(n, _)| *n == available());
    pools.pools.push((size, pool.clone()));
    Ok(pool)
}

/// Runs `job` inside the pool for `threads` (0 = all cores); a panic in it or
/// on any thread it uses is returned as an error.
pub fn run_with_threads<T: Send>(
    threads: usize,
    job: impl FnOnce() -> T + Send,
) -> Result<T, Error> {
    let pool = pool(threads)?;
    catch_panic(|| pool.install(job))
}

/// Runs `work` on each of `tasks` on `threads` threads (0 = all cores): the
/// caller and the pool of the others that batch encoding uses, so a pipeline
/// that alternates encoding a batch and converting it keeps one set of
/// threads (a pool of `threads` for the conversion kept 2n - 1 threads for
/// n cores). Tasks are taken in order; after an error no more are taken, and
/// the first is returned. A panic in any task is an error, as elsewhere.
pub fn share_tasks<T: Send, E: Send>(
    threads: usize,
    tasks: Vec<T>,
    work: impl Fn(T) -> Result<(), E> + Sync,
) -> Result<Result<(), E>, Error> {
    let pool_size = resolve(threads)? - 1;
    let helpers = pool_size.min(tasks.len().saturating_sub(1));
    let queue = Mutex::new(tasks.into_iter());
    let failed = Mutex::new(None);
    let take_tasks = || loop {
        if failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
        {
            return;
        }
        let Some(task) = queue.lock().unwrap_or_else(PoisonError::into_inner).next() else {
            return;
        };
        if let Err(error) = work(task) {
            failed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(error);
        }
    };
    if helpers == 0 {
        catch_panic(take_tasks)?;
    } else {
        let pool = pool(pool_size)?;
        catch_panic(|| {
            pool.in_place_scope(|scope| {
                for _ in 0..helpers {
                    scope.spawn(|_| take_tasks());
                }
                take_tasks();
            })
        })?;
    }
    let failed = failed.into_inner().unwrap_or_else(PoisonError::into_inner);
    Ok(failed.map_or(Ok(()), Err))
}

/// `job`'s result, or the panic it raised as [`Error::Internal`].
pub fn catch_panic<T>(job: impl FnOnce() -> T) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(job)).map_err(|payload| panicked("a worker", payload))
}

/// The panic that ended `thread` (the payload `join` returns) as
/// [`Error::Internal`], its message kept.
pub fn panicked(thread: &str, payload: Box<dyn Any + Send>) -> Error {
    Error::Internal(format!(
        "{thread} thread failed: {} (a bug in bbpe: please report it)",
        panic_message(payload.as_ref())
    ))
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "no message"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicked_thread_is_an_internal_error_with_its_message() {
        let payload = std::thread::spawn(|| panic!("index 7 out of range"))
            .join()
            .unwrap_err();
        let error = panicked("the writer", payload);
        assert!(matches!(error, Error::Internal(_)));
        assert_eq!(
            error.to_string(),
            "the writer thread failed: index 7 out of range (a bug in bbpe: please report it)"
        );
    }

    #[test]
    fn pools_are_kept_per_size_and_bounded_in_number() {
        let first = pool(3).unwrap();
        assert!(Arc::ptr_eq(&first, &pool(3).unwrap()));
        assert_eq!(first.current_num_threads(), 3);
        assert_eq!(pool(0).unwrap().current_num_threads(), available());
        let _ = pool(5).unwrap();
        // The pool for 3 is no longer kept: asking again builds a new one.
        assert!(!Arc::ptr_eq(&first, &pool(3).unwrap()));
    }

    #[test]
    fn too_many_threads_is_an_error_naming_the_limit() {
        let error = pool(limit() + 1).unwrap_err().to_string();
        assert!(
            error.contains(&format!("threads={}", limit() + 1)),
            "{error}"
        );
        assert!(error.contains(&limit().to_string()), "{error}");
        assert!(pool(usize::MAX).is_err());
    }

    #[test]
    fn a_panic_in_the_pool_is_an_error() {
        let error = run_with_threads(2, || {
            use rayon::prelude::*;
            (0..100)
                .into_par_iter()
                .for_each(|i| assert!(i != 77, "injected at {i}"));
        })
        .unwrap_err();
        assert!(matches!(error, Error::Internal(_)), "{error}");
        assert!(error.to_string().contains("injected at 77"), "{error}");
    }

    #[test]
    fn shared_tasks_each_run_once_on_the_caller_and_the_encoding_pool() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for threads in [1, 2, 3] {
            let runs: Vec<AtomicUsize> = (0..50).map(|_| AtomicUsize::new(0)).collect();
            let caller = std::thread::current().id();
            let on_caller = AtomicUsize::new(0);
            let outcome = share_tasks(threads, (0..50).collect(), |i: usize| -> Result<(), ()> {
                runs[i].fetch_add(1, Ordering::Relaxed);
                if std::thread::current().id() == caller {
                    on_caller.fetch_add(1, Ordering::Relaxed);
                } else {
                    // Helpers are the encoding pool's threads: `threads` - 1 of them.
                    assert_eq!(rayon::current_num_threads(), threads - 1);
                }
                Ok(())
            });
            assert_eq!(outcome.unwrap(), Ok(()));
            assert!(runs.iter().all(|n| n.load(Ordering::Relaxed) == 1));
            if threads == 1 {
                assert_eq!(on_caller.load(Ordering::Relaxed), 50);
            }
        }
    }

    #[test]
    fn a_failed_shared_task_stops_the_rest_and_a_panic_is_an_error() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let ran = AtomicUsize::new(0);
        let outcome = share_tasks(1, (0..100).collect(), |i: u32| {
            ran.fetch_add(1, Ordering::Relaxed);
            if i == 10 {
                Err(format!("task {i} failed"))
            } else {
                Ok(())
            }
        });
        assert_eq!(outcome.unwrap(), Err("task 10 failed".to_string()));
        assert_eq!(ran.load(Ordering::Relaxed), 11);
        let error = share_tasks(2, (0..100).collect(), |i: u32| -> Result<(), ()> {
            assert!(i != 77, "injected at {i}");
            Ok(())
        })
        .unwrap_err();
        assert!(error.to_string().contains("injected at 77"), "{error}");
    }
}
