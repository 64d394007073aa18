"""Stage 2: text -> ids. Special tokens written in the text are cut out first,
the rest is split into pretokens, and each pretoken's bytes are merged."""

import re

from bbpe.reference.merge import merge
from bbpe.reference.pretokenize import SPACE, pretokenize
from bbpe.reference.vocab import Vocab

_TRAILING_SPACE = re.compile(f"[{SPACE}]+$")


class ReferenceEncoder:
    def __init__(self, vocab: Vocab):
        self.vocab = vocab
        self.byte_ids = [vocab.ids[bytes([b])] for b in range(256)]

    @classmethod
    def from_files(cls, vocab_path, merges_path) -> "ReferenceEncoder":
        return cls(Vocab.from_files(vocab_path, merges_path))

    def encode(self, text: str, allowed_special="all") -> list[int]:
        """`allowed_special` is "all", "none" or a collection of special token strings."""
        specials = self.vocab.specials
        if allowed_special == "all":
            allowed_special = specials
        elif allowed_special == "none":
            allowed_special = ()
        allowed = [s for s in specials if s in allowed_special]
        ids: list[int] = []
        # Text and special tokens alternate: text, special, text, ..., text.
        parts = self._split_specials(text, allowed)
        for i in range(1, len(parts), 2):
            if parts[i] in self.vocab.lstrip:
                parts[i - 1] = _TRAILING_SPACE.sub("", parts[i - 1])
        for i, part in enumerate(parts):
            ids.extend([specials[part]] if i % 2 else self._encode_ordinary(part))
        return ids

    @staticmethod
    def _split_specials(text: str, allowed: list[str]) -> list[str]:
        """Longest alternatives first, so the backtracking regex finds the
        leftmost-longest match, as the Rust core's Aho-Corasick automaton does."""
        if not allowed:
            return [text]
        by_length = sorted(allowed, key=len, reverse=True)
        return re.split(f"({'|'.join(map(re.escape, by_length))})", text)

    def _encode_ordinary(self, text: str) -> list[int]:
        ids = []
        for pretoken in pretokenize(text):
            ids.extend(merge([self.byte_ids[b] for b in pretoken.encode()], self.vocab.ranks))
        return ids

    def decode(self, ids: list[int]) -> bytes:
        return b"".join(self.vocab.tokens[i] for i in ids)
