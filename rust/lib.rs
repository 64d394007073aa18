//! bbpe: exact GPT-2 / RoBERTa byte-level BPE.
//!
//! Data flows one way: text -> pretokens ([`pretokenize`]) -> ids ([`merge`],
//! [`encode`], [`batch`]) -> text again ([`encode::Encoder::decode`]).
//! [`vocab`] holds the tokens and merges, [`formats`] reads and writes them.

pub mod batch;
mod bucket_table;
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
pub mod merge;
pub mod pretokenize;
mod publish;
mod radix_heap;
pub mod shards;
pub mod threads;
pub mod train;
pub mod vocab;
mod whole_tokens;
mod word_cache;

#[cfg(feature = "python")]
mod python;

pub use encode::{Encoder, Specials};
pub use error::Error;
pub use pretokenize::Pretokenizer;
pub use vocab::{SpecialToken, Vocab};
