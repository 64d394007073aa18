//! The shards face: `bbpe encode -o` and token counts through the pipeline.

use super::progress::Reporter;
use super::tokenizer::CoreTokenizer;
use super::{corpus_files, to_py, PyReadOptions};
use crate::corpus::ReadOptions;
use crate::encode::Encoder;
use crate::error::Error;
use crate::shards::pipeline::{
    count_tokens as pipeline_count_tokens, encode_to_shards, Part, Progress as ShardProgress,
    ShardSettings, Summary as ShardSummary,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

/// Shard settings, checked once when made (see `bbpe.shards.write`); `part`
/// is (rank, world size, SHA-256 of the whole corpus's file list) for one
/// rank of a run split across machines (`bbpe.shards.ranks`).
#[pyclass(module = "bbpe._core", name = "ShardSettings", frozen)]
pub(super) struct PyShardSettings {
    settings: ShardSettings,
}

#[pymethods]
impl PyShardSettings {
    #[new]
    #[pyo3(signature = (prefix, shard_bytes, split_sentences=false, append_eos=false, threads=0, existing="refuse", part=None))]
    fn new(
        prefix: String,
        shard_bytes: u64,
        split_sentences: bool,
        append_eos: bool,
        threads: usize,
        existing: &str,
        part: Option<(u64, u64, String)>,
    ) -> PyResult<Self> {
        let settings = ShardSettings {
            prefix,
            shard_bytes,
            split_sentences,
            append_eos,
            threads,
            existing: existing.parse().map_err(to_py)?,
            part: part.map(|(rank, world_size, corpus_sha256)| Part {
                rank,
                world_size,
                corpus_sha256,
            }),
        };
        Ok(PyShardSettings { settings })
    }
}

/// Reads and encodes corpus files with the shard pipeline (GIL released),
/// passing progress to Python, and returns its summary as a dict.
fn run_pipeline<'py>(
    py: Python<'py>,
    tokenizer: &CoreTokenizer,
    inputs: Vec<String>,
    read: &PyReadOptions,
    progress: Option<Py<PyAny>>,
    job: impl FnOnce(
            &Encoder,
            &[PathBuf],
            &ReadOptions,
            &mut dyn FnMut(&ShardProgress) -> bool,
        ) -> Result<ShardSummary, Error>
        + Send,
) -> PyResult<Bound<'py, PyDict>> {
    let files = corpus_files(&inputs)?;
    let read = &read.options;
    let mut reporter = Reporter::new(progress);
    let encoder = &tokenizer.encoder;
    let outcome = py.detach(|| {
        job(encoder, &files, read, &mut |state: &ShardProgress| {
            let done = (
                state.input_bytes,
                state.text_bytes,
                state.tokens,
                state.documents,
            );
            reporter.report_with("encode", done, Some(state.total_bytes), false)
        })
    });
    reporter.check()?;
    let summary = outcome.map_err(to_py)?;
    let totals = summary.totals();
    let dict = PyDict::new(py);
    let prefixes: Vec<&str> = summary.shards.iter().map(|s| s.prefix.as_str()).collect();
    dict.set_item("shards", prefixes)?;
    dict.set_item("documents", totals.documents)?;
    dict.set_item("sequences", totals.sequences)?;
    dict.set_item("tokens", totals.tokens)?;
    dict.set_item("text_bytes", totals.text_bytes)?;
    dict.set_item("empty_documents", summary.empty_documents)?;
    dict.set_item("resumed_documents", summary.resumed_documents)?;
    // Speeds are of what this run encoded.
    dict.set_item("encoded_text_bytes", summary.text_bytes)?;
    dict.set_item("encoded_tokens", summary.tokens)?;
    dict.set_item("files", summary.read.files)?;
    dict.set_item("skipped", summary.read.skipped)?;
    dict.set_item("first_skipped", summary.read.first_skipped.clone())?;
    dict.set_item("replaced_surrogates", summary.read.replaced_surrogates)?;
    Ok(dict)
}

/// Encodes corpus files into Megatron shards in `out_dir` (see
/// `bbpe.shards.write`); `tokenizer_name` is what the manifest calls it.
#[pyfunction]
#[pyo3(signature = (tokenizer, tokenizer_name, inputs, out_dir, settings, read, progress=None))]
#[allow(clippy::too_many_arguments)]
pub(super) fn encode_shards<'py>(
    py: Python<'py>,
    tokenizer: &CoreTokenizer,
    tokenizer_name: &str,
    inputs: Vec<String>,
    out_dir: PathBuf,
    settings: &PyShardSettings,
    read: &PyReadOptions,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let settings = &settings.settings;
    run_pipeline(
        py,
        tokenizer,
        inputs,
        read,
        progress,
        |encoder, files, read, report| {
            encode_to_shards(
                encoder,
                tokenizer_name,
                files,
                read,
                &out_dir,
                settings,
                report,
            )
        },
    )
}

/// Reads and encodes corpus files, writing nothing: counts and speed.
#[pyfunction]
#[pyo3(signature = (tokenizer, inputs, read, threads=0, progress=None))]
pub(super) fn count_tokens<'py>(
    py: Python<'py>,
    tokenizer: &CoreTokenizer,
    inputs: Vec<String>,
    read: &PyReadOptions,
    threads: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    run_pipeline(
        py,
        tokenizer,
        inputs,
        read,
        progress,
        |encoder, files, read, report| pipeline_count_tokens(encoder, files, read, threads, report),
    )
}
