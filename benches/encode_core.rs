//! One thread's encoding alone, with no Python and no other stage: the
//! bench to tell a change to the encoder from the VM's noise.
//!
//!     cargo bench --bench encode_core -- /tmp/en.jsonl --mb 60 --repeats 5
//!
//! The first `--mb` (millions of bytes) of a JSONL file's documents are read once, then each pass
//! encodes them all with a fresh GPT-2 encoder (empty caches, as a new
//! process's first call has), one thread, into one flat output, as
//! `encode_batch_flat` does. Passes run in one process, so the first also
//! pays for the first touch of the output's memory and the later ones show
//! the encoder itself. To compare two builds, copy one's binary
//! (`target/release/deps/encode_core-*`) aside and alternate the two, pinned
//! to one core (`taskset -c 1`), or run both at once, one on each core,
//! swapping cores between runs, so that the VM's slow spells fall on both:
//! on this VM the same binary's median moves by a few percent from run to
//! run and by up to 15% from hour to hour. For smaller differences,
//! `benches/encode_counts.py` counts instructions and cache misses instead.

mod support;

use bbpe::corpus::{read_documents_with, ReadOptions, Reading};
use bbpe::encode::batch::encode_flat;
use bbpe::Specials;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let mut file = None;
    let (mut mb, mut repeats) = (60, 5);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mb" => mb = support::number(args.next(), "--mb"),
            "--repeats" => repeats = support::number(args.next(), "--repeats"),
            "--bench" => {} // what `cargo bench` adds
            _ => file = Some(PathBuf::from(arg)),
        }
    }
    let file = file.expect("usage: encode_core FILE.jsonl [--mb N] [--repeats N]");
    let mut documents = Vec::new();
    let mut bytes = 0;
    read_documents_with(
        std::slice::from_ref(&file),
        &ReadOptions::default(),
        Reading::OneThread,
        &mut |_| {},
        &mut |document| {
            if bytes < mb * 1_000_000 {
                bytes += document.len();
                documents.push(document.to_string());
            }
            Ok(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut passes = Vec::new();
    let mut tokens = 0;
    for _ in 0..repeats.max(1) {
        let encoder = support::gpt2_encoder();
        let start = Instant::now();
        let flat = encode_flat(&encoder, &documents, Specials::None, 1, Vec::new())
            .unwrap_or_else(|e| panic!("{e}"));
        passes.push(bytes as f64 / start.elapsed().as_secs_f64() / 1e6);
        tokens = flat.ids.len();
    }
    let each: Vec<String> = passes.iter().map(|mbs| format!("{mbs:.1}")).collect();
    let mut later = passes[1.min(passes.len() - 1)..].to_vec();
    later.sort_by(f64::total_cmp);
    println!(
        "{}: {:.1} MB of text, {} documents, {tokens} tokens, one thread",
        file.display(),
        bytes as f64 / 1e6,
        documents.len()
    );
    println!(
        "MB/s by pass: {}; first pass {:.1}, later passes median {:.1}",
        each.join(" "),
        passes[0],
        later[later.len() / 2]
    );
}
