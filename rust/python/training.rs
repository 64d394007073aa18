//! The training face: settings, and training on files or Python strings.

use super::progress::Reporter;
use super::tokenizer::CoreTokenizer;
use super::{corpus_files, to_py, PyReadOptions};
use crate::corpus::total_size;
use crate::corpus::ReadStats;
use crate::encode::Encoder;
use crate::formats::has_roberta_specials;
use crate::train::count_table::{self, CountPart, CountSummary};
use crate::train::word_counts::WordCounts;
use crate::train::{
    count_files, learn_vocab, CountSettings, Holdout, TextCounter, TrainReport, TrainSettings,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use std::path::PathBuf;
use std::time::Instant;

/// Training settings, checked once when made (see `bbpe.train`).
#[pyclass(module = "bbpe._core", name = "TrainSettings", frozen)]
pub(super) struct PyTrainSettings {
    settings: TrainSettings,
}

#[pymethods]
impl PyTrainSettings {
    #[new]
    #[pyo3(signature = (vocab_size, min_frequency, special_tokens, max_token_length=None, pattern=None, max_words=None, threads=0))]
    fn new(
        vocab_size: usize,
        min_frequency: u64,
        special_tokens: Vec<String>,
        max_token_length: Option<usize>,
        pattern: Option<String>,
        max_words: Option<usize>,
        threads: usize,
    ) -> PyResult<Self> {
        let settings = TrainSettings {
            vocab_size,
            min_frequency,
            special_tokens,
            max_token_length,
            pattern,
            max_words,
            threads,
        };
        settings.check().map_err(to_py)?;
        settings.pretokenizer().map_err(to_py)?;
        Ok(PyTrainSettings { settings })
    }
}

/// The settings of counting words alone (see `bbpe.count_words`).
#[pyclass(module = "bbpe._core", name = "CountSettings", frozen)]
pub(super) struct PyCountSettings {
    settings: CountSettings,
}

#[pymethods]
impl PyCountSettings {
    #[new]
    #[pyo3(signature = (pattern=None, max_words=None, threads=0))]
    fn new(pattern: Option<String>, max_words: Option<usize>, threads: usize) -> PyResult<Self> {
        let settings = CountSettings {
            pattern,
            max_words,
            threads,
        };
        settings.check().map_err(to_py)?;
        Ok(PyCountSettings { settings })
    }
}

/// Learns merges from counted words (GIL released) and packs the result.
fn finish_training<'py>(
    py: Python<'py>,
    counts: WordCounts,
    settings: &TrainSettings,
    reporter: &mut Reporter,
    count_seconds: f64,
) -> PyResult<(CoreTokenizer, Bound<'py, PyDict>)> {
    let most_merges = settings.most_merges() as u64;
    let learned = py.detach(|| {
        learn_vocab(counts, settings, &mut |merges| {
            reporter.report("merge", merges as u64, Some(most_merges), false)
        })
    });
    reporter.check()?;
    let (vocab, report) = learned.map_err(to_py)?;
    reporter.report("merge", report.merges, Some(report.merges), true);
    reporter.check()?;
    let pretokenizer = settings.pretokenizer().map_err(to_py)?;
    let roberta_template = has_roberta_specials(&vocab);
    let tokenizer = CoreTokenizer::new(Encoder::new(vocab, pretokenizer, false), roberta_template);
    let summary = report_dict(py, &report, count_seconds)?;
    Ok((tokenizer, summary))
}

fn report_dict<'py>(
    py: Python<'py>,
    report: &TrainReport,
    count_seconds: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("documents", report.documents)?;
    dict.set_item("text_bytes", report.text_bytes)?;
    dict.set_item("unique_words", report.unique_words)?;
    dict.set_item("pruned_words", report.pruned_words)?;
    dict.set_item("pruned_occurrences", report.pruned_occurrences)?;
    dict.set_item("merges", report.merges)?;
    dict.set_item("vocab_size", report.vocab_size)?;
    dict.set_item("count_seconds", count_seconds)?;
    dict.set_item("merge_seconds", report.merge_seconds)?;
    Ok(dict)
}

type Trained<'py> = (CoreTokenizer, Bound<'py, PyDict>, Vec<String>);

/// Counts the words of corpus files (GIL released), reporting bytes read.
fn count_corpus_files(
    py: Python<'_>,
    inputs: &[String],
    settings: &CountSettings,
    read: &PyReadOptions,
    holdout: &mut Holdout,
    reporter: &mut Reporter,
) -> PyResult<(WordCounts, ReadStats)> {
    let files = corpus_files(inputs)?;
    let total = total_size(&files);
    let counted = py.detach(|| {
        count_files(&files, &read.options, settings, holdout, &mut |done| {
            reporter.report("read", done, Some(total), false)
        })
    });
    reporter.check()?;
    let counted = counted.map_err(to_py)?;
    reporter.report("read", total, Some(total), true);
    reporter.check()?;
    Ok(counted)
}

fn add_read_stats(summary: &Bound<'_, PyDict>, stats: &ReadStats) -> PyResult<()> {
    summary.set_item("files", stats.files)?;
    summary.set_item("skipped", stats.skipped)?;
    summary.set_item("first_skipped", stats.first_skipped.clone())?;
    summary.set_item("replaced_surrogates", stats.replaced_surrogates)?;
    Ok(())
}

/// Trains on corpus files read by Rust (globs and directories expanded).
#[pyfunction]
#[pyo3(signature = (inputs, settings, read, holdout=(0, 0), progress=None))]
pub(super) fn train_files<'py>(
    py: Python<'py>,
    inputs: Vec<String>,
    settings: &PyTrainSettings,
    read: &PyReadOptions,
    holdout: (u64, usize),
    progress: Option<Py<PyAny>>,
) -> PyResult<Trained<'py>> {
    let settings = &settings.settings;
    let mut reporter = Reporter::new(progress);
    let mut held = Holdout::new(holdout.0, holdout.1);
    let started = Instant::now();
    let (counts, stats) = count_corpus_files(
        py,
        &inputs,
        &settings.counting(),
        read,
        &mut held,
        &mut reporter,
    )?;
    let count_seconds = started.elapsed().as_secs_f64();
    let (tokenizer, summary) = finish_training(py, counts, settings, &mut reporter, count_seconds)?;
    add_read_stats(&summary, &stats)?;
    Ok((tokenizer, summary, held.documents))
}

/// Hands one Python string to the counter as UTF-8.
fn add_text(text: &Bound<'_, PyAny>, counter: &mut TextCounter) -> PyResult<()> {
    let text = text.cast::<PyString>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "training texts must be str (or lists of str), not {}",
            text.get_type()
                .name()
                .map_or_else(|_| "?".to_string(), |n| n.to_string())
        ))
    })?;
    // A temporary UTF-8 copy: `to_str` would leave one cached in every
    // non-ASCII string for as long as the caller keeps its texts.
    let encoded = text.encode_utf8();
    let lossy;
    let text = match &encoded {
        Ok(bytes) => std::str::from_utf8(bytes.as_bytes())
            .map_err(|e| PyValueError::new_err(format!("Python produced invalid UTF-8: {e}")))?,
        // Lone surrogates become U+FFFD, one each, as `Tokenizer.encode`
        // makes them (`to_string_lossy` would make three of each).
        Err(_) => {
            lossy = text
                .call_method1("encode", ("utf-16", "surrogatepass"))?
                .call_method1("decode", ("utf-16", "replace"))?
                .extract::<String>()?;
            &lossy
        }
    };
    counter.push(text);
    Ok(())
}

/// Counts the words of Python strings: an iterable of `str`, or of lists of
/// `str`.
fn count_python_texts(
    py: Python<'_>,
    texts: &Bound<'_, PyAny>,
    settings: &CountSettings,
    holdout: Holdout,
    reporter: &mut Reporter,
) -> PyResult<(WordCounts, Holdout)> {
    let mut counter = TextCounter::start(settings, holdout).map_err(to_py)?;
    for item in texts.try_iter()? {
        let item = item?;
        if item.is_instance_of::<PyList>() || item.is_instance_of::<PyTuple>() {
            for text in item.try_iter()? {
                add_text(&text?, &mut counter)?;
            }
        } else {
            add_text(&item, &mut counter)?;
        }
        if counter.is_full() {
            py.detach(|| counter.flush_if_full()).map_err(to_py)?;
            reporter.report("read", counter.text_bytes(), None, false);
            reporter.check()?;
        }
    }
    let text_bytes = counter.text_bytes();
    let counted = py.detach(|| counter.finish()).map_err(to_py)?;
    reporter.report("read", text_bytes, Some(text_bytes), true);
    reporter.check()?;
    Ok(counted)
}

/// Trains on Python strings: an iterable of `str`, or of lists of `str`.
#[pyfunction]
#[pyo3(signature = (texts, settings, holdout=(0, 0), progress=None))]
pub(super) fn train_texts<'py>(
    py: Python<'py>,
    texts: &Bound<'py, PyAny>,
    settings: &PyTrainSettings,
    holdout: (u64, usize),
    progress: Option<Py<PyAny>>,
) -> PyResult<Trained<'py>> {
    let settings = &settings.settings;
    let holdout = Holdout::new(holdout.0, holdout.1);
    let mut reporter = Reporter::new(progress);
    let started = Instant::now();
    let (counts, held) =
        count_python_texts(py, texts, &settings.counting(), holdout, &mut reporter)?;
    let count_seconds = started.elapsed().as_secs_f64();
    let (tokenizer, summary) = finish_training(py, counts, settings, &mut reporter, count_seconds)?;
    Ok((tokenizer, summary, held.documents))
}

/// Trains on count tables, merged as they are read; the split pattern is
/// theirs. `settings.max_words` caps the merged counts.
#[pyfunction]
#[pyo3(signature = (tables, settings, progress=None))]
pub(super) fn train_counts<'py>(
    py: Python<'py>,
    tables: Vec<PathBuf>,
    settings: &PyTrainSettings,
    progress: Option<Py<PyAny>>,
) -> PyResult<(CoreTokenizer, Bound<'py, PyDict>)> {
    let mut reporter = Reporter::new(progress);
    let started = Instant::now();
    let (counts, header) = py
        .detach(|| count_table::read_counts(&tables, settings.settings.max_words))
        .map_err(to_py)?;
    let settings = TrainSettings {
        pattern: Some(header.pattern.clone()),
        ..settings.settings.clone()
    };
    let count_seconds = started.elapsed().as_secs_f64();
    let (tokenizer, summary) =
        finish_training(py, counts, &settings, &mut reporter, count_seconds)?;
    summary.set_item("files", tables.len())?;
    Ok((tokenizer, summary))
}

/// What a count table holds, for Python.
fn count_summary_dict<'py>(
    py: Python<'py>,
    summary: &CountSummary,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    let header = &summary.header;
    dict.set_item("words", summary.words)?;
    dict.set_item("occurrences", summary.occurrences)?;
    dict.set_item("documents", header.documents)?;
    dict.set_item("text_bytes", header.text_bytes)?;
    dict.set_item("pruned_words", header.pruned_words)?;
    dict.set_item("pruned_occurrences", header.pruned_occurrences)?;
    dict.set_item("parts", header.parts)?;
    dict.set_item("pattern", &header.pattern)?;
    dict.set_item("normalization", &header.normalization)?;
    dict.set_item("file_bytes", summary.file_bytes)?;
    let ranks = header
        .part
        .as_ref()
        .map(|part| (part.ranks.clone(), part.world_size));
    dict.set_item("ranks", ranks)?;
    Ok(dict)
}

/// Counts the words of corpus files into a count table at `output`; `part`
/// (rank, world size, the corpus's fingerprint) when they are a rank's share.
#[pyfunction]
#[pyo3(signature = (inputs, output, settings, read, part=None, progress=None))]
pub(super) fn count_files_to_table<'py>(
    py: Python<'py>,
    inputs: Vec<String>,
    output: PathBuf,
    settings: &PyCountSettings,
    read: &PyReadOptions,
    part: Option<(u64, u64, String)>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let settings = &settings.settings;
    let mut reporter = Reporter::new(progress);
    let mut no_holdout = Holdout::default();
    // A rank may have no files: its table is empty, but it must exist.
    let (counts, stats) = if inputs.is_empty() {
        (WordCounts::new(None), ReadStats::default())
    } else {
        count_corpus_files(py, &inputs, settings, read, &mut no_holdout, &mut reporter)?
    };
    let part = part.map(|(rank, world_size, corpus_sha256)| CountPart {
        world_size,
        corpus_sha256,
        ranks: vec![rank],
    });
    let summary = write_table(py, &output, &counts, settings, part)?;
    add_read_stats(&summary, &stats)?;
    Ok(summary)
}

/// Counts the words of Python strings into a count table at `output`.
#[pyfunction]
#[pyo3(signature = (texts, output, settings, progress=None))]
pub(super) fn count_texts_to_table<'py>(
    py: Python<'py>,
    texts: &Bound<'py, PyAny>,
    output: PathBuf,
    settings: &PyCountSettings,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let settings = &settings.settings;
    let mut reporter = Reporter::new(progress);
    let (counts, _) = count_python_texts(py, texts, settings, Holdout::default(), &mut reporter)?;
    write_table(py, &output, &counts, settings, None)
}

fn write_table<'py>(
    py: Python<'py>,
    output: &std::path::Path,
    counts: &WordCounts,
    settings: &CountSettings,
    part: Option<CountPart>,
) -> PyResult<Bound<'py, PyDict>> {
    let pretokenizer = settings.pretokenizer().map_err(to_py)?;
    let summary = py
        .detach(|| count_table::write_counts(output, counts, pretokenizer.pattern(), part))
        .map_err(to_py)?;
    count_summary_dict(py, &summary)
}

/// Merges count tables into one at `output`, streaming.
#[pyfunction]
pub(super) fn merge_count_tables<'py>(
    py: Python<'py>,
    inputs: Vec<PathBuf>,
    output: PathBuf,
) -> PyResult<Bound<'py, PyDict>> {
    let summary = py
        .detach(|| count_table::merge_count_files(&inputs, &output))
        .map_err(to_py)?;
    count_summary_dict(py, &summary)
}

/// A count table's header and totals, the whole file checked.
#[pyfunction]
pub(super) fn inspect_count_table<'py>(
    py: Python<'py>,
    path: PathBuf,
) -> PyResult<Bound<'py, PyDict>> {
    let summary = py.detach(|| count_table::inspect(&path)).map_err(to_py)?;
    count_summary_dict(py, &summary)
}
