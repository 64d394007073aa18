//! How fast corpus files become documents, each way of reading them, before
//! any encoding: the ceiling reading puts on `bbpe encode -o` and on training.
//!
//!     cargo bench --bench read_documents -- /tmp/en.jsonl --threads 1,2
//!     cargo bench --bench read_documents -- parts/*.jsonl.xz --threads 2,4,8,16
//!
//! Each way reads every file (best of `--repeats`, the files in the page cache
//! after the first), and every way must give the same documents: their
//! count, bytes and a hash over them are compared with one thread's.

mod support;

use bbpe::corpus::{read_documents_with, ReadOptions, Reading};
use std::hash::Hasher;
use std::path::PathBuf;
use std::time::Instant;

/// Documents, their bytes and a hash over them in order.
#[derive(PartialEq, Debug)]
struct Read {
    documents: u64,
    bytes: u64,
    hash: u64,
}

fn read(files: &[PathBuf], reading: Reading) -> (Read, f64) {
    let mut hasher = rustc_hash::FxHasher::default();
    let (mut documents, mut bytes) = (0, 0);
    let start = Instant::now();
    let options = ReadOptions::default();
    read_documents_with(files, &options, reading, &mut |_| {}, &mut |document| {
        documents += 1;
        bytes += document.len() as u64;
        hasher.write(document.as_bytes());
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let hash = hasher.finish();
    let read = Read {
        documents,
        bytes,
        hash,
    };
    (read, start.elapsed().as_secs_f64())
}

fn main() {
    let mut files = Vec::new();
    let mut threads = vec![1, 2];
    let mut repeats = 3;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => threads = support::numbers(args.next(), "--threads"),
            "--repeats" => repeats = support::number(args.next(), "--repeats"),
            "--bench" => {} // what `cargo bench` adds
            _ => files.push(PathBuf::from(arg)),
        }
    }
    assert!(
        !files.is_empty(),
        "usage: read_documents FILE... [--threads 1,2,4]"
    );
    let mut ways = vec![("one thread".to_string(), Reading::OneThread)];
    for &n in threads.iter().filter(|&&n| n > 0) {
        ways.push((format!("blocks, {n} parsers"), Reading::BlocksAtOnce(n)));
        if files.len() > 1 && n > 1 {
            ways.push((format!("files, {n} readers"), Reading::FilesAtOnce(n)));
        }
    }
    println!("{} file(s); best of {repeats}", files.len());
    println!("| reading | MB/s of text | vs one thread |");
    println!("| --- | ---: | ---: |");
    let mut baseline: Option<(Read, f64)> = None;
    for (name, reading) in ways {
        let mut best = f64::INFINITY;
        let mut got = None;
        for _ in 0..repeats {
            let (result, seconds) = read(&files, reading);
            best = best.min(seconds);
            got = Some(result);
        }
        let got = got.expect("at least one repeat");
        let speed = got.bytes as f64 / best / 1e6;
        let ratio = baseline.as_ref().map_or(1.0, |(_, base)| base / best);
        println!("| {name} | {speed:.0} | {ratio:.2}x |");
        match &baseline {
            Some((first, _)) => assert_eq!(&got, first, "{name} read other documents"),
            None => baseline = Some((got, best)),
        }
    }
}
