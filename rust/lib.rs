//! bbpe: exact GPT-2 / RoBERTa byte-level BPE.
//!
//! Data flows one way: text -> pretokens ([`pretokenize`]) -> ids ([`encode`],
//! with its merging, caches and batches) -> text again
//! ([`encode::Encoder::decode`]).
//! [`vocab`] holds the tokens and merges, [`formats`] reads and writes them.

pub mod byte_alphabet;
pub mod char_class;
// Used by the bindings only, and tested without them.
#[cfg(any(feature = "python", test))]
mod code_points;
pub mod corpus;
pub mod encode;
pub mod error;
pub mod formats;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod huge_pages;
pub mod pretokenize;
mod publish;
pub mod shards;
pub mod threads;
pub mod train;
pub mod vocab;

#[cfg(feature = "python")]
mod python;

pub use encode::{Encoder, Specials};
pub use error::Error;
pub use pretokenize::Pretokenizer;
pub use vocab::{SpecialToken, Vocab};
