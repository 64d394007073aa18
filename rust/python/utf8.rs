//! Python strings as UTF-8 for the encoder, without the copy that
//! `PyUnicode_AsUTF8AndSize` would leave inside every non-ASCII string for
//! as long as the caller keeps it (fresh memory each time, whose first touch
//! costs more than the conversion).
//!
//! An ASCII string's own buffer is already UTF-8 and is borrowed, and so is
//! CPython's UTF-8 of a short string (cheap to make and keep). Any other
//! string is read where CPython keeps it, one, two or four bytes per code
//! point, and written as UTF-8 by [`crate::code_points`]: sixteen ASCII
//! characters at a time, which CPython's own encoder of two-byte strings
//! (English with a curly quote, say) does one by one, and 2.5 times faster
//! than CPython on Korean.

use crate::code_points::{is_surrogate, write_utf8, CodeUnit};
use pyo3::exceptions::PyUnicodeEncodeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// Strings of fewer characters take CPython's UTF-8, which it keeps.
const SHORT: usize = 128;

/// A string's UTF-8: its own buffer (or CPython's copy kept in it), or one
/// that lasts only while it is used.
pub enum Utf8<'text, 'converter> {
    Borrowed(&'text str),
    Converted(&'converter str),
}

/// Converts strings one after another, reusing its buffer.
#[derive(Default)]
pub struct Utf8Converter {
    utf8: Vec<u8>,
}

impl Utf8Converter {
    /// Calls `use_utf8` with the UTF-8 of `text`. A lone surrogate raises
    /// `UnicodeEncodeError`, as CPython's conversion does.
    ///
    /// Only CPython's own view of the string is trusted: a `str` subclass
    /// may say anything through `__len__`, so its length is asked of the
    /// string object itself, and subclasses take CPython's conversion.
    pub fn with_utf8<'t, R>(
        &mut self,
        text: &'t Bound<'_, PyString>,
        use_utf8: impl FnOnce(Utf8<'t, '_>) -> R,
    ) -> PyResult<R> {
        let chars = char_count(text)?;
        // A short string's copy costs CPython little (its small-object
        // allocator reuses memory), less than converting it here.
        if chars < SHORT || !text.is_exact_instance_of::<PyString>() {
            return Ok(use_utf8(Utf8::Borrowed(text.to_str()?)));
        }
        let ptr = text.as_ptr();
        // SAFETY: `text` is a live, exact str; made ready (before 3.12 a
        // string may not be), its kind says how its `chars` code points are
        // stored at its data pointer, where they stay while it lives.
        let written = unsafe {
            if ffi::PyUnicode_READY(ptr) != 0 {
                return Err(PyErr::fetch(text.py()));
            }
            if ffi::PyUnicode_IS_ASCII(ptr) != 0 {
                return Ok(use_utf8(Utf8::Borrowed(text.to_str()?)));
            }
            let data = ffi::PyUnicode_DATA(ptr);
            match ffi::PyUnicode_KIND(ptr) {
                ffi::PyUnicode_1BYTE_KIND => self.convert(text, data.cast::<u8>(), chars)?,
                ffi::PyUnicode_2BYTE_KIND => self.convert(text, data.cast::<u16>(), chars)?,
                _ => self.convert(text, data.cast::<u32>(), chars)?,
            }
        };
        Ok(use_utf8(Utf8::Converted(written)))
    }

    /// The UTF-8 of the `chars` code points at `data`, those of `text`.
    ///
    /// # Safety
    /// `data` must hold `chars` code points, valid while `text` lives.
    unsafe fn convert<U: CodeUnit>(
        &mut self,
        text: &Bound<'_, PyString>,
        data: *const U,
        chars: usize,
    ) -> PyResult<&str> {
        // SAFETY: the caller's.
        let code_points = unsafe { std::slice::from_raw_parts(data, chars) };
        let Some(len) = write_utf8(code_points, &mut self.utf8) else {
            let at = (code_points.iter())
                .position(|&c| is_surrogate(c.into()))
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
        Ok(unsafe { std::str::from_utf8_unchecked(&self.utf8[..len]) })
    }
}

/// The number of code points in `text`, from the string object itself
/// (`len()` would call a subclass's `__len__`).
pub fn char_count(text: &Bound<'_, PyString>) -> PyResult<usize> {
    // SAFETY: `text` is a live str (or subclass) object, as the call requires.
    let length = unsafe { ffi::PyUnicode_GetLength(text.as_ptr()) };
    usize::try_from(length).map_err(|_| PyErr::fetch(text.py()))
}
