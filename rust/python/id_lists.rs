//! Token ids as Python lists, from one Python int per vocabulary id made once
//! for the whole process: a list then costs a pointer store per token, where a
//! new int object for every id above 256 cost 27-38 ns a token (10 MB of
//! English and of Korean, GPT-2's vocabulary, one thread: lists took 1.6x and
//! 2.2x the time of the flat NumPy output). The lists are not tracked by the
//! cyclic garbage collector (see `new_list`).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::{Mutex, PoisonError};

/// Whether the shared ints are made permanent (see [`make_permanent`]), so
/// that lists hold them without raising their reference counts (`build.rs`
/// says on which interpreters).
const PERMANENT: bool = cfg!(permanent_ints);

/// A Python int that lives as long as the process.
#[derive(Clone, Copy)]
struct SharedInt(NonNull<ffi::PyObject>);

// SAFETY: the ints are immutable and never freed; their reference counts are
// only changed with the GIL held, by CPython or by `new_list`.
unsafe impl Send for SharedInt {}
unsafe impl Sync for SharedInt {}

/// Every table of shared ints made so far is kept (a tokenizer may still read
/// an older, shorter one); this is the longest.
static SHARED_INTS: Mutex<&[SharedInt]> = Mutex::new(&[]);

/// The ints of ids `0..size`, the same objects for every tokenizer of the
/// process, made on first use.
fn shared_ints(py: Python<'_>, size: usize) -> PyResult<&'static [SharedInt]> {
    let mut table = SHARED_INTS.lock().unwrap_or_else(PoisonError::into_inner);
    if table.len() < size {
        let mut ints = table.to_vec();
        ints.reserve_exact(size - table.len());
        for id in table.len()..size {
            // The table's reference, never given back.
            let int = (id as u64).into_pyobject(py)?.into_any().into_ptr();
            // SAFETY: `int` is a live int this thread holds with the GIL.
            unsafe { make_permanent(int) };
            ints.push(SharedInt(NonNull::new(int).expect("a new int")));
        }
        *table = Box::leak(ints.into_boxed_slice());
    }
    Ok(*table)
}

/// Gives `int` a reference count that no number of releases brings to zero,
/// so that lists can hold it without raising the count: writing a token's
/// slot is then a store, where raising the count of the token's int (a
/// cache miss for the rarer ids) made lists 1.07-1.12x slower (one thread,
/// 20 MB of each corpus). From CPython 3.12 the count is the one CPython
/// gives its own immortal objects (PEP 683), which no increment or release
/// changes; before 3.12, 2^62, which releases alone would take centuries to
/// use up.
///
/// # Safety
/// `int` must be a live object, with the GIL held.
#[cfg(permanent_ints)]
unsafe fn make_permanent(int: *mut ffi::PyObject) {
    #[cfg(Py_3_12)]
    {
        let count = &mut (*int).ob_refcnt.ob_refcnt;
        // Already immortal (a small int): its count stays as CPython set it.
        if (*count as i32) >= 0 {
            *count = u32::MAX as ffi::Py_ssize_t;
        }
    }
    #[cfg(not(Py_3_12))]
    {
        (*int).ob_refcnt = 1 << 62;
    }
}

#[cfg(not(permanent_ints))]
unsafe fn make_permanent(_int: *mut ffi::PyObject) {}

#[derive(Default)]
pub(super) struct IdObjects {
    ints: std::sync::OnceLock<&'static [SharedInt]>,
}

impl IdObjects {
    /// The ints of ids `0..size`, looked up on first use.
    fn ints(&self, py: Python<'_>, size: usize) -> PyResult<&'static [SharedInt]> {
        if let Some(ints) = self.ints.get() {
            return Ok(ints);
        }
        let ints = shared_ints(py, size)?;
        Ok(self.ints.get_or_init(|| ints))
    }

    /// `ids` as a list of ints, between the two ids of `around` if given
    /// (RoBERTa's `<s>` and `</s>`); `size` is one past the vocabulary's
    /// largest id.
    pub(super) fn list<'py>(
        &self,
        py: Python<'py>,
        ids: &[u32],
        around: Option<[u32; 2]>,
        size: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        new_list(py, ids, around, self.ints(py, size)?)
    }

    /// A list for `texts` lists, filled a batch of finished texts at a time,
    /// each between the two ids of `around` if given.
    pub(super) fn lists<'py>(
        &self,
        py: Python<'py>,
        texts: usize,
        around: Option<[u32; 2]>,
        size: usize,
    ) -> PyResult<Lists<'py>> {
        Ok(Lists {
            ints: self.ints(py, size)?,
            around,
            outer: empty_list(py, texts)?,
            filled: 0,
        })
    }
}

/// A list of lists being filled in order (slots not yet filled are empty).
pub(super) struct Lists<'py> {
    ints: &'static [SharedInt],
    around: Option<[u32; 2]>,
    outer: Bound<'py, PyList>,
    filled: usize,
}

impl<'py> Lists<'py> {
    /// Makes the lists of the texts that end at `ends` (positions in `ids`),
    /// and leaves in `ids` only the ids after the last of them.
    pub(super) fn add_finished(
        &mut self,
        ids: &mut Vec<u32>,
        ends: &mut Vec<usize>,
    ) -> PyResult<()> {
        let py = self.outer.py();
        let mut start = 0;
        for &end in ends.iter() {
            let list = new_list(py, &ids[start..end], self.around, self.ints)?;
            set_item(&self.outer, self.filled, list.into_any().unbind());
            self.filled += 1;
            start = end;
        }
        ids.drain(..start);
        ends.clear();
        Ok(())
    }

    pub(super) fn finish(self) -> Bound<'py, PyList> {
        debug_assert_eq!(self.filled, self.outer.len());
        self.outer
    }
}

fn new_list<'py>(
    py: Python<'py>,
    ids: &[u32],
    around: Option<[u32; 2]>,
    ints: &[SharedInt],
) -> PyResult<Bound<'py, PyList>> {
    let len = ids.len() + if around.is_some() { 2 } else { 0 };
    // A list of ints cannot be part of a reference cycle, so the cyclic
    // garbage collector is told not to look at it (as CPython itself leaves
    // tuples and dicts of atomic values alone). Otherwise every collection
    // while the lists live walks every id in them: 20 MB of English as
    // lists made one thread's encode_batch 1.23x slower (collections every
    // 700 new lists), and each full collection 36 ms instead of 2.6 ms for as
    // long as the caller keeps them.
    let list = untracked_list_to_fill(py, len)?;
    if len == 0 {
        return Ok(list);
    }
    // The slots are written directly, as CPython's PyList_SET_ITEM does
    // (calls to PyList_SetItem and Py_IncRef under the stable ABI made lists
    // 1.07-1.18x slower).
    // SAFETY: a new list of `len` slots, not yet written.
    let slots = unsafe {
        let items = (*list.as_ptr().cast::<ffi::PyListObject>()).ob_item;
        std::slice::from_raw_parts_mut(items.cast::<MaybeUninit<*mut ffi::PyObject>>(), len)
    };
    let int = |id: u32| -> *mut ffi::PyObject {
        match ints.get(id as usize) {
            Some(int) => {
                if !PERMANENT {
                    // SAFETY: a live int, with the GIL held.
                    unsafe { ffi::Py_INCREF(int.0.as_ptr()) };
                }
                int.0.as_ptr()
            }
            None => {
                let Ok(int) = id.into_pyobject(py);
                int.into_ptr()
            }
        }
    };
    let middle = match around {
        Some([first, last]) => {
            slots[0].write(int(first));
            slots[len - 1].write(int(last));
            &mut slots[1..len - 1]
        }
        None => slots,
    };
    for (slot, &id) in middle.iter_mut().zip(ids) {
        slot.write(int(id));
    }
    Ok(list)
}

/// A list of `len` empty slots, each to be filled once by `set_item`.
fn empty_list(py: Python<'_>, len: usize) -> PyResult<Bound<'_, PyList>> {
    // SAFETY: PyList_New returns a new reference or null with an exception set.
    unsafe {
        let list = ffi::PyList_New(len as ffi::Py_ssize_t);
        Ok(Bound::from_owned_ptr_or_err(py, list)?.cast_into_unchecked())
    }
}

/// A list of `len` slots that the cyclic garbage collector does not track,
/// each to be written once by the caller: their contents are undefined
/// until then, so the caller writes every one, allocating nothing else
/// meanwhile. `PyList_New` zeroes the slots that the caller then writes
/// over: that memset was 4% of Korean lists' time (8 bytes a token), so
/// where the list's layout was checked (`build.rs`) a list of none is given
/// slots from `PyMem_Malloc`, which `list_dealloc` frees with `PyMem_Free`.
fn untracked_list_to_fill(py: Python<'_>, len: usize) -> PyResult<Bound<'_, PyList>> {
    let own_slots = cfg!(list_slots_from_pymem) && len > 0;
    // SAFETY: PyList_New returns a new reference or null with an exception
    // set; untracking a live list only skips it in collections.
    let list: Bound<'_, PyList> = unsafe {
        let list = ffi::PyList_New(if own_slots { 0 } else { len as ffi::Py_ssize_t });
        let list = Bound::from_owned_ptr_or_err(py, list)?.cast_into_unchecked();
        ffi::PyObject_GC_UnTrack(list.as_ptr().cast());
        list
    };
    if !own_slots {
        return Ok(list);
    }
    let bytes = len * std::mem::size_of::<*mut ffi::PyObject>();
    // SAFETY: the list has no items; it is given `len` slots of CPython's
    // own allocator and its size set, as `list_resize` would do.
    unsafe {
        let items = ffi::PyMem_Malloc(bytes).cast::<*mut ffi::PyObject>();
        if items.is_null() {
            return Err(pyo3::exceptions::PyMemoryError::new_err(()));
        }
        let raw = list.as_ptr().cast::<ffi::PyListObject>();
        (*raw).ob_item = items;
        (*raw).allocated = len as ffi::Py_ssize_t;
        (*raw).ob_base.ob_size = len as ffi::Py_ssize_t;
    }
    Ok(list)
}

/// Fills slot `index` of a list made by `empty_list` (in bounds, and empty:
/// the list takes the reference).
fn set_item(list: &Bound<'_, PyList>, index: usize, item: Py<PyAny>) {
    // SAFETY: `index` is below the list's length, and the slot is still empty.
    unsafe {
        ffi::PyList_SET_ITEM(list.as_ptr(), index as ffi::Py_ssize_t, item.into_ptr());
    }
}
