//! What the pipeline asks of the operating system, kept apart from the stages
//! that use it: worker threads, large pages for large buffers, zeroed
//! memory that costs nothing until used, and files published so that a
//! crash never leaves one that looks finished.

pub(crate) mod fresh_pages;
pub(crate) mod huge_pages;
pub(crate) mod publish;
pub mod threads;
