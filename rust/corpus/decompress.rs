//! Opening a corpus file through the decompressor its name calls for, while
//! counting the bytes read from disk (progress is measured in those, so that
//! it adds up to the files' sizes whatever the compression).

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

/// Large enough that reading costs few calls per megabyte of text.
const BUFFER_SIZE: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

/// The compression of a file named `name`, and the name without its suffix.
pub(super) fn compression_of(name: &str) -> (Compression, &str) {
    const SUFFIXES: [(&str, Compression); 4] = [
        (".gz", Compression::Gzip),
        (".xz", Compression::Xz),
        (".zst", Compression::Zstd),
        (".zstd", Compression::Zstd),
    ];
    SUFFIXES
        .iter()
        .find_map(|&(suffix, compression)| Some((compression, name.strip_suffix(suffix)?)))
        .unwrap_or((Compression::None, name))
}

/// A file's decompressed contents, and how many bytes of it were read so far.
pub(super) struct Opened {
    pub reader: Box<dyn BufRead>,
    pub consumed: Rc<Cell<u64>>,
}

pub(super) fn open(path: &Path) -> io::Result<Opened> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let consumed = Rc::new(Cell::new(0));
    let file = File::open(path)?;
    // An empty file (a shard that got nothing, say) has no documents, where
    // the decoders would call it truncated. (Pipes have no length to go by.)
    let metadata = file.metadata()?;
    let compression = if metadata.is_file() && metadata.len() == 0 {
        Compression::None
    } else {
        compression_of(&name).0
    };
    let file = Counted {
        inner: file,
        consumed: Rc::clone(&consumed),
    };
    // Multi-member / multi-stream decoders: concatenated archives (as from
    // `cat a.gz b.gz` or parallel compressors) are read whole.
    let decompressed: Box<dyn Read> = match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(file)?),
    };
    Ok(Opened {
        reader: Box::new(BufReader::with_capacity(BUFFER_SIZE, decompressed)),
        consumed,
    })
}

/// What is wrong with a file whose first bytes are a compressed format's
/// magic number while its name has no compression suffix (the reader is only
/// peeked at). Such a file is reported rather than decompressed anyway: the
/// name decides how every file is read (its document format too, from the
/// name under the suffix), and one rule is easier to predict than two. None of
/// these magic numbers starts valid UTF-8, so no text file is refused.
pub(super) fn misnamed(path: &Path, reader: &mut dyn BufRead) -> Option<String> {
    const MAGIC: [(&[u8], &str, &str); 3] = [
        (b"\x1f\x8b", "gzip", ".gz"),
        (b"\xfd7zXZ\x00", "xz", ".xz"),
        (b"\x28\xb5\x2f\xfd", "zstd", ".zst"),
    ];
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if compression_of(&name).0 != Compression::None {
        return None;
    }
    // A failed read is reported by the first line's read.
    let start = reader.fill_buf().ok()?;
    let (_, kind, suffix) = MAGIC.iter().find(|(magic, ..)| start.starts_with(magic))?;
    Some(format!(
        "looks like {kind}-compressed data; name it {name}{suffix}"
    ))
}

/// A reader that adds up the bytes it hands out; shared through a cell because
/// the decompressor owns the reader.
struct Counted<R> {
    inner: R,
    consumed: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::testing::{gzip, xz, zstd, TempDir};

    fn read_all(path: &Path) -> (Vec<u8>, u64) {
        let mut opened = open(path).unwrap();
        let mut contents = Vec::new();
        opened.reader.read_to_end(&mut contents).unwrap();
        (contents, opened.consumed.get())
    }

    #[test]
    fn compression_is_chosen_by_the_last_suffix() {
        assert_eq!(compression_of("a.jsonl.gz"), (Compression::Gzip, "a.jsonl"));
        assert_eq!(compression_of("a.txt.xz"), (Compression::Xz, "a.txt"));
        assert_eq!(
            compression_of("a.jsonl.zst"),
            (Compression::Zstd, "a.jsonl")
        );
        assert_eq!(compression_of("a.zstd"), (Compression::Zstd, "a"));
        assert_eq!(compression_of("a.gz.txt"), (Compression::None, "a.gz.txt"));
        assert_eq!(compression_of("a.tgz"), (Compression::None, "a.tgz"));
    }

    #[test]
    fn compressed_files_round_trip_and_count_every_byte_on_disk() {
        let dir = TempDir::new();
        let text = "line one\nzweite Zeile\n세 번째 줄\n".repeat(1000);
        let files = [
            dir.write("plain.txt", text.as_bytes()),
            dir.write("a.txt.gz", &gzip(text.as_bytes())),
            dir.write("a.txt.xz", &xz(text.as_bytes())),
            dir.write("a.txt.zst", &zstd(text.as_bytes())),
            dir.write("a.txt.zstd", &zstd(text.as_bytes())),
        ];
        for path in &files {
            let (contents, consumed) = read_all(path);
            assert_eq!(contents, text.as_bytes(), "{}", path.display());
            assert_eq!(consumed, std::fs::metadata(path).unwrap().len());
        }
    }

    #[test]
    fn concatenated_archives_are_read_whole() {
        let dir = TempDir::new();
        let (a, b) = (b"first\n".as_slice(), b"second\n".as_slice());
        for (name, compress) in [
            ("a.gz", gzip as fn(&[u8]) -> Vec<u8>),
            ("a.xz", xz),
            ("a.zst", zstd),
        ] {
            let path = dir.write(name, &[compress(a), compress(b)].concat());
            assert_eq!(read_all(&path).0, b"first\nsecond\n", "{name}");
        }
    }

    #[test]
    fn empty_files_are_empty_whatever_the_suffix() {
        let dir = TempDir::new();
        for name in ["a.txt", "a.gz", "a.xz", "a.zst"] {
            assert_eq!(read_all(&dir.write(name, b"")).0, b"", "{name}");
        }
    }
}
