"""The `bbpe` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

# The command line never multiplies matrices, and OpenBLAS's idle threads
# (started when NumPy loads) would compete with the encoder's for cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from bbpe import counting, shards
from bbpe.progress import ProgressBar
from bbpe.sample import sample_path
from bbpe.shards import pipeline
from bbpe.tokenizer import Tokenizer
from bbpe.trainer import (
    DEFAULT_MAX_TOKEN_LENGTH,
    DEFAULT_VOCAB_SIZE,
    GPT2_SPECIALS,
    ROBERTA_SPECIALS,
    train_from_counts_with_report,
    train_with_report,
)


def cmd_encode(args: argparse.Namespace) -> int:
    inputs = list(args.inputs)
    if args.sample:
        inputs.append(str(sample_path()))
    if not inputs:
        raise ValueError("no input: name corpus files, or pass --sample for the bundled one")
    if args.ray is not None:
        if args.rank is not None or args.world_size is not None:
            raise ValueError(
                "--ray shares the files out itself: --rank and --world-size are "
                "for running without it"
            )
        return encode_on_ray(args, inputs)
    show = args.progress or sys.stderr.isatty()
    bar: ProgressBar | None = None
    started = time.perf_counter()

    def progress(stage: str, done: tuple[int, int, int, int], total: int | None) -> None:
        nonlocal bar
        input_bytes, text_bytes, tokens, _ = done
        if bar is None:
            bar = ProgressBar("encode", total or None, show, 1e6, "MB")
        elapsed = max(time.perf_counter() - started, 1e-9)
        rates = f"{text_bytes / elapsed / 1e6:6.1f} MB/s text {tokens / elapsed / 1e6:6.2f} Mtok/s"
        bar.update(input_bytes if total else text_bytes, rates)

    reading = {
        "format": args.format,
        "text_field": args.text_field,
        "on_bad_input": args.on_bad_input,
        "threads": args.threads,
        "progress": progress,
    }
    if args.output is None:
        if args.rank is not None or args.world_size is not None:
            raise ValueError("--rank and --world-size need -o: they split the writing of shards")
        summary = pipeline.count(inputs, args.tokenizer, **reading)
    else:
        summary = pipeline.write(
            inputs,
            args.output,
            args.tokenizer,
            prefix=args.prefix,
            shard_size=args.shard_size,
            split_sentences=args.split_sentences,
            append_eos=args.append_eos,
            resume=args.resume,
            overwrite=args.overwrite,
            rank=args.rank,
            world_size=args.world_size,
            **reading,
        )
    if bar is not None:
        bar.finish()
    wall = time.perf_counter() - started
    # Counts are the whole dataset's (a resumed run's earlier part included),
    # speeds only this run's work.
    tokens, text_bytes = summary["tokens"], summary["text_bytes"]
    encoded_tokens, encoded_bytes = summary["encoded_tokens"], summary["encoded_text_bytes"]
    summary["tokenizer"] = args.tokenizer
    summary["bytes_per_token"] = round(text_bytes / tokens, 3) if tokens else None
    summary["seconds"] = round(wall, 3)
    summary["mb_per_s"] = round(encoded_bytes / 1e6 / wall, 1) if wall else None
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"{summary['documents']:,} documents, {text_bytes / 1e6:,.2f} MB of text -> "
        f"{tokens:,} tokens ({summary['bytes_per_token']} bytes/token) with {args.tokenizer} "
        f"in {wall:.2f} s: {summary['mb_per_s']} MB/s, {encoded_tokens / wall / 1e6:.2f} M tokens/s"
    )
    if args.output is not None:
        print(
            f"wrote {summary['sequences']:,} sequences in {len(summary['shards'])} shard(s) "
            f"to {summary.get('part', args.output)}"
        )
        if "part" in summary:
            print(f"when every rank has finished: bbpe combine {args.output}")
    if summary["resumed_documents"]:
        print(f"resumed after {summary['resumed_documents']:,} documents of the earlier run")
    if summary["empty_documents"]:
        print(f"note: {summary['empty_documents']:,} empty documents were left out")
    if summary["replaced_surrogates"]:
        print(
            f"note: {summary['replaced_surrogates']:,} JSON lines had lone surrogate escapes, "
            "read as U+FFFD"
        )
    if summary["skipped"]:
        first = summary["first_skipped"]
        print(f"note: skipped {summary['skipped']:,} bad lines; the first: {first}")
    return 0


def encode_on_ray(args: argparse.Namespace, inputs: list[str]) -> int:
    """`bbpe encode --ray`: a shard pair per input file, written by a Ray job."""
    if args.output is None:
        raise ValueError("--ray writes shards: name the directory with -o")
    if args.resume or args.overwrite or args.prefix != "data" or args.shard_size != "1GB":
        raise ValueError(
            "--ray writes one shard pair data_<key> per input file and always resumes: "
            "--resume, --overwrite, --prefix and --shard-size do not apply"
        )
    with _ray_session(args.ray) as bbpe_ray:
        return _encode_on_ray(args, inputs, bbpe_ray)


@contextlib.contextmanager
def _ray_session(address: str):
    """`bbpe.ray`, on a cluster joined (`address`) or started (``local``) for
    this command, and left at the end; a clear error without Ray."""
    try:
        from bbpe import ray as bbpe_ray
    except ImportError as e:
        raise ValueError(str(e)) from None
    import logging

    import ray

    # Ray's own logs and progress bars say what the bar and the summary say.
    started_ray = not ray.is_initialized()
    if started_ray:
        address = None if address == "local" else address
        ray.init(address=address, logging_level=logging.WARNING, include_dashboard=False)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield bbpe_ray
    finally:
        if started_ray:
            ray.shutdown()


def _encode_on_ray(args: argparse.Namespace, inputs: list[str], bbpe_ray) -> int:
    bar = ProgressBar("encode", None, args.progress or sys.stderr.isatty(), 1, "blocks")
    started = time.perf_counter()
    summary = bbpe_ray.encode(
        inputs,
        args.output,
        args.tokenizer,
        format=args.format,
        text_field=args.text_field,
        on_bad_input=args.on_bad_input,
        append_eos=args.append_eos,
        split_sentences=args.split_sentences,
        concurrency=args.threads,
        progress=lambda done, total: bar.update(done, total=total),
    )
    bar.finish()
    summary["seconds"] = round(time.perf_counter() - started, 3)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"{summary['documents']:,} documents -> {summary['tokens']:,} tokens in "
        f"{len(summary['shards'])} shard(s) in {args.output}: {summary['encoded_blocks']} of "
        f"{summary['blocks']} blocks encoded, {summary['skipped_blocks']} already done, "
        f"in {summary['seconds']:.2f} s"
    )
    if summary["empty_documents"]:
        print(f"note: {summary['empty_documents']:,} empty documents were left out")
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    if args.merge:
        if args.sample or args.rank is not None or args.world_size is not None:
            raise ValueError("--merge takes count tables only (no --sample, --rank, --world-size)")
        if not args.inputs:
            raise ValueError("--merge needs count tables to merge")
        started = time.perf_counter()
        summary = counting.merge_counts(args.inputs, args.output)
    else:
        inputs = _corpus_inputs(args)
        bar = ProgressBar("read", None, args.progress or sys.stderr.isatty(), 1e6, "MB")
        started = time.perf_counter()
        summary = counting.count_words(
            inputs,
            output=args.output,
            pattern=args.pattern,
            max_words=args.max_words,
            format=args.format,
            text_field=args.text_field,
            on_bad_input=args.on_bad_input,
            threads=args.threads,
            rank=args.rank,
            world_size=args.world_size,
            progress=lambda _stage, done, total: bar.update(done, total=total),
        )
        bar.finish()
    summary["seconds"] = round(time.perf_counter() - started, 3)
    summary["output"] = args.output
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"wrote {args.output}: {summary['words']:,} distinct words, "
        f"{summary['occurrences']:,} occurrences, from {summary['documents']:,} documents "
        f"({summary['text_bytes'] / 1e6:,.1f} MB) in {summary['parts']:,} part"
        f"{'s' if summary['parts'] != 1 else ''}; {summary['file_bytes'] / 1e6:,.1f} MB "
        f"in {summary['seconds']:.2f} s"
    )
    if summary["pruned_words"]:
        print(
            f"warning: --max-words dropped {summary['pruned_words']:,} distinct words "
            f"({summary['pruned_occurrences']:,} occurrences): these counts are not exact",
            file=sys.stderr,
        )
    return 0


def _corpus_inputs(args: argparse.Namespace) -> list[str]:
    inputs = list(args.inputs)
    if args.sample:
        inputs.append(str(sample_path()))
    if not inputs:
        raise ValueError("no input: name corpus files, or pass --sample for the bundled one")
    return inputs


def cmd_train(args: argparse.Namespace) -> int:
    if args.from_counts and (args.inputs or args.sample):
        raise ValueError("give corpus files or --from-counts tables, not both")
    inputs = args.from_counts or _corpus_inputs(args)
    if args.special_tokens is None:
        specials = GPT2_SPECIALS if args.gpt2_specials else ROBERTA_SPECIALS
    else:
        specials = args.special_tokens
    show = args.progress or sys.stderr.isatty()
    bars: dict[str, ProgressBar] = {}

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.finish()
            scale, unit = (
                (1e6, "MB") if stage == "read" else (1.0, {"count": "parts"}.get(stage, "merges"))
            )
            bars[stage] = ProgressBar(stage, total, show, scale, unit)
        bars[stage].update(done)

    started = time.perf_counter()
    learning = dict(
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        special_tokens=specials,
        max_token_length=args.max_token_length,
        max_words=args.max_words,
        threads=args.threads,
        progress=progress,
    )
    if args.from_counts:
        tokenizer, report = train_from_counts_with_report(args.from_counts, **learning)
    elif args.ray is not None:
        if args.holdout_every:
            raise ValueError("--holdout-every is not available with --ray")
        with _ray_session(args.ray) as bbpe_ray:
            tokenizer, report = bbpe_ray.train_with_report(
                inputs,
                format=args.format,
                text_field=args.text_field,
                on_bad_input=args.on_bad_input,
                **learning,
            )
    else:
        tokenizer, report = train_with_report(
            inputs,
            format=args.format,
            text_field=args.text_field,
            on_bad_input=args.on_bad_input,
            holdout_every=args.holdout_every,
            **learning,
        )
    if "merge" in bars:
        bars["merge"].finish()
    wall = time.perf_counter() - started

    written = [str(p) for p in tokenizer.save_pretrained(args.output)]
    tiktoken_note = None
    try:
        written += [str(p) for p in tokenizer.save(args.output, "tiktoken")]
    except ValueError as e:
        tiktoken_note = str(e)

    held = report.held_out
    held_bytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in held)
    held_tokens = int(len(tokenizer.encode_batch_flat(held)[0])) if held else 0
    summary = {
        "inputs": inputs,
        "output": written,
        "seconds": round(wall, 3),
        "count_seconds": round(report.count_seconds, 3),
        "merge_seconds": round(report.merge_seconds, 3),
        "files": report.files,
        "documents": report.documents,
        "text_bytes": report.text_bytes,
        "unique_words": report.unique_words,
        "max_words": report.max_words,
        "pruned_words": report.pruned_words,
        "pruned_occurrences": report.pruned_occurrences,
        "skipped_lines": report.skipped,
        "replaced_surrogates": report.replaced_surrogates,
        "first_skipped": report.first_skipped,
        "vocab_size": report.vocab_size,
        "merges": report.merges,
        "held_out_documents": len(held),
        "held_out_bytes_per_token": round(held_bytes / held_tokens, 3) if held_tokens else None,
        "tiktoken_skipped": tiktoken_note,
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"trained {report.vocab_size:,} tokens ({report.merges:,} merges) in {wall:.2f} s "
        f"(counting {report.count_seconds:.2f} s, merging {report.merge_seconds:.2f} s)\n"
        f"{report.documents:,} documents, {report.text_bytes / 1e6:,.1f} MB of text, "
        f"{report.unique_words:,} unique words"
    )
    if held_tokens:
        print(
            f"compression on {len(held):,} held-back documents: "
            f"{summary['held_out_bytes_per_token']} bytes/token"
        )
    if report.pruned_words:
        print(
            f"warning: --max-words {report.max_words:,}"
            f"{' (auto: half of the memory)' if args.max_words == 'auto' else ''} "
            f"dropped {report.pruned_words:,} distinct "
            f"words ({report.pruned_occurrences:,} occurrences), the rarest, while counting; "
            "the vocabulary was trained without them",
            file=sys.stderr,
        )
    if report.replaced_surrogates:
        print(
            f"note: {report.replaced_surrogates:,} JSON lines had lone surrogate escapes, "
            "read as U+FFFD"
        )
    if report.skipped:
        print(f"note: skipped {report.skipped:,} bad lines; the first: {report.first_skipped}")
    if tiktoken_note:
        print(f"note: no tiktoken file: {tiktoken_note}")
    print("wrote " + ", ".join(written))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    report = shards.info(args.path, checksums=not args.no_checksums)
    failed = 1 if report["problems"] or report["unfinished"] else 0
    if args.json:
        report.pop("manifest", None)
        print(json.dumps(report))
        return failed
    print(
        f"{report['path']}: {len(report['shards'])} shard(s), dtype {report['dtype']}\n"
        f"{report['documents']:,} documents, {report['sequences']:,} sequences, "
        f"{report['tokens']:,} tokens"
    )
    if report["sequences"]:
        print(
            f"sequence length: min {report['min_length']:,}, "
            f"mean {report['mean_length']:,.1f}, max {report['max_length']:,}"
        )
        widest = max(count for _, _, count in report["histogram"])
        for low, high, count in report["histogram"]:
            if count:
                bar = "#" * max(1, round(40 * count / widest))
                print(f"  [{low:>7,}, {high:>7,})  {count:>12,}  {bar}")
    if report["problems"]:
        print(f"{len(report['problems'])} problem(s):")
        for problem in report["problems"]:
            print(f"  {problem}")
    if report["unfinished"]:
        print("unfinished: not a complete run of shards:")
        for reason in report["unfinished"]:
            print(f"  {reason}")
    if failed:
        return failed
    print("ok: sizes, pointers, document indices" + ("" if args.no_checksums else " and checksums"))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    output = shards.concatenate(args.inputs, args.output)
    with shards.IndexedDataset(output) as merged:
        print(
            f"merged {len(args.inputs)} shard(s) into {output}: {merged.documents:,} documents, "
            f"{len(merged):,} sequences, {merged.num_tokens:,} tokens"
        )
    return 0


def cmd_combine(args: argparse.Namespace) -> int:
    manifest = shards.combine_parts(args.output, checksums=not args.no_checksums)
    if args.json:
        print(json.dumps(manifest))
        return 0
    print(
        f"combined {manifest['parts']['world_size']} part(s) into "
        f"{os.path.join(args.output, shards.MANIFEST_NAME)}: {len(manifest['shards'])} shard(s), "
        f"{manifest['documents']:,} documents, {manifest['sequences']:,} sequences, "
        f"{manifest['tokens']:,} tokens"
    )
    return 0


def cmd_tokenize(args: argparse.Namespace) -> int:
    tokenizer = Tokenizer.from_pretrained(args.tokenizer)
    text = args.text if args.text is not None else sys.stdin.read()
    ids = tokenizer.encode(text, add_special_tokens=args.special)
    if args.json:
        print(json.dumps({"ids": ids, "tokens": [tokenizer.id_to_token(i) for i in ids]}))
    else:
        for i in ids:
            print(f"{i}\t{tokenizer.id_to_token(i)}")
    return 0


def _word_cap(value: str) -> int | str | None:
    """A positive number, "none", or "auto" (derived from memory)."""
    return "auto" if value.lower() == "auto" else _limit(value)


def _limit(value: str) -> int | None:
    """A positive number, or "none" for no limit."""
    return None if value.lower() == "none" else int(value)


def add_corpus_options(parser: argparse.ArgumentParser, verb: str) -> None:
    """The options of every command that reads a corpus, said once."""
    parser.add_argument("--sample", action="store_true", help=f"also {verb} the bundled sample")
    parser.add_argument(
        "--format",
        default="auto",
        choices=["auto", "jsonl", "lines", "paragraphs"],
        help="auto: .jsonl is JSONL, anything else has documents separated by blank lines",
    )
    parser.add_argument("--text-field", default="text", help="JSONL field holding the text")
    parser.add_argument(
        "--on-bad-input",
        default="stop",
        choices=["stop", "skip"],
        help="stop at a bad line (invalid UTF-8, bad JSON) or skip it and count",
    )
    parser.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    parser.add_argument(
        "--progress", action="store_true", help="show progress even when not a terminal"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bbpe", description="Byte-level BPE tokenizer tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    encode = sub.add_parser(
        "encode",
        help="encode a corpus into Megatron shards (-o), or report token counts and speed",
        description="Encode documents from JSONL or text files (gz, xz, zstd): with -o into "
        "Megatron-compatible indexed shards (PREFIX_00000.bin/.idx + manifest.json), else "
        "report token counts and speed.",
    )
    encode.add_argument("inputs", nargs="*", help="corpus files, globs, directories, - for stdin")
    encode.add_argument(
        "-o", "--output", default=None, help="write Megatron shards (.bin/.idx) to this directory"
    )
    encode.add_argument("--prefix", default="data", help="shard names: PREFIX_00000.bin, ...")
    encode.add_argument("--shard-size", default="1GB", help="close a shard at this .bin size")
    encode.add_argument(
        "--split-sentences", action="store_true", help="a sequence per sentence, not per document"
    )
    encode.add_argument(
        "--append-eos", action="store_true", help="end each document with </s> or <|endoftext|>"
    )
    encode.add_argument(
        "--resume", action="store_true", help="continue an interrupted run in the same directory"
    )
    encode.add_argument(
        "--overwrite", action="store_true", help="replace shards already in the directory"
    )
    encode.add_argument(
        "--tokenizer", default="roberta-base", help="gpt2, roberta-base or a directory"
    )
    encode.add_argument(
        "--rank",
        type=int,
        default=None,
        help="encode only this rank's share of the files, into OUTPUT/rank-R-of-W/ "
        "(then bbpe combine OUTPUT)",
    )
    encode.add_argument(
        "--world-size", type=int, default=None, help="how many ranks share the files"
    )
    encode.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="encode on Ray (pip install 'bbpe[ray]'): a shard pair per input file, blocks "
        "already done skipped; a local cluster, or join ADDRESS (auto, ray://...); "
        "--threads is then the number of encoding actors",
    )
    add_corpus_options(encode, "encode")
    encode.set_defaults(run=cmd_encode)

    train = sub.add_parser(
        "train",
        help="train a byte-level BPE vocabulary",
        description="Train a vocabulary on corpus files (JSONL or text; gz, xz or zstd; "
        "globs and directories) and write vocab.json + merges.txt, tokenizer.json with "
        "transformers' tokenizer_config.json and special_tokens_map.json, and vocab.tiktoken.",
    )
    train.add_argument("inputs", nargs="*", help="corpus files, globs or directories")
    train.add_argument("-o", "--output", required=True, help="directory to write")
    train.add_argument(
        "--vocab-size",
        type=int,
        default=DEFAULT_VOCAB_SIZE,
        help=f"tokens in all, specials and the 256 bytes included (default {DEFAULT_VOCAB_SIZE:,})",
    )
    train.add_argument("--min-frequency", type=int, default=2)
    train.add_argument("--special-tokens", nargs="+", default=None, help="default: RoBERTa's five")
    train.add_argument(
        "--gpt2-specials", action="store_true", help="use GPT-2's <|endoftext|> instead"
    )
    train.add_argument(
        "--max-token-length",
        type=_limit,
        default=DEFAULT_MAX_TOKEN_LENGTH,
        help=f"longest token, in bytes, or none (default {DEFAULT_MAX_TOKEN_LENGTH}: "
        "GPT-2's longest)",
    )
    train.add_argument(
        "--max-words",
        type=_word_cap,
        default="auto",
        help="cap on distinct words kept while counting, the rarest dropped first: a number, "
        "none, or auto (default: as many as fit in half of this machine's memory)",
    )
    train.add_argument(
        "--holdout-every",
        type=int,
        default=0,
        help="hold back every n-th document to measure compression on unseen text "
        "(default 0: none, so the vocabulary is bbpe.train's from the same files)",
    )
    train.add_argument(
        "--from-counts",
        nargs="+",
        metavar="TABLE",
        help="learn from count tables (bbpe count) instead of reading a corpus; "
        "--max-words then caps the merged counts",
    )
    train.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="count on Ray (pip install 'bbpe[ray]'), a task per part of the files, and learn "
        "here: the merges of training on one machine; a local cluster, or join ADDRESS "
        "(auto, ray://...)",
    )
    add_corpus_options(train, "train on")
    train.set_defaults(run=cmd_train)

    count = sub.add_parser(
        "count",
        help="count a corpus's words into a count table, or merge tables",
        description="Training's first phase: count the words of corpus files (one part of a "
        "corpus, split between documents) into a count table; merge tables with --merge, in "
        "any order; then `bbpe train --from-counts TABLE...` learns the merges one machine "
        "would learn from the whole corpus.",
    )
    count.add_argument(
        "inputs", nargs="*", help="corpus files, globs or directories; with --merge, count tables"
    )
    count.add_argument("-o", "--output", required=True, help="the count table to write")
    count.add_argument("--merge", action="store_true", help="merge the count tables given")
    count.add_argument("--pattern", default=None, help="split pattern (default: GPT-2's)")
    count.add_argument(
        "--max-words",
        type=_limit,
        default=None,
        help="cap on distinct words kept while counting, the rarest dropped first "
        "(default none: exact counts; cap at `bbpe train --from-counts` instead)",
    )
    count.add_argument(
        "--rank",
        type=int,
        default=None,
        help="count only this rank's share of the files (as bbpe encode --rank shares them)",
    )
    count.add_argument(
        "--world-size", type=int, default=None, help="how many ranks share the files"
    )
    add_corpus_options(count, "count")
    count.set_defaults(run=cmd_count)

    info = sub.add_parser(
        "info",
        help="counts, length histogram and integrity of shards",
        description="Documents, sequences, tokens, dtype and a length histogram of a shard "
        "(PREFIX) or a directory of shards, and a check that .bin sizes, pointers, document "
        "indices and the manifest's checksums agree, and that the run that wrote them "
        "finished. Exits 1 if anything is wrong or unfinished.",
    )
    info.add_argument("path", help="a directory of shards or a shard prefix")
    info.add_argument("--no-checksums", action="store_true", help="skip the SHA-256 checks")
    info.add_argument("--json", action="store_true")
    info.set_defaults(run=cmd_info)

    merge = sub.add_parser(
        "merge",
        help="concatenate shard pairs into one",
        description="Concatenate shard pairs (.bin/.idx) into one, streaming, without loading "
        "them into memory.",
    )
    merge.add_argument("inputs", nargs="+", help="shard prefixes, in order")
    merge.add_argument("-o", "--output", required=True, help="output prefix")
    merge.set_defaults(run=cmd_merge)

    combine = sub.add_parser(
        "combine",
        help="list the parts that ranks encoded as one set of shards",
        description="After every rank of bbpe encode --rank R --world-size W -o OUTPUT has "
        "finished: check that ranks 0 to W-1 are each there once, finished, alike in "
        "tokenizer, settings and corpus, and that their shards are sound (checksums "
        "included), then write OUTPUT/manifest.json listing every shard in rank order. "
        "No shard data is copied.",
    )
    combine.add_argument("output", help="the directory the ranks wrote their parts into")
    combine.add_argument("--no-checksums", action="store_true", help="skip the SHA-256 checks")
    combine.add_argument("--json", action="store_true", help="print the manifest as JSON")
    combine.set_defaults(run=cmd_combine)

    tokenize = sub.add_parser("tokenize", help="show the tokens of a text")
    tokenize.add_argument("text", nargs="?", help="text (default: standard input)")
    tokenize.add_argument("--tokenizer", default="roberta-base")
    tokenize.add_argument(
        "--special", action="store_true", help="add the template's special tokens"
    )
    tokenize.add_argument("--json", action="store_true")
    tokenize.set_defaults(run=cmd_tokenize)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError) as e:
        print(f"bbpe {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bbpe {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
