//! Python strings as UTF-8 for the encoder, without the copy that
//! `PyUnicode_AsUTF8AndSize` would leave inside every non-ASCII string for
//! as long as the caller keeps it (fresh memory each time, whose first touch
//! costs more than the conversion).
//!
//! An ASCII string's own buffer is already UTF-8 and is borrowed, and so is
//! CPython's UTF-8 of a short string (cheap to make and keep). A string
//! mostly of ASCII is encoded by CPython into a temporary bytes object,
//! which copies runs of ASCII quickly. Any other string is widened by
//! CPython to code points and written as UTF-8 by [`crate::code_points`],
//! about 2.5 times faster than CPython on Korean.

use crate::code_points::{is_surrogate, write_utf8};
use pyo3::exceptions::PyUnicodeEncodeError;
use pyo3::ffi::Py_UCS4;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use pyo3::{ffi, intern};

/// Strings of fewer characters take CPython's UTF-8, which it keeps.
const SHORT: usize = 128;

/// A string's UTF-8: its own buffer (or CPython's copy kept in it), or one
/// that lasts only while it is used.
pub enum Utf8<'text, 'converter> {
    Borrowed(&'text str),
    Converted(&'converter str),
}

/// Converts strings one after another, reusing its buffers.
#[derive(Default)]
pub struct Utf8Converter {
    code_points: Vec<u32>,
    utf8: Vec<u8>,
}

impl Utf8Converter {
    /// Calls `use_utf8` with the UTF-8 of `text`. A lone surrogate raises
    /// `UnicodeEncodeError`, as CPython's conversion does.
    ///
    /// Only CPython's own view of the string is trusted: a `str` subclass may
    /// say anything through `__len__` or `isascii`, so its length is asked of
    /// the string object itself and subclasses take CPython's conversion.
    pub fn with_utf8<'t, R>(
        &mut self,
        text: &'t Bound<'_, PyString>,
        use_utf8: impl FnOnce(Utf8<'t, '_>) -> R,
    ) -> PyResult<R> {
        let chars = char_count(text)?;
        // A short string's copy costs CPython little (its small-object
        // allocator reuses memory), less than asking it about the string.
        if chars < SHORT || !text.is_exact_instance_of::<PyString>() || is_ascii(text)? {
            return Ok(use_utf8(Utf8::Borrowed(text.to_str()?)));
        }
        if mostly_ascii(text, chars)? {
            let bytes: Bound<'_, PyBytes> = text.encode_utf8()?;
            // SAFETY: CPython's UTF-8 encoder writes only valid UTF-8: on a
            // surrogate it raises instead.
            let utf8 = unsafe { std::str::from_utf8_unchecked(bytes.as_bytes()) };
            return Ok(use_utf8(Utf8::Converted(utf8)));
        }
        self.code_points.clear();
        self.code_points.reserve(chars);
        // SAFETY: the buffer has room for `chars` code points, the string's
        // real length, which is all CPython writes when asked not to add a
        // terminating zero.
        let written = unsafe {
            ffi::PyUnicode_AsUCS4(
                text.as_ptr(),
                self.code_points.as_mut_ptr(),
                chars as ffi::Py_ssize_t,
                0,
            )
        };
        if written.is_null() {
            return Err(PyErr::fetch(text.py()));
        }
        // SAFETY: CPython wrote `chars` code points above (it raises
        // rather than write fewer than the string's length).
        unsafe { self.code_points.set_len(chars) };
        let Some(len) = write_utf8(&self.code_points, &mut self.utf8) else {
            let at = (self.code_points.iter())
                .position(|&c| is_surrogate(c))
                .unwrap_or_default();
            return Err(PyErr::new::<PyUnicodeEncodeError, _>((
                "utf-8",
                text.clone().unbind(),
                at,
                at + 1,
                "surrogates not allowed",
            )));
        };
        // SAFETY: `write_utf8` wrote the standard UTF-8 form of each code
        // point, every one a Unicode scalar value (surrogates were refused
        // above; Python has none above U+10FFFF).
        let utf8 = unsafe { std::str::from_utf8_unchecked(&self.utf8[..len]) };
        Ok(use_utf8(Utf8::Converted(utf8)))
    }
}

/// The number of code points in `text`, from the string object itself
/// (`len()` would call a subclass's `__len__`).
pub fn char_count(text: &Bound<'_, PyString>) -> PyResult<usize> {
    // SAFETY: `text` is a live str (or subclass) object, as the call requires.
    let length = unsafe { ffi::PyUnicode_GetLength(text.as_ptr()) };
    usize::try_from(length).map_err(|_| PyErr::fetch(text.py()))
}

/// Whether an exact `str` is ASCII (a subclass could override `isascii`).
fn is_ascii(text: &Bound<'_, PyString>) -> PyResult<bool> {
    text.call_method0(intern!(text.py(), "isascii"))?
        .is_truthy()
}

/// Whether at least three in four of sixteen characters spread over `text`
/// are ASCII; `chars` is its real length.
fn mostly_ascii(text: &Bound<'_, PyString>, chars: usize) -> PyResult<bool> {
    const SAMPLES: usize = 16;
    let mut ascii = 0;
    for i in 0..SAMPLES {
        let at = (i * chars / SAMPLES) as ffi::Py_ssize_t;
        // SAFETY: `text` is a live str object; a failed read returns
        // (Py_UCS4)-1 with an exception set, taken below.
        let c = unsafe { ffi::PyUnicode_ReadChar(text.as_ptr(), at) };
        if c == Py_UCS4::MAX {
            return Err(PyErr::fetch(text.py()));
        }
        ascii += usize::from(c < 0x80);
    }
    Ok(4 * ascii >= 3 * SAMPLES)
}
