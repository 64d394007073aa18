//! Stage: ids -> shards. A corpus encoded into Megatron's indexed format
//! (`prefix.bin` + `prefix.idx`, see [`format`]), each batch's ids converted
//! to the shards' dtype on all threads ([`shard_bytes`]), in shard pairs written
//! safely ([`writer`], each `.bin` hashed beside it by [`hasher`]) by an
//! overlapping read-encode-write pipeline ([`pipeline`]); with sentence
//! splitting ([`sentences`]) each sentence is a sequence and documents group
//! them.

pub mod format;
mod hasher;
pub mod pipeline;
pub mod sentences;
pub mod shard_bytes;
pub mod writer;
