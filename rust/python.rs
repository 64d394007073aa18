//! The Python face of the core (`bbpe._core`): a thin layer that converts
//! arguments, releases the GIL around encoding, and maps errors. The public
//! API lives in `python/bbpe/tokenizer.py`.

use crate::batch::{encode_batch, encode_flat_fed, FlatIds};
use crate::byte_alphabet::token_string_to_bytes;
use crate::corpus::{expand_inputs, total_size, ReadOptions};
use crate::encode::{Encoder, Specials};
use crate::error::Error;
use crate::formats::{self, Loaded};
use crate::pretokenize::{pretokens, Pretokenizer};
use crate::shards::pipeline::{
    count_tokens as pipeline_count_tokens, encode_to_shards, Progress as ShardProgress,
    ShardSettings, Summary as ShardSummary,
};
use crate::shards::writer::ExistingShards;
use crate::threads::run_with_threads;
use crate::train::word_counts::{WordCounter, WordCounts};
use crate::train::{count_files, learn_vocab, Holdout, TrainReport, TrainSettings};
use crate::vocab::SpecialToken;
use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use rayon::prelude::*;
use std::borrow::Cow;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use utf8::{char_count, Utf8, Utf8Converter};

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

/// `None` recognises every special token in text; a list only those ids.
fn specials_of(allowed: &Option<Vec<u32>>) -> Specials<'_> {
    match allowed {
        None => Specials::All,
        Some(ids) if ids.is_empty() => Specials::None,
        Some(ids) => Specials::Only(ids),
    }
}

/// Character offsets of byte spans in `text`: a span starting or ending inside
/// a character is widened to the whole character.
fn char_spans(text: &str, spans: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut char_index = vec![0usize; text.len() + 1];
    let mut count = 0;
    for (i, c) in text.char_indices() {
        for slot in &mut char_index[i..i + c.len_utf8()] {
            *slot = count;
        }
        count += 1;
    }
    char_index[text.len()] = count;
    spans
        .iter()
        .map(|&(start, end)| {
            let end_char = if end > start {
                char_index[end - 1] + 1
            } else {
                char_index[end]
            };
            (char_index[start], end_char)
        })
        .collect()
}

#[pyclass(module = "bbpe._core", frozen)]
pub struct CoreTokenizer {
    encoder: Encoder,
}

impl CoreTokenizer {
    fn from_loaded(loaded: Loaded) -> PyResult<Self> {
        let pretokenizer = Pretokenizer::from_pattern(&loaded.pattern).map_err(to_py)?;
        Ok(CoreTokenizer {
            encoder: Encoder::new(loaded.vocab, pretokenizer, loaded.add_prefix_space),
        })
    }
}

#[pymethods]
impl CoreTokenizer {
    #[staticmethod]
    #[pyo3(signature = (vocab_path, merges_path, special_tokens=None))]
    fn from_gpt2_files(
        vocab_path: PathBuf,
        merges_path: PathBuf,
        special_tokens: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let loaded = formats::gpt2::load(&vocab_path, &merges_path, special_tokens.as_deref())
            .map_err(to_py)?;
        Self::from_loaded(loaded)
    }

    #[staticmethod]
    fn from_hf_json(path: PathBuf) -> PyResult<Self> {
        Self::from_loaded(formats::hf_json::load(&path).map_err(to_py)?)
    }

    #[staticmethod]
    fn from_hf_json_text(text: &str) -> PyResult<Self> {
        Self::from_loaded(formats::hf_json::parse(text, "tokenizer.json text").map_err(to_py)?)
    }

    #[staticmethod]
    fn from_tiktoken(
        path: PathBuf,
        special_tokens: Vec<(String, u32)>,
        pattern: &str,
    ) -> PyResult<Self> {
        let specials: Vec<SpecialToken> = special_tokens
            .into_iter()
            .map(|(content, id)| SpecialToken::new(content, id))
            .collect();
        Self::from_loaded(formats::tiktoken::load(&path, &specials, pattern).map_err(to_py)?)
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.encoder.vocab().size()
    }

    #[getter]
    fn pattern(&self) -> &str {
        self.encoder.pretokenizer().pattern()
    }

    #[getter]
    fn add_prefix_space(&self) -> bool {
        self.encoder.add_prefix_space()
    }

    /// A copy with `add_prefix_space` set as given.
    fn with_prefix_space(&self, add_prefix_space: bool) -> PyResult<Self> {
        let vocab = self.encoder.vocab().clone();
        let pretokenizer = self.encoder.pretokenizer().clone();
        Ok(CoreTokenizer {
            encoder: Encoder::new(vocab, pretokenizer, add_prefix_space),
        })
    }

    fn special_tokens(&self) -> Vec<(String, u32)> {
        let specials = self.encoder.vocab().specials();
        specials.iter().map(|s| (s.content.clone(), s.id)).collect()
    }

    fn token_bytes<'py>(&self, py: Python<'py>, id: u32) -> Option<Bound<'py, PyBytes>> {
        let bytes = self.encoder.vocab().token_bytes(id)?;
        Some(PyBytes::new(py, bytes))
    }

    /// The id of a token spelled in the byte alphabet, or of a special token.
    fn token_to_id(&self, token: &str) -> Option<u32> {
        let vocab = self.encoder.vocab();
        vocab.special_id(token).or_else(|| {
            let bytes = token_string_to_bytes(token).ok()?;
            vocab.id_of(&bytes)
        })
    }

    /// The token spelled in the byte alphabet (special tokens as written).
    fn id_to_token(&self, id: u32) -> Option<String> {
        self.encoder.vocab().token_string(id)
    }

    fn get_vocab(&self) -> Vec<(String, u32)> {
        let vocab = self.encoder.vocab();
        (0..vocab.size() as u32)
            .filter_map(|id| Some((vocab.token_string(id)?, id)))
            .collect()
    }

    fn is_special(&self, id: u32) -> bool {
        self.encoder.vocab().is_special(id)
    }

    fn pretokenize(&self, text: &str) -> PyResult<Vec<String>> {
        let pieces = pretokens(self.encoder.pretokenizer(), text).map_err(to_py)?;
        Ok(pieces.into_iter().map(str::to_string).collect())
    }

    #[pyo3(signature = (text, allowed_special=None))]
    fn encode(
        &self,
        py: Python<'_>,
        text: String,
        allowed_special: Option<Vec<u32>>,
    ) -> PyResult<Vec<u32>> {
        py.detach(|| self.encoder.encode(&text, specials_of(&allowed_special)))
            .map_err(to_py)
    }

    /// Ids and the character span of each in `text`.
    #[pyo3(signature = (text, allowed_special=None))]
    #[allow(clippy::type_complexity)]
    fn encode_with_offsets(
        &self,
        py: Python<'_>,
        text: String,
        allowed_special: Option<Vec<u32>>,
    ) -> PyResult<(Vec<u32>, Vec<(usize, usize)>)> {
        py.detach(|| {
            let (mut ids, mut spans) = (Vec::new(), Vec::new());
            self.encoder.encode_into(
                &text,
                specials_of(&allowed_special),
                &mut ids,
                Some(&mut spans),
            )?;
            Ok((ids, char_spans(&text, &spans)))
        })
        .map_err(to_py)
    }

    #[pyo3(signature = (texts, allowed_special=None, threads=0))]
    fn encode_batch(
        &self,
        py: Python<'_>,
        texts: Vec<Bound<'_, PyString>>,
        allowed_special: Option<Vec<u32>>,
        threads: usize,
    ) -> PyResult<Vec<Vec<u32>>> {
        // Long non-ASCII strings are copied once, without the copy that
        // CPython would keep in each; the others are borrowed.
        let mut converter = Utf8Converter::default();
        let texts = (texts.iter())
            .map(|text| {
                converter.with_utf8(text, |utf8| match utf8 {
                    Utf8::Borrowed(utf8) => Cow::Borrowed(utf8),
                    Utf8::Converted(utf8) => Cow::Owned(utf8.to_owned()),
                })
            })
            .collect::<PyResult<Vec<Cow<str>>>>()?;
        py.detach(|| {
            encode_batch(
                &self.encoder,
                &texts,
                specials_of(&allowed_special),
                threads,
            )
        })
        .map_err(to_py)
    }

    /// All ids in one uint32 array and the int64 offsets of each text's ids:
    /// NumPy arrays that own the encoder's output, with no Python object per
    /// token. Strings are turned into UTF-8 (which needs the GIL) one by one
    /// while the pool encodes the ones before them; whenever more runs wait
    /// than the pool needs, this thread encodes one too, so that the buffers
    /// of converted texts are used again while still in the CPU's caches.
    #[pyo3(signature = (texts, allowed_special=None, threads=0))]
    #[allow(clippy::type_complexity)]
    fn encode_batch_flat<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<Bound<'py, PyString>>,
        allowed_special: Option<Vec<u32>>,
        threads: usize,
    ) -> PyResult<(Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<i64>>)> {
        // A text has at most an id per UTF-8 byte, and outside emoji and
        // other astral characters at most three bytes per character. With
        // room for that, the output is never moved (which would lose its
        // huge pages); pages never written cost nothing.
        let chars = (texts.iter().map(char_count)).sum::<PyResult<usize>>()?;
        let mut ids = Vec::new();
        if ids.try_reserve_exact(3 * chars).is_err() {
            ids.reserve(chars);
        }
        let specials = specials_of(&allowed_special);
        let mut converter = Utf8Converter::default();
        let (converted, FlatIds { ids, offsets }) = encode_flat_fed(
            &self.encoder,
            specials,
            threads,
            ids,
            |feeder| -> PyResult<()> {
                for text in &texts {
                    converter.with_utf8(text, |utf8| match utf8 {
                        Utf8::Borrowed(utf8) => feeder.push(utf8),
                        Utf8::Converted(utf8) => feeder.push_copy(utf8),
                    })?;
                    if feeder.has_backlog() {
                        py.detach(|| feeder.encode_one());
                    }
                }
                py.detach(|| feeder.wait());
                Ok(())
            },
        )
        .map_err(to_py)?;
        converted?;
        let offsets: Vec<i64> = offsets.into_iter().map(|o| o as i64).collect();
        Ok((ids.into_pyarray(py), offsets.into_pyarray(py)))
    }

    #[pyo3(signature = (ids, skip_special_tokens=false))]
    fn decode_bytes<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<u32>,
        skip_special_tokens: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self
            .encoder
            .decode(&ids, skip_special_tokens)
            .map_err(to_py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    #[pyo3(signature = (batch, skip_special_tokens=false, threads=0))]
    fn decode_batch_bytes<'py>(
        &self,
        py: Python<'py>,
        batch: Vec<Vec<u32>>,
        skip_special_tokens: bool,
        threads: usize,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let decoded: Vec<Vec<u8>> = py
            .detach(|| {
                run_with_threads(threads, || {
                    batch
                        .par_iter()
                        .map(|ids| self.encoder.decode(ids, skip_special_tokens))
                        .collect::<Result<Vec<_>, Error>>()
                })
            })
            .and_then(|r| r)
            .map_err(to_py)?;
        Ok(decoded.iter().map(|b| PyBytes::new(py, b)).collect())
    }

    fn save_gpt2(&self, vocab_path: PathBuf, merges_path: PathBuf) -> PyResult<()> {
        formats::gpt2::save(self.encoder.vocab(), &vocab_path, &merges_path).map_err(to_py)
    }

    fn to_hf_json(&self) -> String {
        formats::hf_json::to_json(
            self.encoder.vocab(),
            self.pattern(),
            self.add_prefix_space(),
        )
    }

    fn save_tiktoken(&self, path: PathBuf) -> PyResult<()> {
        formats::tiktoken::save(self.encoder.vocab(), &path).map_err(to_py)
    }
}

/// Training settings, checked once when made (see `bbpe.train`).
#[pyclass(module = "bbpe._core", name = "TrainSettings", frozen)]
pub struct PyTrainSettings {
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

/// Passes progress to an optional Python callable `(stage, done, total)` at
/// most every 0.1 s, checking for Ctrl-C at the same time. The first Python
/// error (a raising callback, KeyboardInterrupt) is kept and stops the job.
struct Reporter {
    callback: Option<Py<PyAny>>,
    last: Option<Instant>,
    error: Option<PyErr>,
}

impl Reporter {
    fn new(callback: Option<Py<PyAny>>) -> Self {
        Reporter {
            callback,
            last: None,
            error: None,
        }
    }

    /// Whether to go on.
    fn report(&mut self, stage: &str, done: u64, total: Option<u64>, always: bool) -> bool {
        self.report_with(stage, done, total, always)
    }

    /// Like [`Reporter::report`], with any Python-convertible `done`.
    fn report_with<T>(&mut self, stage: &str, done: T, total: Option<u64>, always: bool) -> bool
    where
        T: for<'py> pyo3::IntoPyObject<'py>,
    {
        if self.error.is_some() {
            return false;
        }
        let due = self
            .last
            .is_none_or(|last| last.elapsed() >= Duration::from_millis(100));
        if !(always || due) {
            return true;
        }
        self.last = Some(Instant::now());
        let outcome = Python::attach(|py| {
            py.check_signals()?;
            match &self.callback {
                Some(callback) => callback.call1(py, (stage, done, total)).map(drop),
                None => Ok(()),
            }
        });
        if let Err(error) = outcome {
            self.error = Some(error);
        }
        self.error.is_none()
    }

    fn check(&mut self) -> PyResult<()> {
        self.error.take().map_or(Ok(()), Err)
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
    let most_merges = (settings.vocab_size - 256 - settings.special_tokens.len()) as u64;
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
    let tokenizer = CoreTokenizer {
        encoder: Encoder::new(vocab, pretokenizer, false),
    };
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

/// Trains on corpus files read by Rust (globs and directories expanded).
#[pyfunction]
#[pyo3(signature = (inputs, settings, format="auto", text_field=String::from("text"), on_bad_input="stop", holdout=(0, 0), progress=None))]
#[allow(clippy::too_many_arguments)]
fn train_files<'py>(
    py: Python<'py>,
    inputs: Vec<String>,
    settings: &PyTrainSettings,
    format: &str,
    text_field: String,
    on_bad_input: &str,
    holdout: (u64, usize),
    progress: Option<Py<PyAny>>,
) -> PyResult<Trained<'py>> {
    let settings = &settings.settings;
    let (options, files) = corpus_files(&inputs, format, text_field, on_bad_input)?;
    let total = total_size(&files);
    let mut reporter = Reporter::new(progress);
    let mut held = Holdout::new(holdout.0, holdout.1);
    let started = Instant::now();
    let counted = py.detach(|| {
        count_files(&files, &options, settings, &mut held, &mut |done| {
            reporter.report("read", done, Some(total), false)
        })
    });
    reporter.check()?;
    let (counts, stats) = counted.map_err(to_py)?;
    reporter.report("read", total, Some(total), true);
    reporter.check()?;
    let count_seconds = started.elapsed().as_secs_f64();
    let (tokenizer, summary) = finish_training(py, counts, settings, &mut reporter, count_seconds)?;
    summary.set_item("files", stats.files)?;
    summary.set_item("skipped", stats.skipped)?;
    summary.set_item("first_skipped", stats.first_skipped)?;
    summary.set_item("replaced_surrogates", stats.replaced_surrogates)?;
    Ok((tokenizer, summary, held.documents))
}

/// Hands one Python string to the counter (or the holdout); its UTF-8 size.
fn add_text(
    text: &Bound<'_, PyAny>,
    counter: &mut WordCounter,
    holdout: &mut Holdout,
) -> PyResult<u64> {
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
    if !holdout.take(text) {
        counter.push(text);
    }
    Ok(text.len() as u64)
}

/// Trains on Python strings: an iterable of `str`, or of lists of `str`.
#[pyfunction]
#[pyo3(signature = (texts, settings, holdout=(0, 0), progress=None))]
fn train_texts<'py>(
    py: Python<'py>,
    texts: &Bound<'py, PyAny>,
    settings: &PyTrainSettings,
    holdout: (u64, usize),
    progress: Option<Py<PyAny>>,
) -> PyResult<Trained<'py>> {
    let settings = &settings.settings;
    let mut counter = WordCounter::start(
        settings.pretokenizer().map_err(to_py)?,
        settings.max_words,
        settings.threads,
    );
    let mut reporter = Reporter::new(progress);
    let mut held = Holdout::new(holdout.0, holdout.1);
    let mut text_bytes = 0u64;
    let started = Instant::now();
    for item in texts.try_iter()? {
        let item = item?;
        if item.is_instance_of::<PyList>() || item.is_instance_of::<PyTuple>() {
            for text in item.try_iter()? {
                text_bytes += add_text(&text?, &mut counter, &mut held)?;
            }
        } else {
            text_bytes += add_text(&item, &mut counter, &mut held)?;
        }
        if counter.is_full() {
            py.detach(|| counter.flush_if_full()).map_err(to_py)?;
            reporter.report("read", text_bytes, None, false);
            reporter.check()?;
        }
    }
    let counts = py.detach(|| counter.finish()).map_err(to_py)?;
    reporter.report("read", text_bytes, Some(text_bytes), true);
    reporter.check()?;
    let count_seconds = started.elapsed().as_secs_f64();
    let (tokenizer, summary) = finish_training(py, counts, settings, &mut reporter, count_seconds)?;
    Ok((tokenizer, summary, held.documents))
}

/// Reads and encodes corpus files with the shard pipeline (GIL released),
/// passing progress to Python, and returns its summary as a dict.
#[allow(clippy::too_many_arguments)]
fn run_pipeline<'py>(
    py: Python<'py>,
    tokenizer: &CoreTokenizer,
    inputs: Vec<String>,
    format: &str,
    text_field: String,
    on_bad_input: &str,
    progress: Option<Py<PyAny>>,
    job: impl FnOnce(
            &Encoder,
            &[PathBuf],
            &ReadOptions,
            &mut dyn FnMut(&ShardProgress) -> bool,
        ) -> Result<ShardSummary, Error>
        + Send,
) -> PyResult<Bound<'py, PyDict>> {
    let (read, files) = corpus_files(&inputs, format, text_field, on_bad_input)?;
    let mut reporter = Reporter::new(progress);
    let encoder = &tokenizer.encoder;
    let outcome = py.detach(|| {
        job(encoder, &files, &read, &mut |state: &ShardProgress| {
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
    let dict = PyDict::new(py);
    let shards = &summary.shards;
    let total = |field: fn(&crate::shards::writer::ShardRecord) -> u64| {
        shards.iter().map(field).sum::<u64>()
    };
    dict.set_item(
        "shards",
        shards.iter().map(|s| s.prefix.clone()).collect::<Vec<_>>(),
    )?;
    // Shard totals include earlier (resumed) work and appended end tokens.
    let written = !shards.is_empty();
    dict.set_item(
        "documents",
        if written {
            total(|s| s.documents)
        } else {
            summary.documents
        },
    )?;
    dict.set_item("sequences", total(|s| s.sequences))?;
    dict.set_item(
        "tokens",
        if written {
            total(|s| s.tokens)
        } else {
            summary.tokens
        },
    )?;
    dict.set_item("empty_documents", summary.empty_documents)?;
    dict.set_item("resumed_documents", summary.resumed_documents)?;
    // The text of the resumed documents too, to go with the shards' tokens;
    // speeds are of what this run encoded.
    dict.set_item(
        "text_bytes",
        summary.text_bytes + summary.resumed_text_bytes,
    )?;
    dict.set_item("encoded_text_bytes", summary.text_bytes)?;
    dict.set_item("encoded_tokens", summary.tokens)?;
    dict.set_item("files", summary.read.files)?;
    dict.set_item("skipped", summary.read.skipped)?;
    dict.set_item("first_skipped", summary.read.first_skipped.clone())?;
    dict.set_item("replaced_surrogates", summary.read.replaced_surrogates)?;
    Ok(dict)
}

/// Encodes corpus files into Megatron shards in `out_dir` (see
/// `bbpe.shards.write`).
#[pyfunction]
#[pyo3(signature = (tokenizer, inputs, out_dir, settings, header_json, format="auto", text_field=String::from("text"), on_bad_input="stop", progress=None))]
#[allow(clippy::too_many_arguments)]
fn encode_shards<'py>(
    py: Python<'py>,
    tokenizer: &CoreTokenizer,
    inputs: Vec<String>,
    out_dir: PathBuf,
    settings: (String, u64, bool, Option<u32>, usize, &str),
    header_json: &str,
    format: &str,
    text_field: String,
    on_bad_input: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let (prefix, shard_bytes, split_sentences, eos, threads, existing) = settings;
    let existing = match existing {
        "refuse" => ExistingShards::Refuse,
        "resume" => ExistingShards::Resume,
        "overwrite" => ExistingShards::Overwrite,
        other => {
            return Err(PyValueError::new_err(format!(
                "existing shards: expected refuse, resume or overwrite, not {other:?}"
            )))
        }
    };
    let settings = ShardSettings {
        prefix,
        shard_bytes,
        split_sentences,
        eos,
        threads,
        existing,
    };
    let header = match serde_json::from_str(header_json) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => {
            return Err(PyValueError::new_err(
                "the manifest header must be a JSON object",
            ))
        }
    };
    run_pipeline(
        py,
        tokenizer,
        inputs,
        format,
        text_field,
        on_bad_input,
        progress,
        |encoder, files, read, report| {
            encode_to_shards(encoder, files, read, &out_dir, &settings, header, report)
        },
    )
}

/// Reads and encodes corpus files, writing nothing: counts and speed.
#[pyfunction]
#[pyo3(signature = (tokenizer, inputs, threads=0, format="auto", text_field=String::from("text"), on_bad_input="stop", progress=None))]
#[allow(clippy::too_many_arguments)]
fn count_tokens<'py>(
    py: Python<'py>,
    tokenizer: &CoreTokenizer,
    inputs: Vec<String>,
    threads: usize,
    format: &str,
    text_field: String,
    on_bad_input: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let settings = ShardSettings {
        prefix: String::new(),
        shard_bytes: u64::MAX,
        split_sentences: false,
        eos: None,
        threads,
        existing: ExistingShards::Refuse,
    };
    run_pipeline(
        py,
        tokenizer,
        inputs,
        format,
        text_field,
        on_bad_input,
        progress,
        |encoder, files, read, report| {
            pipeline_count_tokens(encoder, files, read, &settings, report)
        },
    )
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<CoreTokenizer>()?;
    m.add_class::<PyTrainSettings>()?;
    m.add_function(wrap_pyfunction!(train_files, m)?)?;
    m.add_function(wrap_pyfunction!(train_texts, m)?)?;
    m.add_function(wrap_pyfunction!(encode_shards, m)?)?;
    m.add_function(wrap_pyfunction!(count_tokens, m)?)?;
    Ok(())
}
