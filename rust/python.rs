//! The Python face of the core (`bbpe._core`): a thin layer that converts
//! arguments, releases the GIL around the work, and maps errors. The public
//! API lives in `python/bbpe/`. One file per face: the tokenizer, training,
//! shards; `progress.rs` reports to Python and watches for Ctrl-C.

use crate::corpus::{expand_inputs, ReadOptions};
use crate::error::Error;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::path::PathBuf;

mod id_lists;
mod progress;
mod shards;
mod tokenizer;
mod training;
mod utf8;

fn to_py(error: Error) -> PyErr {
    match error {
        Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(error.to_string())
        }
        Error::Io { .. } => PyOSError::new_err(error.to_string()),
        Error::Internal(_) => PyRuntimeError::new_err(error.to_string()),
        _ => PyValueError::new_err(error.to_string()),
    }
}

/// How to read corpus files, checked once when made (see `bbpe.train` and
/// `bbpe.shards.write`).
#[pyclass(module = "bbpe._core", name = "ReadOptions", frozen)]
struct PyReadOptions {
    options: ReadOptions,
}

#[pymethods]
impl PyReadOptions {
    #[new]
    #[pyo3(signature = (format="auto", text_field="text", on_bad_input="stop"))]
    fn new(format: &str, text_field: &str, on_bad_input: &str) -> PyResult<Self> {
        let options = ReadOptions::parse(format, text_field, on_bad_input).map_err(to_py)?;
        Ok(PyReadOptions { options })
    }
}

/// Corpus files as the core reads them: globs and directories expanded.
fn corpus_files(inputs: &[String]) -> PyResult<Vec<PathBuf>> {
    expand_inputs(inputs).map_err(to_py)
}

/// The files the core reads for `inputs`, in order (for splitting a corpus
/// among ranks exactly as a single run would read it).
#[pyfunction(name = "expand_inputs")]
fn py_expand_inputs(inputs: Vec<String>) -> PyResult<Vec<PathBuf>> {
    corpus_files(&inputs)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Defaults said once, here, for the Python package too.
    m.add(
        "ROBERTA_SPECIALS",
        crate::formats::ROBERTA_SPECIALS.to_vec(),
    )?;
    m.add("GPT2_SPECIALS", crate::formats::GPT2_SPECIALS.to_vec())?;
    m.add("DEFAULT_VOCAB_SIZE", crate::train::DEFAULT_VOCAB_SIZE)?;
    m.add(
        "DEFAULT_MAX_TOKEN_LENGTH",
        crate::train::DEFAULT_MAX_TOKEN_LENGTH,
    )?;
    // tiktoken's spelling of GPT-2's pattern, which the core's scanner runs.
    m.add("GPT2_PATTERN_R50K", crate::pretokenize::GPT2_PATTERN_R50K)?;
    m.add_class::<tokenizer::CoreTokenizer>()?;
    m.add_class::<PyReadOptions>()?;
    m.add_class::<training::PyTrainSettings>()?;
    m.add_class::<shards::PyShardSettings>()?;
    m.add_function(wrap_pyfunction!(training::train_files, m)?)?;
    m.add_function(wrap_pyfunction!(training::train_texts, m)?)?;
    m.add_class::<training::PyCountSettings>()?;
    m.add_function(wrap_pyfunction!(training::train_counts, m)?)?;
    m.add_function(wrap_pyfunction!(training::count_files_to_table, m)?)?;
    m.add_function(wrap_pyfunction!(training::count_texts_to_table, m)?)?;
    m.add_function(wrap_pyfunction!(training::merge_count_tables, m)?)?;
    m.add_function(wrap_pyfunction!(training::inspect_count_table, m)?)?;
    m.add_function(wrap_pyfunction!(shards::encode_shards, m)?)?;
    m.add_function(wrap_pyfunction!(shards::count_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(py_expand_inputs, m)?)?;
    Ok(())
}
