//! Token ids as Python lists, from one Python int per vocabulary id made once:
//! a list then costs a reference count and a pointer store per token, where
//! a new int object for every id above 256 cost 27-38 ns a token (10 MB of
//! English and of Korean, GPT-2's vocabulary, one thread: lists took 1.6x and
//! 2.2x the time of the flat NumPy output). The lists are not tracked by the
//! cyclic garbage collector (see `new_list`).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyList;

#[derive(Default)]
pub(super) struct IdObjects {
    ints: PyOnceLock<Vec<Py<PyAny>>>,
}

impl IdObjects {
    /// The ints of ids `0..size`, made on first use.
    fn ints(&self, py: Python<'_>, size: usize) -> PyResult<&[Py<PyAny>]> {
        let ints = self.ints.get_or_try_init(py, || {
            (0..size as u32)
                .map(|id| Ok(id.into_pyobject(py)?.into_any().unbind()))
                .collect::<PyResult<Vec<_>>>()
        })?;
        Ok(ints)
    }

    /// `ids` as a list of ints; `size` is one past the vocabulary's largest id.
    pub(super) fn list<'py>(
        &self,
        py: Python<'py>,
        ids: &[u32],
        size: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        new_list(py, ids, self.ints(py, size)?)
    }

    /// A list for `texts` lists, filled a batch of finished texts at a time.
    pub(super) fn lists<'py, 'a>(
        &'a self,
        py: Python<'py>,
        texts: usize,
        size: usize,
    ) -> PyResult<Lists<'py, 'a>> {
        Ok(Lists {
            ints: self.ints(py, size)?,
            outer: empty_list(py, texts)?,
            filled: 0,
        })
    }
}

/// A list of lists being filled in order (slots not yet filled are empty).
pub(super) struct Lists<'py, 'a> {
    ints: &'a [Py<PyAny>],
    outer: Bound<'py, PyList>,
    filled: usize,
}

impl<'py> Lists<'py, '_> {
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
            let list = new_list(py, &ids[start..end], self.ints)?;
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

fn new_list<'py>(py: Python<'py>, ids: &[u32], ints: &[Py<PyAny>]) -> PyResult<Bound<'py, PyList>> {
    let list = empty_list(py, ids.len())?;
    if ids.is_empty() {
        return Ok(list);
    }
    // A list of ints cannot be part of a reference cycle, so the cyclic
    // garbage collector is told not to look at it (as CPython itself leaves
    // tuples and dicts of atomic values alone). Otherwise every collection
    // while the lists live walks every id in them: 20 MB of English as
    // lists made one thread's encode_batch 1.23x slower (collections every
    // 700 new lists), and each full collection 36 ms instead of 2.6 ms for as
    // long as the caller keeps them.
    // SAFETY: `list` is a live list; untracking only skips it in collections.
    unsafe { ffi::PyObject_GC_UnTrack(list.as_ptr().cast()) };
    // The slots are written directly, as CPython's PyList_SET_ITEM does:
    // with the reference count raised inline, a token costs an increment
    // and a store (calls to Py_IncRef and PyList_SetItem under the stable
    // ABI made lists 1.17x slower on English, 1.09x on Korean).
    // SAFETY: a new list of `ids.len()` slots, all still empty (null).
    let slots = unsafe {
        let items = (*list.as_ptr().cast::<ffi::PyListObject>()).ob_item;
        std::slice::from_raw_parts_mut(items, ids.len())
    };
    for (slot, &id) in slots.iter_mut().zip(ids) {
        *slot = match ints.get(id as usize) {
            Some(int) => int.clone_ref(py).into_ptr(),
            None => id.into_pyobject(py)?.into_ptr(),
        };
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

/// Fills slot `index` of a list made by `empty_list` (in bounds, and empty:
/// the list takes the reference).
fn set_item(list: &Bound<'_, PyList>, index: usize, item: Py<PyAny>) {
    // SAFETY: `index` is below the list's length, and the slot is still empty.
    unsafe {
        ffi::PyList_SET_ITEM(list.as_ptr(), index as ffi::Py_ssize_t, item.into_ptr());
    }
}
