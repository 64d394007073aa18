//! Files → documents: the ways of reading files ([`Reading`], on one thread or
//! several), and a block of lines ([`super::blocks`]) → documents in the
//! file's format, with the bad-input policy for lines that cannot be read.

use super::blocks::{is_blank, Block, BlockReader, BLOCK_BYTES};
use super::decompress::{compression_of, Compression};
use super::parse_ahead::{read_documents_parsed_ahead, Budget};
use super::read_ahead::{read_documents_ahead, AHEAD_BYTES};
use super::{jsonl, DocumentFormat, OnBadInput, ReadOptions, ReadStats};
#[cfg(test)]
use crate::encode::INJECTED_PANIC;
use crate::error::Error;
use std::path::{Path, PathBuf};

/// How [`read_documents_with`] reads files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Everything on the calling thread.
    OneThread,
    /// Up to this many files decompressed and parsed at once, a thread each
    /// ([`super::read_ahead`]).
    FilesAtOnce(usize),
    /// Each file cut into blocks of lines on one thread, and the blocks
    /// parsed on this many ([`super::parse_ahead`]).
    BlocksAtOnce(usize),
}

/// Threads from which blocks are parsed at once. One thread makes documents
/// of 714-819 MB/s of plain JSONL (`benches/read_documents.rs`, English),
/// about five cores' worth of encoding at 150 MB/s each, so below six threads
/// one reader keeps up, and the splitter and parsers would only take cores
/// from encoding (114 MB of English to shards, 4 threads on 2 cores: 158-167
/// MB/s with blocks parsed at once, 173-184 with one reader).
const BLOCKS_AT_ONCE_FROM: usize = 6;

impl Reading {
    /// The way to read `files` for `threads` threads of work: several
    /// compressed files decompress at once (one decompressor is slower than
    /// a core's encoding), and otherwise blocks are parsed at once when one
    /// reader could not keep up.
    pub fn for_files(files: &[PathBuf], threads: usize) -> Self {
        if threads > 1 && files.len() > 1 && files.iter().any(|path| is_compressed(path)) {
            Reading::FilesAtOnce(threads)
        } else if threads >= BLOCKS_AT_ONCE_FROM {
            Reading::BlocksAtOnce(threads)
        } else {
            Reading::OneThread
        }
    }
}

/// Reads every document of `files` in order and hands each to `emit`, on
/// threads as [`Reading::for_files`] chooses for `threads`.
pub fn read_documents(
    files: &[PathBuf],
    options: &ReadOptions,
    threads: usize,
    progress: &mut dyn FnMut(u64),
    emit: &mut dyn FnMut(&str) -> Result<(), Error>,
) -> Result<ReadStats, Error> {
    let reading = Reading::for_files(files, threads);
    read_documents_with(files, options, reading, progress, emit)
}

/// Reads every document of `files` in order and hands each to `emit`; every
/// way of `reading` gives the same documents, statistics and errors.
///
/// `progress` gets the number of on-disk (compressed) bytes consumed so far,
/// read ahead included, whenever more have been read from disk (about once
/// per megabyte of text) and at the end of each file. An error from `emit`
/// stops reading and is returned as is.
pub fn read_documents_with(
    files: &[PathBuf],
    options: &ReadOptions,
    reading: Reading,
    progress: &mut dyn FnMut(u64),
    emit: &mut dyn FnMut(&str) -> Result<(), Error>,
) -> Result<ReadStats, Error> {
    match reading {
        Reading::FilesAtOnce(readers) if readers > 1 && files.len() > 1 => {
            return read_documents_ahead(files, options, readers, AHEAD_BYTES, progress, emit);
        }
        Reading::BlocksAtOnce(parsers) if parsers > 0 && !files.is_empty() => {
            let budget = Budget::for_parsers(parsers);
            return read_documents_parsed_ahead(files, options, parsers, budget, progress, emit);
        }
        _ => {}
    }
    let mut output = Output::new(emit, options.on_bad_input);
    let mut buffers = Buffers::default();
    let mut done = 0;
    for path in files {
        done += read_file(path, options, &mut buffers, &mut output, &mut |n| {
            progress(done + n)
        })?;
        output.stats.files += 1;
    }
    Ok(output.stats)
}

fn is_compressed(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    compression_of(&name).0 != Compression::None
}

/// Reads one file's documents; returns (and last reports) the bytes it took
/// from disk.
pub(super) fn read_file(
    path: &Path,
    options: &ReadOptions,
    buffers: &mut Buffers,
    output: &mut Output,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, Error> {
    let format = format_of(path, options.format);
    let mut blocks = BlockReader::open(path, format, BLOCK_BYTES)?;
    let mut bytes = Vec::new();
    while let Some(block) = blocks.next_block(bytes)? {
        progress(block.consumed);
        parse_block(&block, blocks.name(), format, options, buffers, output)?;
        bytes = block.bytes;
    }
    progress(blocks.consumed());
    Ok(blocks.consumed())
}

/// Makes the documents of one block of `file`, whose format is `format`
/// (not `Auto`).
pub(super) fn parse_block(
    block: &Block,
    file: &str,
    format: DocumentFormat,
    options: &ReadOptions,
    buffers: &mut Buffers,
    output: &mut Output,
) -> Result<(), Error> {
    let text = block.bytes.strip_suffix(b"\n").unwrap_or(&block.bytes);
    let ends = memchr::memchr_iter(b'\n', text).chain([text.len()]);
    let mut start = 0;
    buffers.paragraph.clear();
    for (number, end) in (block.first_line..).zip(ends) {
        let mut bytes = &text[start..end];
        start = end + 1;
        if number == 1 {
            // A byte order mark, as some editors start UTF-8 files with.
            bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        }
        #[cfg(test)]
        assert!(bytes != INJECTED_PANIC.as_bytes(), "injected panic");
        let line = Line {
            path: file,
            number,
            bytes,
        };
        match format {
            DocumentFormat::Jsonl => {
                jsonl_line(&line, &options.text_field, &mut buffers.scratch, output)?
            }
            DocumentFormat::Lines => plain_line(&line, output)?,
            DocumentFormat::Paragraphs | DocumentFormat::Auto => {
                paragraph_line(&line, &mut buffers.paragraph, output)?
            }
        }
    }
    // A block ends a paragraph: after a blank line, or at the end of the file.
    if !buffers.paragraph.is_empty() {
        output.document(&buffers.paragraph)?;
    }
    Ok(())
}

/// The format of `path`'s documents: as given, or by its name once any
/// compression suffix is set aside: `.jsonl` / `.json` are JSON lines,
/// anything else paragraphs of text (Auto never comes out).
pub(super) fn format_of(path: &Path, format: DocumentFormat) -> DocumentFormat {
    if format != DocumentFormat::Auto {
        return format;
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let (_, stem) = compression_of(&name);
    if stem.ends_with(".jsonl") || stem.ends_with(".json") {
        DocumentFormat::Jsonl
    } else {
        DocumentFormat::Paragraphs
    }
}

/// Reused across blocks and files so that reading allocates only when a
/// document is longer than any before it.
#[derive(Default)]
pub(super) struct Buffers {
    /// The paragraph being gathered.
    paragraph: String,
    /// JSON text with escapes, unescaped.
    scratch: String,
}

/// One line of a file, without its `"\n"`.
struct Line<'a> {
    path: &'a str,
    number: u64,
    bytes: &'a [u8],
}

impl Line<'_> {
    /// The line as text. Validated with SIMD: std's check took 64% of the
    /// time reading Korean JSONL (317 MB/s on one thread).
    fn text(&self) -> Result<&str, Error> {
        if let Ok(text) = simdutf8::basic::from_utf8(self.bytes) {
            return Ok(text);
        }
        // Only std's error says where.
        std::str::from_utf8(self.bytes).map_err(|e| {
            let at = e.valid_up_to();
            self.error(format!("invalid UTF-8 (at byte {at} of the line)"))
        })
    }

    fn error(&self, message: String) -> Error {
        Error::file(self.path, format!("line {}", self.number), message)
    }
}

/// Where documents and bad lines go.
pub(super) struct Output<'e> {
    emit: &'e mut dyn FnMut(&str) -> Result<(), Error>,
    on_bad_input: OnBadInput,
    stats: ReadStats,
}

impl<'e> Output<'e> {
    pub(super) fn new(
        emit: &'e mut dyn FnMut(&str) -> Result<(), Error>,
        on_bad_input: OnBadInput,
    ) -> Self {
        Output {
            emit,
            on_bad_input,
            stats: ReadStats::default(),
        }
    }

    pub(super) fn into_stats(self) -> ReadStats {
        self.stats
    }

    fn document(&mut self, text: &str) -> Result<(), Error> {
        self.stats.documents += 1;
        self.stats.text_bytes += text.len() as u64;
        (self.emit)(text)
    }

    /// A line that cannot be read: the error, or `Ok` once counted as skipped.
    fn bad_line(&mut self, error: Error) -> Result<(), Error> {
        match self.on_bad_input {
            OnBadInput::Stop => Err(error),
            OnBadInput::Skip => {
                self.stats.skipped += 1;
                self.stats
                    .first_skipped
                    .get_or_insert_with(|| error.to_string());
                Ok(())
            }
        }
    }
}

fn jsonl_line(
    line: &Line,
    field: &str,
    scratch: &mut String,
    output: &mut Output,
) -> Result<(), Error> {
    let text = match line.text() {
        Ok(text) if is_blank(text) => return Ok(()),
        Ok(text) => jsonl::text_field(text, field, scratch).map_err(|m| line.error(m)),
        Err(e) => Err(e),
    };
    match text {
        Ok((text, replaced_surrogates)) => {
            output.stats.replaced_surrogates += replaced_surrogates as u64;
            output.document(text)
        }
        Err(e) => output.bad_line(e),
    }
}

fn plain_line(line: &Line, output: &mut Output) -> Result<(), Error> {
    match line.text() {
        Ok("") => Ok(()),
        Ok(text) => output.document(text),
        Err(e) => output.bad_line(e),
    }
}

/// A blank line ends the paragraph; a bad line is left out of it.
fn paragraph_line(line: &Line, paragraph: &mut String, output: &mut Output) -> Result<(), Error> {
    match line.text() {
        Ok(text) if is_blank(text) => {
            if !paragraph.is_empty() {
                output.document(paragraph)?;
                paragraph.clear();
            }
            Ok(())
        }
        Ok(text) => {
            if !paragraph.is_empty() {
                paragraph.push('\n');
            }
            paragraph.push_str(text);
            Ok(())
        }
        Err(e) => output.bad_line(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::testing::{gzip, xz, zstd, TempDir};
    use crate::corpus::total_size;

    fn options(format: DocumentFormat, on_bad_input: OnBadInput) -> ReadOptions {
        ReadOptions {
            format,
            on_bad_input,
            ..ReadOptions::default()
        }
    }

    fn read(files: &[PathBuf], options: &ReadOptions) -> Result<(Vec<String>, ReadStats), Error> {
        let mut documents = Vec::new();
        let stats = read_documents(files, options, 1, &mut |_| {}, &mut |text| {
            documents.push(text.to_string());
            Ok(())
        })?;
        Ok((documents, stats))
    }

    fn read_one(contents: &[u8], name: &str, format: DocumentFormat) -> Result<Vec<String>, Error> {
        let dir = TempDir::new();
        let options = options(format, OnBadInput::Stop);
        read(&[dir.write(name, contents)], &options).map(|(documents, _)| documents)
    }

    #[test]
    fn jsonl_documents_are_the_text_fields_of_non_blank_lines() {
        let contents =
            b"{\"text\": \"a\"}\n  \n{\"id\": 2, \"text\": \"b\\nc\"}\n\n{\"text\": \"\"}";
        let documents = read_one(contents, "x.jsonl", DocumentFormat::Auto).unwrap();
        assert_eq!(documents, ["a", "b\nc", ""]);
    }

    #[test]
    fn a_chosen_text_field_is_read() {
        let dir = TempDir::new();
        let path = dir.write("x.json", b"{\"text\": 1, \"body\": \"b\"}\n");
        let options = ReadOptions {
            text_field: "body".to_string(),
            ..ReadOptions::default()
        };
        assert_eq!(read(&[path], &options).unwrap().0, ["b"]);
    }

    #[test]
    fn lines_documents_are_the_non_empty_lines() {
        let documents = read_one(b"a\n\n b \n\t\nlast", "x.txt", DocumentFormat::Lines).unwrap();
        assert_eq!(documents, ["a", " b ", "\t", "last"]);
    }

    #[test]
    fn paragraphs_are_runs_of_non_blank_lines_joined_by_newlines() {
        let contents = b"\n\none\ntwo\n \t\nthree\n\n\n\nfour\nfive\nsix";
        let documents = read_one(contents, "x.txt", DocumentFormat::Auto).unwrap();
        assert_eq!(documents, ["one\ntwo", "three", "four\nfive\nsix"]);
        let documents = read_one(b"only\n\n", "x.md", DocumentFormat::Paragraphs).unwrap();
        assert_eq!(documents, ["only"]);
        // Python's whitespace: U+001F and U+3000 make a line blank.
        let documents = read_one("a\n\u{1f}\u{3000}\nb".as_bytes(), "x", DocumentFormat::Auto);
        assert_eq!(documents.unwrap(), ["a", "b"]);
    }

    #[test]
    fn crlf_keeps_its_carriage_return() {
        let documents = read_one(b"a\r\nb\r\n\r\nc\r\n", "x.txt", DocumentFormat::Paragraphs);
        assert_eq!(documents.unwrap(), ["a\r\nb\r", "c\r"]);
        let documents = read_one(b"a\r\n\r\n", "x.txt", DocumentFormat::Lines).unwrap();
        assert_eq!(documents, ["a\r", "\r"]);
        let documents = read_one(b"{\"text\": \"a\"}\r\n", "x.jsonl", DocumentFormat::Auto);
        assert_eq!(documents.unwrap(), ["a"]);
    }

    #[test]
    fn compressed_files_are_read_and_their_format_found_under_the_suffix() {
        let dir = TempDir::new();
        let jsonl = b"{\"text\": \"j1\"}\n{\"text\": \"j2\"}\n";
        let text = b"p1\np1b\n\np2\n";
        let files = [
            dir.write("a.jsonl.gz", &gzip(jsonl)),
            dir.write("b.txt.gz", &gzip(text)),
            dir.write("c.jsonl.xz", &xz(jsonl)),
            dir.write("d.txt.xz", &xz(text)),
            dir.write("e.json.zst", &zstd(jsonl)),
            dir.write("f.zstd", &zstd(text)),
        ];
        let (documents, stats) = read(&files, &ReadOptions::default()).unwrap();
        let expected = ["j1", "j2", "p1\np1b", "p2"].repeat(3);
        assert_eq!(documents, expected);
        assert_eq!(stats.files, 6);
        assert_eq!(stats.documents, 12);
        assert_eq!(stats.text_bytes, 3 * (2 + 2 + 6 + 2));
        assert_eq!(stats.skipped, 0);
    }

    #[test]
    fn progress_reaches_the_total_size_once_per_file() {
        let dir = TempDir::new();
        let big = "word ".repeat(100).repeat(5000);
        let files = [
            dir.write("a.txt", big.as_bytes()),
            dir.write("b.txt.gz", &gzip(big.as_bytes())),
            dir.write("c.txt", b""),
        ];
        let mut seen = Vec::new();
        read_documents(
            &files,
            &ReadOptions::default(),
            1,
            &mut |n| seen.push(n),
            &mut |_| Ok(()),
        )
        .unwrap();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        let sizes: Vec<u64> = files
            .iter()
            .map(|f| total_size(std::slice::from_ref(f)))
            .collect();
        for end in [sizes[0], sizes[0] + sizes[1], total_size(&files)] {
            assert!(seen.contains(&end), "{end} not in {seen:?}");
        }
        assert_eq!(seen.last(), Some(&total_size(&files)));
    }

    #[test]
    fn invalid_utf8_names_the_line_and_byte() {
        let error = read_one(b"ok\n\nab\xffcd\n", "x.txt", DocumentFormat::Auto).unwrap_err();
        let path = match &error {
            Error::File { path, .. } => path.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            error.to_string(),
            format!("{path}, line 3: invalid UTF-8 (at byte 2 of the line)")
        );
        let error = read_one(b"{\"text\": \"\xe9\"}\n", "x.jsonl", DocumentFormat::Auto);
        let error = error.unwrap_err().to_string();
        assert!(
            error.ends_with(", line 1: invalid UTF-8 (at byte 10 of the line)"),
            "{error}"
        );
    }

    #[test]
    fn a_byte_order_mark_at_the_start_of_a_file_is_skipped() {
        let bom = "\u{feff}";
        for (name, format, contents, expected) in [
            ("x.jsonl", DocumentFormat::Auto, "{\"text\": \"a\"}\n", "a"),
            ("x.txt", DocumentFormat::Lines, "a\n", "a"),
            ("x.txt", DocumentFormat::Paragraphs, "a\nb\n", "a\nb"),
        ] {
            let documents = read_one(format!("{bom}{contents}").as_bytes(), name, format);
            assert_eq!(documents.unwrap(), [expected], "{name} {format:?}");
        }
        // Only at the start of a file: elsewhere it is text (U+FEFF).
        let documents = read_one(
            format!("{bom}a\n{bom}b\n").as_bytes(),
            "x",
            DocumentFormat::Lines,
        );
        assert_eq!(documents.unwrap(), ["a", &format!("{bom}b")]);
        let dir = TempDir::new();
        let files = [
            dir.write("a.txt", b"\xef\xbb\xbfa\n"),
            dir.write("b.txt.gz", &gzip(b"\xef\xbb\xbfb\n")),
        ];
        let options = options(DocumentFormat::Lines, OnBadInput::Stop);
        assert_eq!(read(&files, &options).unwrap().0, ["a", "b"]);
    }

    #[test]
    fn compressed_data_under_a_plain_name_is_named_as_such() {
        for (name, compressed, kind, suffix) in [
            ("a.txt", gzip(b"text\n"), "gzip", ".gz"),
            ("b.jsonl", xz(b"text\n"), "xz", ".xz"),
            ("c", zstd(b"text\n"), "zstd", ".zst"),
        ] {
            let error = read_one(&compressed, name, DocumentFormat::Auto).unwrap_err();
            let expected =
                format!("{name}: looks like {kind}-compressed data; name it {name}{suffix}");
            assert!(error.to_string().ends_with(&expected), "{error}");
        }
    }

    #[test]
    fn json_lines_with_lone_surrogates_are_counted() {
        let dir = TempDir::new();
        let path = dir.write(
            "x.jsonl",
            b"{\"text\": \"a\\ud800\"}\n{\"text\": \"\\ud83d\\ude00\"}\n{\"text\": \"\\udfff\"}\n",
        );
        let (documents, stats) = read(&[path], &ReadOptions::default()).unwrap();
        assert_eq!(documents, ["a\u{fffd}", "\u{1f600}", "\u{fffd}"]);
        assert_eq!(stats.replaced_surrogates, 2);
    }

    #[test]
    fn malformed_json_names_the_line_and_column() {
        let contents = b"{\"text\": \"a\"}\n{\"text\": \"b\",}\n";
        let error = read_one(contents, "x.jsonl", DocumentFormat::Auto).unwrap_err();
        let error = error.to_string();
        assert!(error.ends_with("x.jsonl, line 2: not valid JSON (trailing comma, column 14)"));
    }

    #[test]
    fn a_missing_or_non_string_field_names_the_line() {
        let error = read_one(b"\n{\"body\": \"a\"}\n", "x.jsonl", DocumentFormat::Jsonl);
        let error = error.unwrap_err().to_string();
        assert!(
            error.ends_with("x.jsonl, line 2: no \"text\" field"),
            "{error}"
        );
        let error = read_one(b"{\"text\": [\"a\"]}", "x.jsonl", DocumentFormat::Jsonl);
        let error = error.unwrap_err().to_string();
        assert!(
            error.ends_with("x.jsonl, line 1: field \"text\" is not a string"),
            "{error}"
        );
    }

    #[test]
    fn skip_mode_counts_bad_lines_and_keeps_the_first_error() {
        let dir = TempDir::new();
        let jsonl = dir.write(
            "a.jsonl",
            b"{\"text\": \"a\"}\n{\"text\": 1}\nnot json\n{\"x\": 1}\n\xff\n{\"text\": \"b\"}\n",
        );
        let options = options(DocumentFormat::Auto, OnBadInput::Skip);
        let (documents, stats) = read(&[jsonl], &options).unwrap();
        assert_eq!(documents, ["a", "b"]);
        assert_eq!(stats.skipped, 4);
        let first = stats.first_skipped.unwrap();
        assert!(
            first.ends_with("a.jsonl, line 2: field \"text\" is not a string"),
            "{first}"
        );

        // A bad line is dropped from its paragraph, which goes on around it.
        let text = dir.write("b.txt", b"one\n\xfe\ntwo\n\nthree\n\xff\n");
        let (documents, stats) = read(&[text], &options).unwrap();
        assert_eq!(documents, ["one\ntwo", "three"]);
        assert_eq!(stats.skipped, 2);
        assert_eq!(stats.documents, 2);
        assert_eq!(stats.text_bytes, 12);
        let first = stats.first_skipped.unwrap();
        assert!(first.ends_with("b.txt, line 2: invalid UTF-8 (at byte 0 of the line)"));
    }

    #[test]
    fn truncated_or_corrupt_archives_fail_even_when_skipping() {
        let dir = TempDir::new();
        let text = "a line of text\n".repeat(10_000);
        let skip = options(DocumentFormat::Auto, OnBadInput::Skip);
        for (name, compressed) in [
            ("a.txt.gz", gzip(text.as_bytes())),
            ("a.txt.xz", xz(text.as_bytes())),
            ("a.txt.zst", zstd(text.as_bytes())),
        ] {
            let truncated = dir.write(name, &compressed[..compressed.len() - 20]);
            let error = read(&[truncated], &skip).unwrap_err().to_string();
            assert!(error.contains(&format!("{name}, after line ")), "{error}");
        }
        let corrupt = dir.write("b.txt.gz", b"\x1f\x8b this is not deflate");
        let error = read(&[corrupt], &skip).unwrap_err().to_string();
        assert!(error.contains("b.txt.gz, after line 0: "), "{error}");
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let dir = TempDir::new();
        let missing = dir.path().join("missing.jsonl");
        let error = read(&[missing], &ReadOptions::default()).unwrap_err();
        assert!(matches!(error, Error::Io { .. }), "{error:?}");
    }

    #[test]
    fn an_error_from_emit_stops_reading() {
        let dir = TempDir::new();
        let path = dir.write("x.txt", b"a\n\nb\n\nc\n");
        let mut seen = Vec::new();
        let error = read_documents(
            &[path],
            &ReadOptions::default(),
            1,
            &mut |_| {},
            &mut |text| {
                seen.push(text.to_string());
                match text {
                    "b" => Err(Error::Invalid("enough".to_string())),
                    _ => Ok(()),
                }
            },
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "enough");
        assert_eq!(seen, ["a", "b"]);
    }
}
