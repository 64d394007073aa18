"""The vocabulary: token bytes <-> ids, ranked merges and special tokens,
read from GPT-2's vocab.json (token string -> id) and merges.txt (rank order)."""

import json
from pathlib import Path

from bbpe.reference.byte_alphabet import token_string_to_bytes

ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
GPT2_SPECIALS = ["<|endoftext|>"]


class Vocab:
    def __init__(self, vocab_json: dict[str, int], merge_lines: list[str]):
        # A vocabulary with <s> is RoBERTa's; only specials vocab.json has count.
        candidates = ROBERTA_SPECIALS if "<s>" in vocab_json else GPT2_SPECIALS
        self.specials: dict[str, int] = {s: vocab_json[s] for s in candidates if s in vocab_json}
        # As in roberta-base's tokenizer.json, <mask> swallows the whitespace before it.
        self.lstrip: set[str] = {"<mask>"} & set(self.specials)
        self.ids: dict[bytes, int] = {}
        for token, id in vocab_json.items():
            try:
                self.ids[token_string_to_bytes(token)] = id
            except KeyError:  # a special token need not be in the byte alphabet
                if token not in self.specials:
                    raise
        self.tokens: dict[int, bytes] = {id: t for t, id in self.ids.items()}
        self.tokens.update({id: s.encode() for s, id in self.specials.items()})
        # (left id, right id) -> (rank, id of the merged token); rank 0 merges first.
        self.ranks: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, line in enumerate(merge_lines):
            left, right = map(token_string_to_bytes, line.split(" "))
            self.ranks[self.ids[left], self.ids[right]] = (rank, self.ids[left + right])

    @classmethod
    def from_files(cls, vocab_path, merges_path) -> "Vocab":
        vocab_json = json.loads(Path(vocab_path).read_text(encoding="utf-8"))
        lines = Path(merges_path).read_text(encoding="utf-8").splitlines()
        if lines and lines[0].startswith("#version"):
            lines = lines[1:]
        return cls(vocab_json, [line for line in lines if line.strip()])
