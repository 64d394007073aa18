"""Training: a corpus -> a vocabulary and ranked merges, the plain way.

This is the oracle for the Rust trainer (rust/train/). It learns exactly the
vocabulary and merges of Hugging Face's ``BpeTrainer`` behind a ``ByteLevel``
pre-tokenizer, and it keeps HF's books, which the Rust trainer keeps too:

- Pair counts are updated from the changes each merge makes in the words it
  rewrites. The merged pair's own occurrences are not subtracted, so its
  count is stale after its merge (it has no queue entry left by then).
- The queue holds (count, pair, words to look in) entries that may be out of
  date; an entry whose count no longer matches is queued again with the
  current count and the same words. A merge rewrites only the words its entry
  names.

These books add up to textbook BPE: merge the most frequent pair, the smaller
pair of ids among equals, everywhere, leftmost first. No merge makes a token
that an earlier merge made (a piece of a word between two token boundaries is
merged as if it stood alone, so it is always split the same way), hence every
pair gains occurrences in one step only, has one queue entry naming every word
it occurs in, and is merged once. For the same reason the order HF's heap
leaves open, between entries equal in count and pair, never arises; should it,
the entry queued first wins here.

Tokens are identified by their bytes, HF identifies them by their byte-level
spelling. The two agree except for a special token whose content is not its
own spelling (one with a space, a control character or non-ASCII): HF keeps
it apart from the byte or merged token of the same bytes, this module does not.
HF's trainer also cuts tokens already added to the Tokenizer out of the text;
a fresh Tokenizer has none, and `count_words` cuts nothing.
"""

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

import regex

from bbpe.reference.byte_alphabet import BYTE_TO_CHAR
from bbpe.reference.pretokenize import GPT2_PATTERN, pin_classes, pretokenize
from bbpe.reference.vocab import ROBERTA_SPECIALS

Pair = tuple[int, int]


def count_words(texts: Iterable[str], pattern: str = GPT2_PATTERN) -> dict[bytes, int]:
    """How often each pretoken occurs in `texts`, keyed by its UTF-8 bytes.
    GPT-2's pattern is run as `pretokenize` runs it; in any other pattern the
    same classes are pinned to the Rust core's, and the rest (`\\w`, say) is
    read as the installed `regex` package reads it."""
    if pattern == GPT2_PATTERN:
        split = pretokenize
    else:
        compiled = regex.compile(pin_classes(pattern))

        def split(text: str) -> list[str]:
            return [m[0] for m in compiled.finditer(text)]

    counts: dict[bytes, int] = {}
    for text in texts:
        for piece in split(text):
            if piece:  # an empty match has no bytes to merge
                word = piece.encode()
                counts[word] = counts.get(word, 0) + 1
    return counts


@dataclass
class Trained:
    # Token bytes by id; a special token's entry is its UTF-8 content.
    tokens: list[bytes]
    # (left id, right id, result id) in the order the merge loop made them.
    merges: list[tuple[int, int, int]]
    # The distinct special tokens; they have ids 0 .. len(specials) - 1.
    specials: list[str] = field(default_factory=list)

    def merge_pairs(self) -> list[tuple[bytes, bytes]]:
        """The merges as files hold them, in merge order. HF's model keeps merges
        in a dict keyed by pair, so of a pair merged twice only the later rank
        survives (`learn_merges` never merges a pair twice, see above)."""
        last = {(left, right): step for step, (left, right, _) in enumerate(self.merges)}
        return [
            (self.tokens[left], self.tokens[right])
            for step, (left, right, _) in enumerate(self.merges)
            if last[left, right] == step
        ]


def _merge_word(symbols: list[int], left: int, right: int, new: int):
    """Replace each (left, right) in `symbols`, leftmost first and without
    overlaps, by `new`. Returns the rewritten symbols and the pair changes
    HF's Word::merge reports: per occurrence, the pairs it breaks (-1) and
    makes (+1) with the symbol before it (already rewritten) and the symbol
    after it (not yet rewritten). The occurrence itself is not reported."""
    out: list[int] = []
    changes: list[tuple[Pair, int]] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == left and symbols[i + 1] == right:
            if out:
                changes += [((out[-1], left), -1), ((out[-1], new), 1)]
            if i + 2 < len(symbols):
                after = symbols[i + 2]
                changes += [((right, after), -1), ((new, after), 1)]
            out.append(new)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out, changes


def learn_merges(
    word_counts: dict[bytes, int],
    vocab_size: int,
    min_frequency: int,
    special_tokens: list[str],
    max_token_length: int | None = None,
) -> Trained:
    # 1. Ids: the special tokens, then the 256 bytes in the order of their
    #    byte-level characters' code points (HF sorts its alphabet by char),
    #    then one per new merged token. Each distinct token bytes has one id.
    tokens: list[bytes] = []
    ids: dict[bytes, int] = {}

    def add(token: bytes) -> int:
        if token not in ids:
            ids[token] = len(tokens)
            tokens.append(token)
        return ids[token]

    for special in special_tokens:
        add(special.encode())
    specials = [t.decode() for t in tokens]
    for byte in sorted(range(256), key=lambda b: ord(BYTE_TO_CHAR[b])):
        add(bytes([byte]))

    # A pair is counted at all only if its token would be short enough.
    def allowed(pair: Pair) -> bool:
        if max_token_length is None:
            return True
        return len(tokens[pair[0]]) + len(tokens[pair[1]]) <= max_token_length

    # 2. Words as byte ids, and every allowed adjacent pair counted with the
    #    word's count; `where` notes the words each pair occurs in.
    words = [[ids[bytes([b])] for b in word] for word in word_counts]
    counts = list(word_counts.values())
    pair_counts: dict[Pair, int] = {}
    where: dict[Pair, set[int]] = {}
    for w, symbols in enumerate(words):
        for i in range(len(symbols) - 1):  # windows of 2: b"aaa" has (a, a) twice
            pair = (symbols[i], symbols[i + 1])
            if allowed(pair):
                pair_counts[pair] = pair_counts.get(pair, 0) + counts[w]
                where.setdefault(pair, set()).add(w)

    # 3. The queue: a min-heap of (-count, pair, seq, words), so the highest
    #    count comes first, then the smaller pair, then the entry pushed first.
    #    `seq` numbers the pushes; a re-queued entry keeps its number.
    queue: list[tuple[int, Pair, int, set[int]]] = []
    seq = 0

    def push(pair: Pair, positions: set[int]) -> None:
        nonlocal seq
        heapq.heappush(queue, (-pair_counts[pair], pair, seq, positions))
        seq += 1

    for pair, positions in where.items():
        if pair_counts[pair] > 0:
            push(pair, positions)

    # 4. Merge until the vocabulary (specials included) is big enough.
    merges: list[tuple[int, int, int]] = []
    while len(tokens) < vocab_size and queue:
        neg_count, pair, number, positions = heapq.heappop(queue)
        count = -neg_count
        if count != pair_counts[pair]:
            # Out of date: queue it again as it is now, in its old place in line.
            heapq.heappush(queue, (-pair_counts[pair], pair, number, positions))
            continue
        if count < 1 or count < min_frequency:
            break  # no pair in the queue is more frequent
        left, right = pair
        new = add(tokens[left] + tokens[right])  # may be a token that exists already
        merges.append((left, right, new))

        # Rewrite only the words this entry names, and apply the changes. The
        # merged pair's count is left as it is (stale), as HF leaves it.
        step_where: dict[Pair, set[int]] = {}
        for w in sorted(positions):
            words[w], changes = _merge_word(words[w], left, right, new)
            for changed, delta in changes:
                if not allowed(changed):
                    continue
                pair_counts[changed] = pair_counts.get(changed, 0) + delta * counts[w]
                if delta > 0:
                    step_where.setdefault(changed, set()).add(w)
        # Queue each pair this step made, naming only the words it was made in.
        for changed, changed_in in step_where.items():
            if pair_counts[changed] > 0:
                push(changed, changed_in)

    return Trained(tokens, merges, specials)


def train(
    texts: Iterable[str],
    vocab_size: int = 50265,
    min_frequency: int = 2,
    special_tokens: list[str] = ROBERTA_SPECIALS,
    max_token_length: int | None = None,
    pattern: str = GPT2_PATTERN,
) -> Trained:
    word_counts = count_words(texts, pattern)
    return learn_merges(word_counts, vocab_size, min_frequency, special_tokens, max_token_length)
