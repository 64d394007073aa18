//! Internals that the fuzz targets in `fuzz/` check, reachable only with the
//! `fuzzing` feature: they are not part of the API.

use crate::error::Error;
use crate::pretokenize::Pretokenizer;

/// The string value of `field` in a JSONL line, and whether lone surrogate
/// escapes were replaced; see `corpus/jsonl.rs`.
pub fn jsonl_text_field<'a>(
    line: &'a str,
    field: &str,
    scratch: &'a mut String,
) -> Result<(&'a str, bool), String> {
    crate::corpus::text_field(line, field, scratch)
}

/// A document cut into the pieces that `--split-sentences` encodes one by
/// one; see `shards/pipeline.rs`.
pub fn sentence_pieces<'a>(
    pretokenizer: &Pretokenizer,
    text: &'a str,
) -> Result<Vec<&'a str>, Error> {
    crate::shards::pipeline::sentence_pieces(pretokenizer, text)
}
