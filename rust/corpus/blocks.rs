//! A file's text cut into blocks of whole lines, each knowing the number of
//! its first line: what documents are made from, on one thread or on several
//! ([`super::parse_ahead`]). A block ends at the end of a line, and in the
//! paragraphs format after a blank line (or at the end of the file), so that
//! no document spans two blocks and any block can be parsed on its own.

use super::decompress::{self, Opened};
use super::DocumentFormat;
use crate::error::Error;
use std::io::Read;
use std::path::Path;

/// Text per block: enough that handing a block on costs little against
/// parsing it, small enough that blocks spread over threads.
pub(super) const BLOCK_BYTES: usize = 1 << 20;

/// Whole lines of one file.
pub(super) struct Block {
    pub bytes: Vec<u8>,
    /// The number of the block's first line in its file, from 1.
    pub first_line: u64,
    /// Bytes of the file read from disk when the block was cut.
    pub consumed: u64,
}

/// Reads one file a block at a time.
pub(super) struct BlockReader {
    name: String,
    opened: Opened,
    paragraphs: bool,
    block_bytes: usize,
    /// Text read but not yet handed out.
    pending: Vec<u8>,
    /// In the paragraphs format, where in `pending` the search for a blank
    /// line goes on: the lines ending before it are not blank.
    searched: usize,
    next_line: u64,
    at_end: bool,
    /// A read error, held back until the whole lines before it are handed out.
    failed: Option<Error>,
}

impl BlockReader {
    /// Opens `path`, whose documents are in `format` (not `Auto`).
    pub fn open(path: &Path, format: DocumentFormat, block_bytes: usize) -> Result<Self, Error> {
        let name = path.display().to_string();
        let mut opened = decompress::open(path).map_err(|e| Error::io(&name, e))?;
        if let Some(message) = decompress::misnamed(path, &mut opened.reader) {
            return Err(Error::file(&name, "", message));
        }
        Ok(BlockReader {
            name,
            opened,
            paragraphs: format == DocumentFormat::Paragraphs,
            block_bytes: block_bytes.max(1),
            pending: Vec::new(),
            searched: 0,
            next_line: 1,
            at_end: false,
            failed: None,
        })
    }

    /// The file's name as errors give it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes of the file read from disk so far.
    pub fn consumed(&self) -> u64 {
        self.opened.consumed.get()
    }

    /// The next block (its bytes in `buffer`, whose memory is reused), or
    /// `None` at the end of the file. After a read error, the whole lines
    /// before it come first (in the paragraphs format, the whole paragraphs:
    /// one cut short is left out), then the error.
    pub fn next_block(&mut self, buffer: Vec<u8>) -> Result<Option<Block>, Error> {
        loop {
            let cut = if self.failed.is_some() {
                Some(self.cut_point().unwrap_or(0))
            } else if self.at_end {
                Some(self.pending.len())
            } else if self.pending.len() >= self.block_bytes {
                self.cut_point()
            } else {
                None
            };
            match cut {
                Some(0) => {
                    return match self.failed.take() {
                        Some(error) => Err(error),
                        None => Ok(None),
                    }
                }
                Some(cut) => return Ok(Some(self.take(cut, buffer))),
                None => self.fill(),
            }
        }
    }

    /// Reads about a block more of the file, straight into `pending`: reads
    /// of a block's size pass the decompressor's buffer by, where the 8 KB
    /// reads `read_to_end` makes went through it, a second copy (plain JSONL
    /// cut into blocks on one thread: 2.4 GB/s, against 1.8).
    fn fill(&mut self) {
        let start = self.pending.len();
        self.pending.resize(start + self.block_bytes, 0);
        let mut filled = start;
        while filled < self.pending.len() {
            match self.opened.reader.read(&mut self.pending[filled..]) {
                Ok(0) => {
                    self.at_end = true;
                    break;
                }
                Ok(read) => filled += read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // What was read before the error is kept; only its lines count.
                    self.pending.truncate(filled);
                    let lines = self.next_line - 1 + count_lines(&self.pending);
                    let location = format!("after line {lines}");
                    self.failed = Some(Error::file(&self.name, location, e.to_string()));
                    return;
                }
            }
        }
        self.pending.truncate(filled);
    }

    /// Where the text read so far may end a block: after its last line end,
    /// or in the paragraphs format after its last blank line.
    fn cut_point(&mut self) -> Option<usize> {
        let last = memchr::memrchr(b'\n', &self.pending)?;
        if !self.paragraphs {
            return Some(last + 1);
        }
        // Lines are looked at from the last back to where the last search
        // stopped; `end` is the position of a line's "\n".
        let mut end = last;
        while end >= self.searched {
            let start = memchr::memrchr(b'\n', &self.pending[..end]).map_or(0, |at| at + 1);
            if std::str::from_utf8(&self.pending[start..end]).is_ok_and(is_blank) {
                return Some(end + 1);
            }
            if start == 0 {
                break;
            }
            end = start - 1;
        }
        self.searched = last + 1;
        None
    }

    /// Hands out `pending[..cut]`, keeping the rest in `buffer`'s memory.
    fn take(&mut self, cut: usize, mut buffer: Vec<u8>) -> Block {
        buffer.clear();
        buffer.extend_from_slice(&self.pending[cut..]);
        self.pending.truncate(cut);
        let bytes = std::mem::replace(&mut self.pending, buffer);
        self.searched = 0;
        let first_line = self.next_line;
        self.next_line += count_lines(&bytes);
        Block {
            bytes,
            first_line,
            consumed: self.consumed(),
        }
    }
}

/// The line ends in `bytes`.
fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Whitespace only, as Python's `str.strip` sees it: Unicode `White_Space`
/// plus the ASCII separators U+001C..U+001F.
pub(super) fn is_blank(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::testing::{xz, TempDir};

    fn blocks(contents: &[u8], format: DocumentFormat, size: usize) -> Vec<(String, u64)> {
        let dir = TempDir::new();
        let path = dir.write("x", contents);
        let mut reader = BlockReader::open(&path, format, size).unwrap();
        let mut blocks = Vec::new();
        while let Some(block) = reader.next_block(Vec::new()).unwrap() {
            let text = String::from_utf8(block.bytes).unwrap();
            blocks.push((text, block.first_line));
        }
        // Together the blocks are the file, and each knows its first line.
        let together: String = blocks.iter().map(|(text, _)| text.as_str()).collect();
        assert_eq!(together.as_bytes(), contents);
        let mut line = 1;
        for (text, first_line) in &blocks {
            assert_eq!(*first_line, line);
            line += text.matches('\n').count() as u64;
        }
        blocks
    }

    #[test]
    fn blocks_end_at_line_ends_once_a_block_is_read() {
        let got = blocks(b"one\ntwo\nthree\n\nfour", DocumentFormat::Lines, 6);
        let expected = [("one\n", 1), ("two\n", 2), ("three\n\n", 3), ("four", 5)];
        assert_eq!(got, expected.map(|(t, n)| (t.to_string(), n)));
        // A line longer than a block is one block.
        let got = blocks(b"abcdefgh\nij\n", DocumentFormat::Jsonl, 3);
        assert_eq!(
            got,
            [("abcdefgh\n".to_string(), 1), ("ij\n".to_string(), 2)]
        );
        assert!(blocks(b"", DocumentFormat::Lines, 3).is_empty());
        let text = "x\n".repeat(1000) + "y";
        let got = blocks(text.as_bytes(), DocumentFormat::Lines, 64);
        assert!(got.len() > 20 && got.iter().all(|(t, _)| t.len() <= 128));
    }

    #[test]
    fn paragraph_blocks_end_after_blank_lines() {
        // CRLF and Unicode blank lines end paragraphs too.
        let text = "a\nb\nc\n\r\nd\ne\n\u{3000}\nf\n";
        let got = blocks(text.as_bytes(), DocumentFormat::Paragraphs, 2);
        let expected = [("a\nb\nc\n\r\n", 1), ("d\ne\n\u{3000}\n", 5), ("f\n", 8)];
        assert_eq!(got, expected.map(|(t, n)| (t.to_string(), n)));
        // No blank line: one block, however long.
        let text = "p\n".repeat(500);
        assert_eq!(
            blocks(text.as_bytes(), DocumentFormat::Paragraphs, 10).len(),
            1
        );
    }

    #[test]
    fn whole_lines_before_a_read_error_come_first() {
        let dir = TempDir::new();
        let mut data = xz(b"one\ntwo\nthr");
        data.truncate(data.len() - 4); // the xz stream's end is lost
        let path = dir.write("x.txt.xz", &data);
        let mut reader = BlockReader::open(&path, DocumentFormat::Lines, 1 << 20).unwrap();
        let block = reader.next_block(Vec::new()).unwrap().unwrap();
        assert_eq!(block.bytes, b"one\ntwo\n");
        let error = reader.next_block(Vec::new()).err().unwrap().to_string();
        assert!(
            error.contains("x.txt.xz") && error.contains("after line 2"),
            "{error}"
        );
    }
}
