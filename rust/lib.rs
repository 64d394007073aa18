//! bbpe: exact GPT-2 / RoBERTa byte-level BPE.
//!
//! Data flows one way, a module per stage: corpus files -> documents
//! ([`corpus`]) -> pretokens ([`pretokenize`]) -> ids ([`encode`], with its
//! merging, caches and batches) -> Megatron shards ([`shards`]); training
//! counts pretokens and learns merges from the counts ([`train`]).
//! [`vocab`] holds the tokens and merges, [`formats`] reads and writes them;
//! [`system`] is what the stages ask of the operating system (threads, large
//! pages, durable files).

pub mod byte_alphabet;
// Used by the bindings only, and tested without them.
#[cfg(any(feature = "python", test))]
mod code_points;
pub mod corpus;
pub mod encode;
pub mod error;
pub mod formats;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod pretokenize;
pub mod shards;
pub mod system;
#[cfg(test)]
mod testing;
pub mod train;
pub mod vocab;

#[cfg(feature = "python")]
mod python;

pub use encode::{Encoder, Specials};
pub use error::Error;
pub use pretokenize::Pretokenizer;
pub use vocab::{SpecialToken, Vocab};
