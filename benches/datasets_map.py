"""`datasets.Dataset.map` throughput with bbpe against transformers'
RobertaTokenizerFast, in the same run: the path a user of the Hugging Face
stack takes to tokenize a corpus.

    PYTHONPATH=python python benches/datasets_map.py --max-mb 20 --num-proc 1,2

Both tokenizers get the same call, `tok(batch["text"], truncation=True,
max_length=512)`, over the same in-memory dataset (batches of 1,000 texts);
each map writes its Arrow cache to a fresh directory, so nothing is reused.
Needs `datasets` and `transformers`.
"""

from __future__ import annotations

import argparse
import json
import lzma
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = ROOT.parent / "shared" / "corpus"


def load_texts(path: Path, max_mb: float) -> list[str]:
    texts, size = [], 0
    with lzma.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            text = json.loads(line)["text"]
            texts.append(text)
            size += len(text.encode())
            if size >= max_mb * 1e6:
                break
    return texts


def hf_roberta():
    from transformers import RobertaTokenizerFast

    vocab = ROOT / "python" / "bbpe" / "vocabularies" / "roberta-base"
    return RobertaTokenizerFast(
        vocab_file=str(vocab / "vocab.json"), merges_file=str(vocab / "merges.txt")
    )


def time_map(dataset, tokenizer, num_proc: int) -> float:
    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=512)

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        dataset.map(
            tokenize,
            batched=True,
            batch_size=1000,
            num_proc=num_proc if num_proc > 1 else None,
            cache_file_name=str(Path(tmp) / "out.arrow"),
            load_from_cache_file=False,
        )
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", default="en,ko")
    parser.add_argument("--max-mb", type=float, default=20)
    parser.add_argument("--num-proc", default="1,2")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many maps")
    args = parser.parse_args()
    import datasets

    import bbpe

    datasets.disable_progress_bars()
    engines = {"bbpe": bbpe.Tokenizer.from_pretrained("roberta-base"), "hf": hf_roberta()}
    print("| corpus | processes | engine | MB/s | vs RobertaTokenizerFast |")
    print("| --- | ---: | --- | ---: | ---: |")
    for corpus in args.corpora.split(","):
        texts = load_texts(CORPUS_DIR / f"{corpus}.jsonl.xz", args.max_mb)
        megabytes = sum(len(t.encode()) for t in texts) / 1e6
        dataset = datasets.Dataset.from_dict({"text": texts})
        for procs in (int(n) for n in args.num_proc.split(",")):
            speed = {}
            for _ in range(args.repeats):  # rounds, so a slow spell hits both
                for name, tokenizer in engines.items():
                    seconds = time_map(dataset, tokenizer, procs)
                    speed[name] = max(speed.get(name, 0.0), megabytes / seconds)
            for name in engines:
                ratio = speed[name] / speed["hf"]
                print(f"| {corpus} | {procs} | {name} | {speed[name]:.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
