//! Token ids as Python lists, from one Python int per vocabulary id made once:
//! a list then costs a reference count and a pointer store per token, where
//! a new int object for every id above 256 cost 27-38 ns a token (10 MB of
//! English and of Korean, GPT-2's vocabulary, one thread: lists took 1.6x and
//! 2.2x the time of the flat NumPy output).

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

    /// A list of lists: the ids of text `i` are `ids[offsets[i]..offsets[i + 1]]`.
    pub(super) fn lists<'py>(
        &self,
        py: Python<'py>,
        ids: &[u32],
        offsets: &[u64],
        size: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let ints = self.ints(py, size)?;
        let texts = offsets.len().saturating_sub(1);
        let outer = empty_list(py, texts)?;
        for (i, ends) in offsets.windows(2).enumerate() {
            let inner = new_list(py, &ids[ends[0] as usize..ends[1] as usize], ints)?;
            set_item(&outer, i, inner.into_any().unbind());
        }
        Ok(outer)
    }
}

fn new_list<'py>(py: Python<'py>, ids: &[u32], ints: &[Py<PyAny>]) -> PyResult<Bound<'py, PyList>> {
    let list = empty_list(py, ids.len())?;
    for (i, &id) in ids.iter().enumerate() {
        let int = match ints.get(id as usize) {
            Some(int) => int.clone_ref(py),
            None => id.into_pyobject(py)?.into_any().unbind(),
        };
        set_item(&list, i, int);
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
/// PyList_SetItem takes the reference and cannot fail).
fn set_item(list: &Bound<'_, PyList>, index: usize, item: Py<PyAny>) {
    // SAFETY: `index` is below the list's length, and the slot is still empty.
    unsafe {
        ffi::PyList_SetItem(list.as_ptr(), index as ffi::Py_ssize_t, item.into_ptr());
    }
}
