//! The Python face of the core (`bbpe._core`): a thin layer that converts
//! arguments, releases the GIL around the work, and maps errors. The public
//! API lives in `python/bbpe/`. One file per face: the tokenizer, training,
//! shards; `progress.rs` reports to Python and watches for Ctrl-C.

use crate::corpus::{expand_inputs, ReadOptions};
use crate::error::Error;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::path::PathBuf;

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

/// How to read the corpus, and its files (globs and directories expanded).
fn corpus_files(
    inputs: &[String],
    format: &str,
    text_field: String,
    on_bad_input: &str,
) -> PyResult<(ReadOptions, Vec<PathBuf>)> {
    let options = ReadOptions {
        format: format.parse().map_err(to_py)?,
        text_field,
        on_bad_input: on_bad_input.parse().map_err(to_py)?,
    };
    Ok((options, expand_inputs(inputs).map_err(to_py)?))
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
    m.add_class::<tokenizer::CoreTokenizer>()?;
    m.add_class::<training::PyTrainSettings>()?;
    m.add_class::<shards::PyShardSettings>()?;
    m.add_function(wrap_pyfunction!(training::train_files, m)?)?;
    m.add_function(wrap_pyfunction!(training::train_texts, m)?)?;
    m.add_function(wrap_pyfunction!(shards::encode_shards, m)?)?;
    m.add_function(wrap_pyfunction!(shards::count_tokens, m)?)?;
    Ok(())
}
