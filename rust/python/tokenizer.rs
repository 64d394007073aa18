//! The tokenizer face: `CoreTokenizer`, behind `bbpe.Tokenizer`.

use super::id_lists::IdObjects;
use super::to_py;
use super::utf8::{char_count, Utf8, Utf8Converter};
use crate::byte_alphabet::token_string_to_bytes;
use crate::encode::batch::{encode_flat_fed, flat_output_for_chars, Feeder, FlatIds};
use crate::encode::{Encoder, Specials};
use crate::error::Error;
use crate::formats::{self, Loaded};
use crate::pretokenize::{pretokens, Pretokenizer};
use crate::system::threads::run_with_threads;
use crate::vocab::SpecialToken;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use rayon::prelude::*;
use std::path::PathBuf;

#[pyclass(module = "bbpe._core", frozen)]
pub(super) struct CoreTokenizer {
    pub(super) encoder: Encoder,
    /// Whether inputs get RoBERTa's template (as the loaded files said).
    pub(super) roberta_template: bool,
    /// The Python int of every id, for list results.
    pub(super) id_objects: IdObjects,
}

impl CoreTokenizer {
    pub(super) fn new(encoder: Encoder, roberta_template: bool) -> Self {
        CoreTokenizer {
            encoder,
            roberta_template,
            id_objects: IdObjects::default(),
        }
    }

    /// The ids of all `texts` end to end. Strings are turned into UTF-8
    /// (which needs the GIL) one by one while the pool encodes the ones
    /// before them; whenever more runs wait than the pool needs, this thread
    /// encodes one too, so that the buffers of converted texts are used again
    /// while still in the CPU's caches.
    fn encode_fed(
        &self,
        py: Python<'_>,
        texts: &[Bound<'_, PyString>],
        allowed_special: Option<Vec<u32>>,
        threads: usize,
    ) -> PyResult<FlatIds> {
        let chars = (texts.iter().map(char_count)).sum::<PyResult<usize>>()?;
        let ids = flat_output_for_chars(chars);
        let specials = Specials::allowed(allowed_special.as_deref());
        let mut converter = Utf8Converter::default();
        let (converted, flat) = encode_flat_fed(
            &self.encoder,
            specials,
            threads,
            ids,
            |feeder| -> PyResult<()> {
                for text in texts {
                    feed_text(py, &mut converter, feeder, text)?;
                }
                py.detach(|| feeder.wait());
                Ok(())
            },
        )
        .map_err(to_py)?;
        converted?;
        Ok(flat)
    }

    fn from_loaded(loaded: Loaded) -> PyResult<Self> {
        let pretokenizer = Pretokenizer::from_pattern(&loaded.pattern).map_err(to_py)?;
        Ok(CoreTokenizer::new(
            Encoder::new(loaded.vocab, pretokenizer, loaded.add_prefix_space),
            loaded.roberta_template,
        ))
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

    /// Whether inputs are wrapped as `<s> A </s></s> B </s>`.
    #[getter]
    fn roberta_template(&self) -> bool {
        self.roberta_template
    }

    #[getter]
    fn add_prefix_space(&self) -> bool {
        self.encoder.add_prefix_space()
    }

    /// A copy with `add_prefix_space` set as given.
    fn with_prefix_space(&self, add_prefix_space: bool) -> PyResult<Self> {
        let vocab = self.encoder.vocab().clone();
        let pretokenizer = self.encoder.pretokenizer().clone();
        Ok(CoreTokenizer::new(
            Encoder::new(vocab, pretokenizer, add_prefix_space),
            self.roberta_template,
        ))
    }

    fn special_tokens(&self) -> Vec<(String, u32)> {
        let specials = self.encoder.vocab().specials();
        specials.iter().map(|s| (s.content.clone(), s.id)).collect()
    }

    /// The token that ends a document (`</s>`, else `<|endoftext|>`), if any.
    #[getter]
    fn end_of_document_id(&self) -> Option<u32> {
        self.encoder.vocab().end_of_document_id()
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

    /// For every id, one byte each (0 or 1): whether its token starts a word,
    /// and whether it ends one (`Vocab::word_boundaries`).
    fn word_boundaries<'py>(&self, py: Python<'py>) -> (Bound<'py, PyBytes>, Bound<'py, PyBytes>) {
        let (starts, ends) = self.encoder.vocab().word_boundaries();
        let as_bytes = |flags: Vec<bool>| flags.into_iter().map(u8::from).collect::<Vec<u8>>();
        (
            PyBytes::new(py, &as_bytes(starts)),
            PyBytes::new(py, &as_bytes(ends)),
        )
    }

    fn pretokenize(&self, text: &str) -> PyResult<Vec<String>> {
        let pieces = pretokens(self.encoder.pretokenizer(), text).map_err(to_py)?;
        Ok(pieces.into_iter().map(str::to_string).collect())
    }

    /// The ids of `text` as a list, between the two ids of `around` if
    /// given (RoBERTa's template for one text: `<s>` and `</s>`).
    #[pyo3(signature = (text, allowed_special=None, around=None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        text: String,
        allowed_special: Option<Vec<u32>>,
        around: Option<[u32; 2]>,
    ) -> PyResult<Bound<'py, PyList>> {
        let ids = py
            .detach(|| {
                self.encoder
                    .encode(&text, Specials::allowed(allowed_special.as_deref()))
            })
            .map_err(to_py)?;
        (self.id_objects).list(py, &ids, around, self.encoder.vocab().size())
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
            (self.encoder)
                .encode_with_char_spans(&text, Specials::allowed(allowed_special.as_deref()))
        })
        .map_err(to_py)
    }

    /// Each text's ids as a list, between the two ids of `around` if given.
    #[pyo3(signature = (texts, allowed_special=None, threads=0, around=None))]
    fn encode_batch<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<Bound<'py, PyString>>,
        allowed_special: Option<Vec<u32>>,
        threads: usize,
        around: Option<[u32; 2]>,
    ) -> PyResult<Bound<'py, PyList>> {
        let size = self.encoder.vocab().size();
        let mut lists = (self.id_objects).lists(py, texts.len(), around, size)?;
        let specials = Specials::allowed(allowed_special.as_deref());
        let mut converter = Utf8Converter::default();
        let (mut ids, mut ends) = (Vec::new(), Vec::new());
        // Finished texts become lists here, with the GIL, while the pool
        // encodes the next runs: making lists is as much work as encoding.
        let (fed, _) = encode_flat_fed(
            &self.encoder,
            specials,
            threads,
            Vec::new(),
            |feeder| -> PyResult<()> {
                for text in &texts {
                    feed_text(py, &mut converter, feeder, text)?;
                    if feeder.may_have_appended() {
                        feeder.take_appended(&mut ids, &mut ends);
                        lists.add_finished(&mut ids, &mut ends)?;
                    }
                }
                // The rest: lists of what is appended, else a run encoded here,
                // else a wait for the pool, until every run is taken.
                feeder.send_last_run();
                loop {
                    feeder.take_appended(&mut ids, &mut ends);
                    lists.add_finished(&mut ids, &mut ends)?;
                    if !py.detach(|| feeder.encode_one() || feeder.wait_for_appended()) {
                        return Ok(());
                    }
                }
            },
        )
        .map_err(to_py)?;
        fed?;
        Ok(lists.finish())
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
        let FlatIds { ids, offsets } = self.encode_fed(py, &texts, allowed_special, threads)?;
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
            self.roberta_template,
        )
    }

    fn save_tiktoken(&self, path: PathBuf) -> PyResult<()> {
        formats::tiktoken::save(self.encoder.vocab(), &path).map_err(to_py)
    }
}

/// Hands one Python string to the feeder as UTF-8, and encodes a run on this
/// thread (without the GIL) when more wait than the pool needs.
fn feed_text<'env>(
    py: Python<'_>,
    converter: &mut Utf8Converter,
    feeder: &mut Feeder<'_, 'env>,
    text: &'env Bound<'_, PyString>,
) -> PyResult<()> {
    converter.with_utf8(text, |utf8| match utf8 {
        Utf8::Borrowed(utf8) => feeder.push(utf8),
        Utf8::Converted(utf8) => feeder.push_copy(utf8),
    })?;
    if feeder.has_backlog() {
        py.detach(|| feeder.encode_one());
    }
    Ok(())
}
