//! What each stage of `bbpe encode -o` can do on one thread, against one
//! core's encoding: the number of encoding cores a stage that runs on one
//! thread (reading one file, writing, hashing) could keep up with before it
//! caps the command.
//!
//!     cargo bench --bench shard_stages -- /tmp/en.jsonl --out /tmp/stages
//!     cargo bench --bench shard_stages -- /tmp/ko.jsonl --threads 1,2,4,8,16
//!
//! The text is read, encoded and written once per repeat, each stage alone
//! and timed on its own (best of `--repeats`): reading one plain JSONL file
//! on one thread; encoding on one thread (GPT-2, `<|endoftext|>` appended,
//! 8 MB batches as the command takes them); the conversion of the ids to the
//! shards' uint16 (on all threads in the command, here on one); the writer
//! as the command runs it (a shard set in `--out`, on the disk users write
//! to, hashed on its own thread, closed and flushed), in wall time and in the
//! writer thread's own CPU time; SHA-256 of the shard's bytes alone. The
//! shards written are checked to hold every id. Then the whole command
//! (`encode_to_shards`, as `bbpe encode -o --append-eos` runs it, without
//! Python) at each of `--threads` up to the CPUs available, against one
//! thread. Linux only (thread CPU time).

mod support;

use bbpe::corpus::{read_documents_with, ReadOptions, Reading};
use bbpe::encode::batch::encode_flat;
use bbpe::shards::format::TokenDtype;
use bbpe::shards::pipeline::{encode_to_shards, ShardSettings};
use bbpe::shards::shard_bytes::{self, ShardBytes};
use bbpe::shards::writer::{ExistingShards, ShardSet};
use bbpe::{Encoder, Specials};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Documents per batch: as the command's reader gathers them.
const BATCH_BYTES: usize = 8 << 20;

fn read_batches(file: &Path) -> Vec<Vec<String>> {
    let mut batches = vec![Vec::new()];
    let mut bytes = 0;
    let options = ReadOptions::default();
    let files = [file.to_path_buf()];
    read_documents_with(
        &files,
        &options,
        Reading::OneThread,
        &mut |_| {},
        &mut |document| {
            bytes += document.len();
            batches
                .last_mut()
                .expect("one batch")
                .push(document.to_string());
            if bytes >= BATCH_BYTES {
                batches.push(Vec::new());
                bytes = 0;
            }
            Ok(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    batches
}

/// Each batch's ids and where each document's ids end. The ids go into the
/// vectors of an earlier call, as the command's encoder reuses the writer's.
fn encode(encoder: &Encoder, batches: &[Vec<String>], encoded: &mut Vec<(Vec<u32>, Vec<u64>)>) {
    let mut buffers: Vec<Vec<u32>> = encoded.drain(..).map(|(ids, _)| ids).collect();
    for batch in batches {
        let buffer = buffers.pop().unwrap_or_default();
        let flat = encode_flat(encoder, batch, Specials::None, 1, buffer)
            .unwrap_or_else(|e| panic!("{e}"));
        encoded.push((flat.ids, flat.offsets));
    }
}

fn documents(encoded: &[(Vec<u32>, Vec<u64>)]) -> impl Iterator<Item = &[u32]> {
    encoded.iter().flat_map(|(ids, offsets)| {
        offsets
            .windows(2)
            .map(move |w| &ids[w[0] as usize..w[1] as usize])
    })
}

/// Each batch's ids in the shards' uint16 with the end token after each
/// document, as the command converts them before the writer (here on one
/// thread), into the byte buffers of an earlier call.
fn convert(encoded: &[(Vec<u32>, Vec<u64>)], eos: u32, converted: &mut Vec<ShardBytes>) {
    let mut buffers: Vec<Vec<u8>> = converted.drain(..).map(|batch| batch.bytes).collect();
    for (ids, offsets) in encoded {
        let documents = vec![1; offsets.len() - 1];
        let buffer = buffers.pop().unwrap_or_default();
        let batch = shard_bytes::convert(
            TokenDtype::U16,
            ids,
            &offsets[1..],
            documents,
            Some(eos),
            1,
            buffer,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        converted.push(batch);
    }
}

fn write(dir: &Path, converted: &[ShardBytes], shard_bytes: u64) -> u64 {
    let (mut set, _) = ShardSet::open(
        dir,
        "stage",
        TokenDtype::U16,
        shard_bytes,
        Default::default(),
        ExistingShards::Overwrite,
        1,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for batch in converted {
        set.add_batch(batch).unwrap_or_else(|e| panic!("{e}"));
    }
    let shards = set.finish().unwrap_or_else(|e| panic!("{e}"));
    shards.iter().map(|shard| shard.tokens).sum()
}

/// CPU time of the calling thread: the writer's own work, without the time
/// it waits for the hashing thread or the disk.
fn thread_cpu_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// The whole pipeline, as `bbpe encode FILE -o DIR --append-eos` runs it, on
/// `threads` threads: MB of text a second.
fn whole_command(encoder: &Encoder, file: &Path, dir: &Path, threads: usize) -> f64 {
    let settings = ShardSettings {
        prefix: "data".into(),
        shard_bytes: 1 << 30,
        split_sentences: false,
        append_eos: true,
        threads,
        existing: ExistingShards::Overwrite,
        part: None,
    };
    let start = Instant::now();
    let files = [file.to_path_buf()];
    let summary = encode_to_shards(
        encoder,
        "gpt2",
        &files,
        &ReadOptions::default(),
        dir,
        &settings,
        &mut |_| true,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    summary.text_bytes as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn best_of(repeats: usize, mut stage: impl FnMut()) -> f64 {
    (0..repeats)
        .map(|_| {
            let start = Instant::now();
            stage();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let mut file = None;
    let mut out = std::env::temp_dir().join("bbpe-shard-stages");
    let mut repeats = 3;
    let mut shard_mb = 1024;
    let mut threads = vec![1, 2];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = PathBuf::from(args.next().expect("--out DIR")),
            "--repeats" => repeats = support::number(args.next(), "--repeats"),
            "--threads" => threads = support::numbers(args.next(), "--threads"),
            "--shard-mb" => shard_mb = support::number(args.next(), "--shard-mb") as u64,
            "--bench" => {} // what `cargo bench` adds
            _ => file = Some(PathBuf::from(arg)),
        }
    }
    let file = file.expect(
        "usage: shard_stages FILE.jsonl [--out DIR] [--repeats N] [--shard-mb N] [--threads 1,2,4]",
    );
    let encoder = support::gpt2_encoder();
    let eos = encoder
        .vocab()
        .end_of_document_id()
        .expect("GPT-2 has <|endoftext|>");

    let mut batches = Vec::new();
    let read = best_of(repeats, || batches = read_batches(&file));
    let text_bytes: usize = batches.iter().flatten().map(String::len).sum();
    let mut encoded = Vec::new();
    let encoding = best_of(repeats, || encode(&encoder, &batches, &mut encoded));
    let tokens = documents(&encoded)
        .map(|ids| ids.len() as u64 + 1)
        .sum::<u64>();
    let mut converted = Vec::new();
    let conversion = best_of(repeats, || convert(&encoded, eos, &mut converted));
    let shard: Vec<u8> = converted
        .iter()
        .flat_map(|batch| batch.bytes.iter().copied())
        .collect();
    let hashing = best_of(repeats, || {
        std::hint::black_box(Sha256::digest(&shard));
    });
    let mut written = 0;
    let mut writer_cpu = f64::INFINITY;
    let writing = best_of(repeats, || {
        let start = thread_cpu_seconds();
        written = write(&out, &converted, shard_mb << 20);
        writer_cpu = writer_cpu.min(thread_cpu_seconds() - start);
    });
    assert_eq!(written, tokens, "the shards hold other than every id");
    let _ = std::fs::remove_dir_all(&out);

    let mb = text_bytes as f64 / 1e6;
    println!(
        "{}: {mb:.1} MB of text, {tokens} tokens ({} bytes of uint16 shards); best of {repeats}",
        file.display(),
        shard.len()
    );
    println!("| stage, one thread | seconds | MB/s of text | Mtokens/s | x one core's encoding |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (stage, seconds) in [
        ("encode", encoding),
        ("read (one plain file)", read),
        (
            "convert: ids to uint16, end tokens (now on all threads)",
            conversion,
        ),
        (
            &*format!("write: shard set of {shard_mb} MB shards (hashed, flushed)"),
            writing,
        ),
        ("write: the writer thread's CPU time in it", writer_cpu),
        ("SHA-256 of the shard bytes", hashing),
    ] {
        println!(
            "| {stage} | {seconds:.3} | {:.0} | {:.1} | {:.1}x |",
            mb / seconds,
            tokens as f64 / seconds / 1e6,
            encoding / seconds
        );
    }

    // The whole command at each thread count the machine has room for.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut run, skipped): (Vec<usize>, Vec<usize>) = threads.iter().partition(|&&n| n <= cores);
    if run.first() != Some(&1) {
        run.insert(0, 1); // what the others are compared with
    }
    println!();
    println!("whole command (encode -o --append-eos, 1 GB shards), best of {repeats}");
    println!("| threads | MB/s of text | x one thread | per thread |");
    println!("| ---: | ---: | ---: | ---: |");
    let mut one = None;
    for n in run {
        let speed = (0..repeats)
            .map(|_| whole_command(&encoder, &file, &out, n))
            .fold(0.0, f64::max);
        let base = *one.get_or_insert(speed);
        let ratio = speed / base;
        println!(
            "| {n} | {speed:.0} | {ratio:.2}x | {:.2} |",
            ratio / n as f64
        );
    }
    let _ = std::fs::remove_dir_all(&out);
    if !skipped.is_empty() {
        println!("skipped thread counts above the {cores} CPUs available: {skipped:?}");
    }
}
