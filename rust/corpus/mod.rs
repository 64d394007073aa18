//! Reading documents from corpus files, for training and for encoding into
//! shards alike: JSONL (text in a chosen field of each object) or plain text
//! (one document per line, or documents separated by blank lines), plain or
//! gzip / xz / zstd compressed. Every error names the file and line.
//!
//! - `inputs`: command-line inputs (files, directories, globs) → file list
//! - `decompress`: a file → its decompressed bytes, counting bytes read from disk
//! - `jsonl`: one JSON line → the text field, without building a JSON tree
//! - `blocks`: a file's text → blocks of whole lines, each with its first line's number
//! - `documents`: the ways of reading; a block's lines → documents in the chosen format, bad-input policy
//! - `read_ahead`: several compressed files read at once on threads, documents in file order
//! - `parse_ahead`: blocks parsed on several threads, documents in file order
//! - `queued`: text queued between threads, bounded in bytes

mod blocks;
mod decompress;
mod documents;
mod inputs;
mod jsonl;
mod parse_ahead;
mod queued;
mod read_ahead;
#[cfg(test)]
mod testing;
mod text_batch;

use crate::error::Error;
use std::str::FromStr;

pub use documents::{read_documents, read_documents_with, Reading};
pub use inputs::{expand_inputs, total_size};
#[cfg(feature = "fuzzing")]
pub(crate) use jsonl::text_field;
pub use text_batch::TextBatch;

/// How the lines of a file make up documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    /// By file name: `.jsonl` / `.json` (before any compression suffix) is
    /// JSONL, anything else paragraphs.
    Auto,
    /// One JSON object per line, the text in [`ReadOptions::text_field`].
    Jsonl,
    /// Each non-empty line is a document.
    Lines,
    /// Runs of non-blank lines, joined by `"\n"`, are documents.
    Paragraphs,
}

impl DocumentFormat {
    /// The name [`FromStr`] reads, as the shard manifest records it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Jsonl => "jsonl",
            Self::Lines => "lines",
            Self::Paragraphs => "paragraphs",
        }
    }
}

impl FromStr for DocumentFormat {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        match name {
            "auto" => Ok(Self::Auto),
            "jsonl" => Ok(Self::Jsonl),
            "lines" => Ok(Self::Lines),
            "paragraphs" => Ok(Self::Paragraphs),
            _ => Err(Error::Invalid(format!(
                "unknown document format {name:?}: expected auto, jsonl, lines or paragraphs"
            ))),
        }
    }
}

/// What to do with a line that cannot be read as (part of) a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBadInput {
    /// Fail with the line's error.
    Stop,
    /// Leave the line out and count it in [`ReadStats::skipped`].
    Skip,
}

impl OnBadInput {
    /// The name [`FromStr`] reads, as the shard manifest records it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Skip => "skip",
        }
    }
}

impl FromStr for OnBadInput {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        match name {
            "stop" => Ok(Self::Stop),
            "skip" => Ok(Self::Skip),
            _ => Err(Error::Invalid(format!(
                "unknown bad-input policy {name:?}: expected stop or skip"
            ))),
        }
    }
}

/// How to read corpus files: one value for every command that reads them
/// (training, shards, counts).
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub format: DocumentFormat,
    /// The JSONL field holding the text.
    pub text_field: String,
    pub on_bad_input: OnBadInput,
}

impl ReadOptions {
    /// Options from their names, as the command line and the Python API give
    /// them; an unknown name is an error that lists the known ones.
    pub fn parse(format: &str, text_field: &str, on_bad_input: &str) -> Result<Self, Error> {
        Ok(Self {
            format: format.parse()?,
            text_field: text_field.to_string(),
            on_bad_input: on_bad_input.parse()?,
        })
    }
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            format: DocumentFormat::Auto,
            text_field: "text".to_string(),
            on_bad_input: OnBadInput::Stop,
        }
    }
}

/// What [`read_documents`] read.
#[derive(Debug, Default, Clone)]
pub struct ReadStats {
    pub files: u64,
    pub documents: u64,
    /// The emitted documents' total length in bytes.
    pub text_bytes: u64,
    /// Lines left out under [`OnBadInput::Skip`].
    pub skipped: u64,
    /// The error of the first line left out, as displayed.
    pub first_skipped: Option<String>,
    /// JSON lines whose lone surrogate escapes (as Python's `json.dumps`
    /// writes them) were read as U+FFFD, as the Python API reads them.
    pub replaced_surrogates: u64,
}

impl ReadStats {
    /// Adds what a later part of the input read (a block, a file), keeping
    /// the first skipped line's error.
    fn add(&mut self, later: ReadStats) {
        self.files += later.files;
        self.documents += later.documents;
        self.text_bytes += later.text_bytes;
        self.skipped += later.skipped;
        self.replaced_surrogates += later.replaced_surrogates;
        if self.first_skipped.is_none() {
            self.first_skipped = later.first_skipped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_policies_parse_from_their_names() {
        assert_eq!(
            "auto".parse::<DocumentFormat>().unwrap(),
            DocumentFormat::Auto
        );
        assert_eq!(
            "jsonl".parse::<DocumentFormat>().unwrap(),
            DocumentFormat::Jsonl
        );
        assert_eq!(
            "lines".parse::<DocumentFormat>().unwrap(),
            DocumentFormat::Lines
        );
        assert_eq!(
            "paragraphs".parse::<DocumentFormat>().unwrap(),
            DocumentFormat::Paragraphs
        );
        assert_eq!("stop".parse::<OnBadInput>().unwrap(), OnBadInput::Stop);
        assert_eq!("skip".parse::<OnBadInput>().unwrap(), OnBadInput::Skip);
        for format in ["auto", "jsonl", "lines", "paragraphs"] {
            assert_eq!(format.parse::<DocumentFormat>().unwrap().name(), format);
        }
        for policy in ["stop", "skip"] {
            assert_eq!(policy.parse::<OnBadInput>().unwrap().name(), policy);
        }

        let error = "json".parse::<DocumentFormat>().unwrap_err().to_string();
        assert_eq!(
            error,
            "unknown document format \"json\": expected auto, jsonl, lines or paragraphs"
        );
        let error = "ignore".parse::<OnBadInput>().unwrap_err().to_string();
        assert_eq!(
            error,
            "unknown bad-input policy \"ignore\": expected stop or skip"
        );
    }

    #[test]
    fn default_options_read_text_fields_and_stop_on_bad_input() {
        let options = ReadOptions::default();
        assert_eq!(options.format, DocumentFormat::Auto);
        assert_eq!(options.text_field, "text");
        assert_eq!(options.on_bad_input, OnBadInput::Stop);
    }

    #[test]
    fn options_parse_from_names_and_name_what_is_wrong() {
        let options = ReadOptions::parse("lines", "body", "skip").unwrap();
        assert_eq!(options.format, DocumentFormat::Lines);
        assert_eq!(options.text_field, "body");
        assert_eq!(options.on_bad_input, OnBadInput::Skip);
        let error = ReadOptions::parse("csv", "text", "stop").unwrap_err();
        assert!(error.to_string().contains("\"csv\""), "{error}");
        let error = ReadOptions::parse("auto", "text", "ignore").unwrap_err();
        assert!(error.to_string().contains("\"ignore\""), "{error}");
    }
}
