"""Blocks of token ids from sentence-split shards, in the four input formats of
RoBERTa's ablation (Liu et al. 2019, section 4.2)::

    full-sentences  whole sentences packed up to max_len across       <s> ... </s>
                    documents, with an extra </s> between documents
    doc-sentences   the same, but a block stays within one document    <s> ... </s>
    segment-pair    two runs of whole sentences, with an NSP label     <s> A </s></s> B </s>
    sentence-pair   two single sentences, with an NSP label            <s> A </s></s> B </s>

`pack` plans one epoch eagerly and cheaply (a few arrays); a block's ids are read
from the shards only when it is asked for, a batch of blocks at a time
(`Blocks.batch`: a few array operations per batch, none per block or sentence).
Every random choice comes from a NumPy Generator keyed by (seed, epoch)
(`bbpe.streams`), so a plan is the same in any process.

The plan lives in token coordinates: the shards' sentences laid end to end. A
document's sentences are consecutive there, so any run of one document's text (a
block's share of it, a segment, a truncated sentence) is one interval
[start, stop), and a block is a few such pieces with separators between them.
"""

from __future__ import annotations

import math
import operator
import os
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

import numpy as np

from bbpe import streams
from bbpe.shards import IndexedDataset, ShardFormatError, read_manifest

FORMATS = ("full-sentences", "doc-sentences", "segment-pair", "sentence-pair")
PAIR_FORMATS = FORMATS[2:]
# NSP labels as BERT and Hugging Face use them: 0 means B continues A.
IS_NEXT, NOT_NEXT = 0, 1


@dataclass(frozen=True)
class SpecialIds:
    """Ids of RoBERTa's special tokens."""

    bos: int  # <s>
    eos: int  # </s>, also the separator
    pad: int
    mask: int

    @classmethod
    def from_tokenizer(cls, tokenizer) -> SpecialIds:
        """The ids of `<s>`, `</s>`, `<pad>` and `<mask>` in a `bbpe.Tokenizer`,
        as its `bos_token_id`, `eos_token_id`, ... say."""
        tokens = {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "mask": "<mask>"}
        ids = {field: getattr(tokenizer, f"{field}_token_id") for field in tokens}
        missing = [tokens[field] for field, id in ids.items() if id is None]
        if missing:
            *rest, last = missing
            names = f"{', '.join(rest)} or {last}" if rest else last
            raise ValueError(f"the vocabulary has no {names} token")
        return cls(**ids)

    def all(self) -> tuple[int, ...]:
        return (self.bos, self.eos, self.pad, self.mask)


# ---------------------------------------------------------------------------
# the documents


class ShardDocuments:
    """Shards read as one sequence of documents, each a run of sentences (sequences).

    `shards` is an `IndexedDataset`, a shard prefix, a directory (the shards its
    `manifest.json` lists, in order; without one, every `*.idx` in it, sorted) or
    a list of any of these. Only the index arrays are read up front: they give
    `sentence_lengths` (int64, all sentences in order) and `document_starts`
    (int64, the sentence where each document starts, then `num_sentences`).

    `split` ("train", "validation" or "test") keeps only that split's documents,
    in corpus order: the shards' documents are shuffled by `seed`
    (`bbpe.streams.split_generator`) and cut by `split_weights` (three numbers,
    or Megatron's string form "969,30,1"), each split's count rounded from its
    share of the total. A document's split depends only on the seed, the weights
    and the number of documents: never on the epoch, the rank or the worker.
    Everything else (sentences, documents, tokens) then counts that split only.
    """

    def __init__(
        self,
        shards,
        *,
        split: str | None = None,
        split_weights=(969, 30, 1),
        seed: int = 0,
    ) -> None:
        datasets = _datasets(shards)
        lengths, document_starts = [], []
        sentences = 0
        for ds in datasets:
            docs = np.asarray(ds.document_indices, dtype=np.int64)
            n = len(ds)
            if len(docs) == 0 or docs[0] != 0 or docs[-1] != n or np.any(np.diff(docs) < 0):
                raise ValueError(
                    f"{ds.idx_path}: the document index must start at 0, not decrease and "
                    f"end at the number of sequences ({n})"
                )
            lengths.append(np.asarray(ds.sequence_lengths, dtype=np.int64))
            document_starts.append(docs[:-1] + sentences)
            sentences += n
        self._datasets = datasets
        self._first_sentences = np.cumsum([0] + [len(ds) for ds in datasets])
        self.sentence_lengths = np.concatenate([np.zeros(0, np.int64), *lengths])
        self.document_starts = np.concatenate([*document_starts, [sentences]])
        self.split, self.seed = split, streams.check_seed(seed)
        # The shards' sentence behind each of this split's sentences (None: all of them).
        self._sentence_ids = None
        total_documents = len(self.document_starts) - 1
        if split is not None:
            chosen = _split_documents(total_documents, split, split_weights, self.seed)
            counts = np.diff(self.document_starts)[chosen]
            self._sentence_ids = _concat_ranges(self.document_starts[chosen], counts)
            self.sentence_lengths = self.sentence_lengths[self._sentence_ids]
            self.document_starts = np.append(np.cumsum(counts) - counts, counts.sum())
        # Where each sentence starts in token coordinates; the last entry is the end.
        self._token_starts = np.concatenate([[0], np.cumsum(self.sentence_lengths)])
        self.num_sentences = len(self.sentence_lengths)
        self.num_documents = len(self.document_starts) - 1
        self.num_tokens = int(self._token_starts[-1])
        if self.num_tokens == 0:
            names = ", ".join(ds.prefix for ds in datasets) or "no shards"
            what = "the corpus"
            if split is not None:
                what = f"the {split} split ({self.num_documents} of {total_documents} documents)"
            raise ValueError(f"{what} holds no tokens ({names})")
        self._locations: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def sentence(self, i: int) -> np.ndarray:
        """Sentence i's token ids, a read-only view into its shard (i < 0 counts from the end)."""
        j = _position(i, self.num_sentences, "sentence")
        if self._sentence_ids is not None:
            j = int(self._sentence_ids[j])
        shard = int(np.searchsorted(self._first_sentences, j, side="right")) - 1
        return self._datasets[shard][j - int(self._first_sentences[shard])]

    def document(self, d: int) -> range:
        """The indices of document d's sentences (d < 0 counts from the end)."""
        k = _position(d, self.num_documents, "document")
        return range(int(self.document_starts[k]), int(self.document_starts[k + 1]))

    def _gather(self, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
        """The tokens of the intervals [starts[k], stops[k]) of token coordinates,
        laid end to end (int64): each interval is cut where it crosses from one
        extent (`_locate`) to the next, and each shard's runs are read with one
        fancy index."""
        extent_starts, shards, firsts = self._locate()
        first = np.searchsorted(extent_starts, starts, side="right") - 1
        counts = np.searchsorted(extent_starts, stops - 1, side="right") - first
        counts = np.where(stops > starts, counts, 0)
        extent = _concat_ranges(first, counts)
        run_starts = np.maximum(extent_starts[extent], np.repeat(starts, counts))
        run_stops = np.minimum(extent_starts[extent + 1], np.repeat(stops, counts))
        run_lengths = run_stops - run_starts
        sources = firsts[extent] + (run_starts - extent_starts[extent])
        owners = shards[extent]
        out = np.empty(int(run_lengths.sum()), dtype=np.int64)
        used = np.unique(owners)
        if len(used) == 1:
            out[:] = self._datasets[used[0]].tokens()[_concat_ranges(sources, run_lengths)]
            return out
        destinations = np.cumsum(run_lengths) - run_lengths
        for shard in used:
            mine = owners == shard
            tokens = self._datasets[shard].tokens()
            taken = tokens[_concat_ranges(sources[mine], run_lengths[mine])]
            out[_concat_ranges(destinations[mine], run_lengths[mine])] = taken
        return out

    def _locate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The text in extents: runs of sentences that lie end to end in one
        shard's `tokens()`, so that within one a token coordinate maps to a
        token by an offset (a whole shard written by bbpe is one extent; a
        split's documents make more). Returns each extent's start in token
        coordinates (then the end of the text), its shard and its first token
        in that shard's `tokens()`. Made on the first read, after checking once
        that every sequence lies within its `.bin` at a whole token (a fancy
        index would otherwise wrap a negative position round)."""
        if self._locations is None:
            shards, firsts = [], []
            for k, ds in enumerate(self._datasets):
                size = ds.dtype.itemsize
                pointers = np.asarray(ds.sequence_pointers, dtype=np.int64)
                lengths = np.asarray(ds.sequence_lengths, dtype=np.int64)
                available = len(ds.tokens())
                bad = (pointers < 0) | (pointers % size != 0) | (lengths < 0)
                bad |= pointers // size + lengths > available
                if bad.any():
                    j = int(np.flatnonzero(bad)[0])
                    raise ShardFormatError(
                        f"{ds.idx_path}: sequence {j} ({lengths[j]} tokens at byte "
                        f"{pointers[j]}) is not whole {ds.dtype.name} tokens within "
                        f"{ds.bin_path}; run check() on {ds.prefix}"
                    )
                shards.append(np.full(len(ds), k, dtype=np.int32))
                firsts.append(pointers // size)
            shard_of = np.concatenate([np.zeros(0, np.int32), *shards])
            first_of = np.concatenate([np.zeros(0, np.int64), *firsts])
            if self._sentence_ids is not None:
                shard_of, first_of = shard_of[self._sentence_ids], first_of[self._sentence_ids]
            # Empty sentences hold no text: an extent starts at every sentence
            # with text that does not continue the previous one's.
            text = np.flatnonzero(self.sentence_lengths > 0)
            shard_of, first_of = shard_of[text], first_of[text]
            ends = first_of + self.sentence_lengths[text]
            breaks = (shard_of[1:] != shard_of[:-1]) | (first_of[1:] != ends[:-1])
            new = np.flatnonzero(np.concatenate([[True], breaks]))
            extent_starts = np.append(self._token_starts[text[new]], self.num_tokens)
            self._locations = (extent_starts, shard_of[new], first_of[new])
        return self._locations


SPLITS = ("train", "validation", "test")


def check_weights(weights, what: str) -> tuple[Fraction, ...]:
    """`weights` (numbers, or one string of them separated by commas, as
    Megatron's "969,30,1") as exact fractions, so that shares are exact; a
    ValueError naming the value unless they are finite, none negative and not
    all zero. A float counts as the decimal it prints as (0.3 is 3/10, not the
    binary fraction nearest it), so 0.5, 0.3, 0.2 blend as 5:3:2 do."""
    items = weights.split(",") if isinstance(weights, str) else weights
    try:
        values = tuple(
            Fraction(str(x).strip() if isinstance(x, (str, float)) else x) for x in items
        )
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what} must be finite numbers, not {weights!r}") from None
    if not values:
        raise ValueError(f"{what} are empty: give at least one")
    negative = [x for x in values if x < 0]
    if negative:
        raise ValueError(f"{what} must not be negative: {float(negative[0]):g} in {weights!r}")
    if not any(values):
        raise ValueError(f"{what} must not all be zero: {weights!r}")
    return values


def _split_documents(count: int, split: str, weights, seed: int) -> np.ndarray:
    """The documents (ascending) of `split` among `count`, as `ShardDocuments` says."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    shares = check_weights(weights, "split weights")
    if len(shares) != len(SPLITS):
        raise ValueError(
            f"split weights must be three numbers (train, validation, test), not {weights!r}"
        )
    # Each bound rounds the cumulative share (half up), so every split is
    # within one document of its share and together they cover all.
    cumulative = np.cumsum([Fraction(0), *shares])
    bounds = [math.floor(count * c / cumulative[-1] + Fraction(1, 2)) for c in cumulative]
    k = SPLITS.index(split)
    order = streams.split_generator(seed).permutation(count)
    return np.sort(order[bounds[k] : bounds[k + 1]])


def _datasets(source) -> list[IndexedDataset]:
    if isinstance(source, IndexedDataset):
        return [source]
    if isinstance(source, (str, os.PathLike)):
        if os.path.isdir(source):
            return [IndexedDataset(prefix) for prefix in _directory_shards(os.fspath(source))]
        return [IndexedDataset(source)]
    if isinstance(source, (list, tuple)):
        return [ds for item in source for ds in _datasets(item)]
    raise TypeError(
        "shards must be an IndexedDataset, a shard prefix, a directory or a list of these, "
        f"not {type(source).__name__}"
    )


def _directory_shards(directory: str) -> list[str]:
    manifest = read_manifest(directory)
    if manifest is not None:
        entries = manifest.get("shards", [])
        prefixes = [os.path.join(directory, entry["prefix"]) for entry in entries]
    else:
        prefixes = sorted(str(path)[: -len(".idx")] for path in Path(directory).glob("*.idx"))
    if not prefixes:
        raise ValueError(f"{directory}: no shards (no *.idx files, or a manifest listing none)")
    return prefixes


def check_indices(indices: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    """Block `indices` (negative ones count from the end) as int64 positions in
    [0, n); an IndexError naming the first one out of range, a TypeError for
    indices that are not integers."""
    given = np.asarray(indices).reshape(-1)
    if given.size and given.dtype.kind not in "iu":
        raise TypeError(f"block indices must be integers, not {given.dtype}")
    given = given.astype(np.int64, copy=False)
    order = np.where(given < 0, given + n, given)
    outside = (order < 0) | (order >= n)
    if outside.any():
        raise IndexError(f"block {int(given[outside][0])} out of range for {n} blocks")
    return order


def _position(i: int, n: int, what: str) -> int:
    j = operator.index(i)
    j = j + n if j < 0 else j
    if not 0 <= j < n:
        raise IndexError(f"{what} {i} out of range for {n} {what}s")
    return j


# ---------------------------------------------------------------------------
# blocks


@dataclass
class Block:
    """One input sequence: token ids with the format's special tokens."""

    input_ids: np.ndarray  # int64, length <= max_len
    nsp_label: int | None  # IS_NEXT (0) or NOT_NEXT (1) in the pair formats, else None
    segment_boundary: int | None  # where segment B starts in input_ids (pair formats)


class BlockBatch(NamedTuple):
    """Several blocks as the rows of one array."""

    input_ids: np.ndarray  # int64 (blocks, width), each row right-padded with <pad>
    lengths: np.ndarray  # int64, each block's length (its specials included)
    nsp_labels: np.ndarray | None  # int64, the pair formats' labels, else None


class Blocks(Sequence[Block]):
    """One epoch of blocks, as `pack` planned them: block i is the pieces
    `piece_starts[k]:piece_stops[k]` (token coordinates) for k in
    `block_pieces[i]:block_pieces[i+1]`, joined by separators and wrapped in
    `<s> ... </s>`. Ids are read from the shards when a block is indexed."""

    def __init__(
        self,
        documents: ShardDocuments,
        specials: SpecialIds,
        format: str,
        max_len: int,
        seed: int,
        epoch: int,
        pieces: tuple[np.ndarray, np.ndarray, np.ndarray],
        nsp_labels: np.ndarray | None,
    ) -> None:
        self.documents, self.specials = documents, specials
        self.format, self.max_len, self.seed, self.epoch = format, max_len, seed, epoch
        self._piece_starts, self._piece_stops, self._block_pieces = pieces
        self._nsp_labels = nsp_labels
        # </s> between documents; </s></s> between the two segments of a pair.
        self._separator = [specials.eos] * (1 if nsp_labels is None else 2)
        text = np.concatenate([[0], np.cumsum(self._piece_stops - self._piece_starts)])
        separators = len(self._separator) * (np.diff(self._block_pieces) - 1)
        self._lengths = text[self._block_pieces[1:]] - text[self._block_pieces[:-1]]
        self._lengths += separators + 2
        self._lengths.flags.writeable = False

    def lengths(self) -> np.ndarray:
        """The length of every block, special tokens included (read-only, int64)."""
        return self._lengths

    def __len__(self) -> int:
        return len(self._lengths)

    def __getitem__(self, i: int) -> Block:
        j = _position(i, len(self), "block")
        ids, lengths, labels = self.batch([j])
        if labels is None:
            return Block(ids[0], None, None)
        first = self._block_pieces[j]
        a_length = int(self._piece_stops[first] - self._piece_starts[first])
        return Block(ids[0], int(labels[0]), 1 + a_length + len(self._separator))

    def batch(self, indices: Sequence[int] | np.ndarray, width: int | None = None) -> BlockBatch:
        """Blocks `indices` (negative ones count from the end) as the rows of one
        int64 array `width` wide (at least their longest; by default, that),
        right-padded with `<pad>`: row r is `self[indices[r]].input_ids` padded."""
        order = check_indices(indices, len(self))
        lengths = self._lengths[order]
        longest = int(lengths.max(initial=0))
        width = longest if width is None else width
        if width < longest:
            raise ValueError(f"width {width} is less than the longest block asked for ({longest})")
        rows = len(order)
        firsts = self._block_pieces[order]
        counts = self._block_pieces[order + 1] - firsts
        pieces = _concat_ranges(firsts, counts)
        starts, stops = self._piece_starts[pieces], self._piece_stops[pieces]
        text = self.documents._gather(starts, stops)
        # Where each piece's first token goes: after <s>, the block's earlier
        # pieces and a separator before every piece but the first.
        sizes = stops - starts
        before = np.cumsum(sizes) - sizes
        first_piece = np.cumsum(counts) - counts
        rank = np.arange(len(pieces)) - np.repeat(first_piece, counts)
        columns = 1 + before - np.repeat(before[first_piece], counts) + rank * len(self._separator)
        targets = np.repeat(np.arange(rows) * width, counts) + columns
        ids = np.full((rows, width), self.specials.pad, dtype=np.int64)
        flat = ids.reshape(-1)
        flat[_concat_ranges(targets, sizes)] = text
        for back in range(1, len(self._separator) + 1):
            flat[targets[rank > 0] - back] = self.specials.eos
        ids[:, 0] = self.specials.bos
        ids[np.arange(rows), lengths - 1] = self.specials.eos
        labels = None if self._nsp_labels is None else self._nsp_labels[order].astype(np.int64)
        return BlockBatch(ids, lengths, labels)

    def __repr__(self) -> str:
        return (
            f"Blocks({self.format!r}, {len(self)} blocks, max_len={self.max_len}, "
            f"seed={self.seed}, epoch={self.epoch})"
        )


def pack(
    documents: ShardDocuments,
    format: str,
    specials: SpecialIds,
    *,
    max_len: int = 512,
    seed: int = 0,
    epoch: int = 0,
    short_seq_prob: float = 0.0,
) -> Blocks:
    """Plan one epoch of `documents` as blocks of at most `max_len` ids in `format`.

    Documents are visited in an order shuffled by (seed, epoch). Sentences and
    documents without tokens are skipped. The text of a block (max_len minus 2
    specials, or minus 4 in the pair formats) is filled as follows:

    - full-sentences: sentences greedily, across documents, with an extra `</s>`
      where a document ends inside a block (it counts against the room). A
      sentence longer than a block is cut into block-sized pieces. Every token
      appears exactly once.
    - doc-sentences: the same, but every block holds one document's text.
    - segment-pair (BERT's create_instances_from_document): sentences are
      gathered into a chunk until it reaches the target length (the room, or with
      probability `short_seq_prob` a random length from 2 up, drawn once per
      document; other formats ignore `short_seq_prob`); A is the chunk's
      first 1..n-1 sentences. With probability 0.5, B is the rest of the chunk
      (IsNext); else B is sentences from a random other document, from a random
      sentence on until the target is met, and the rest of the chunk goes back to
      the document (NotNext). A chunk of one sentence takes the document's next
      sentence as its IsNext B.
    - sentence-pair: the same with one sentence per side (a target of zero).

    The label of every pair is a fair coin, so (in expectation) half the pairs are
    IsNext, as in BERT's NSP: no pair starts with an A that nothing in its
    document could continue. Instead, a pair that would leave its document's
    last sentence alone takes it along in segment-pair (at the end of an IsNext
    B, or of a NotNext A; the pair is then cut to fit as usual), and in
    sentence-pair, one sentence a side, that sentence is not used as an A.
    Neither format uses a document of one sentence as an A. Such text can still
    be a NotNext B. On an English corpus (49k documents, 6% of them one
    sentence; max_len 512), sentence-pair thus leaves 2.3% of the tokens out of
    As and IsNext Bs (about two thirds of the documents' last sentences), and
    segment-pair 0.15% on top of what cutting already drops (leaving the lone
    sentence out there too would drop 0.8%).

    Pairs that do not fit are cut on their longer side until they do (when both
    sides are long, A keeps half the room, rounded up), A from its front and B
    from its back: the A|B junction stays a natural sentence boundary, so an
    IsNext B always continues A exactly.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    pairs = format in PAIR_FORMATS
    added = 4 if pairs else 2  # <s> A </s></s> B </s>, or <s> ... </s>
    needed = 2 if pairs else 1  # a token of text, on each side of a pair
    if max_len < added + needed:
        raise ValueError(f"max_len must be at least {added + needed} for {format}, not {max_len}")
    room = max_len - added
    if not 0.0 <= short_seq_prob <= 1.0:
        raise ValueError(f"short_seq_prob must be in [0, 1], not {short_seq_prob}")
    rng = streams.packing_generator(seed, epoch)
    starts, doc_starts = _layout(documents)
    order = rng.permutation(len(doc_starts) - 1)
    nsp_labels = None
    if not pairs:
        pieces = _plan_sentences(starts, doc_starts, order, room, format == "full-sentences")
    elif len(order) < 2:
        raise ValueError(
            f"{format} needs at least two documents with text (for NotNext pairs); "
            f"the corpus has {len(order)}"
        )
    elif not np.any(np.diff(doc_starts) > 1):
        raise ValueError(
            f"{format} needs a document of at least two sentences with text (for IsNext "
            "pairs); the corpus has none"
        )
    else:
        target = room if format == "segment-pair" else 0
        chance = short_seq_prob if format == "segment-pair" else 0.0
        fold = format == "segment-pair"
        pieces, nsp_labels = _plan_pairs(starts, doc_starts, order, room, target, chance, fold, rng)
    return Blocks(documents, specials, format, max_len, seed, epoch, pieces, nsp_labels)


def _layout(documents: ShardDocuments) -> tuple[np.ndarray, np.ndarray]:
    """The documents without empty sentences and documents, in token coordinates:
    (`starts`, where each sentence starts, then the end of the text; `doc_starts`,
    the sentence where each document starts, then the number of sentences)."""
    kept = np.flatnonzero(documents.sentence_lengths > 0)
    starts = np.append(documents._token_starts[kept], documents.num_tokens)
    # Empty documents start where the next one does: unique drops them.
    doc_starts = np.unique(np.searchsorted(kept, documents.document_starts))
    return starts, doc_starts


def _concat_ranges(firsts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """range(firsts[0], firsts[0] + counts[0]), then the next range, ... as one array."""
    offsets = np.cumsum(counts) - counts
    return np.repeat(firsts - offsets, counts) + np.arange(counts.sum())


def _plan_sentences(
    starts: np.ndarray, doc_starts: np.ndarray, order: np.ndarray, room: int, cross: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """full-sentences (`cross`) or doc-sentences: (piece starts, piece stops, block
    pieces) of greedy blocks of whole sentences."""
    # Units: the sentences in document order, those longer than `room` cut into pieces.
    counts = np.diff(doc_starts)[order]
    sentences = _concat_ranges(doc_starts[order], counts)
    sentence_starts, sentence_stops = starts[sentences], starts[sentences + 1]
    cuts = -(-(sentence_stops - sentence_starts) // room)
    first_units = np.cumsum(cuts) - cuts
    owner = np.repeat(np.arange(len(sentences)), cuts)
    unit_starts = sentence_starts[owner] + (np.arange(len(owner)) - first_units[owner]) * room
    unit_stops = np.minimum(unit_starts + room, sentence_stops[owner])
    document_firsts = first_units[np.cumsum(counts) - counts]
    new_document = np.zeros(len(owner), dtype=bool)
    new_document[document_firsts] = True

    # A block takes units s..e-1 while their cost, text plus a separator before each
    # new document but the block's first, fits: reach[e] - reach[s] - spared[s] <= room.
    separator = int(cross)
    cost = unit_stops - unit_starts + separator * new_document
    reach = np.concatenate([[0], np.cumsum(cost)]).tolist()
    spared = (separator * new_document).tolist()
    bounds = [0, len(owner)] if cross else [*document_firsts.tolist(), len(owner)]
    block_firsts = []
    for low, high in pairwise(bounds):
        unit = low
        while unit < high:
            block_firsts.append(unit)
            limit = reach[unit] + spared[unit] + room
            unit = bisect_right(reach, limit, unit + 1, high + 1) - 1

    # A piece is a block's run of units from one document: contiguous text.
    piece_firsts = np.union1d(np.flatnonzero(new_document), block_firsts)
    piece_lasts = np.append(piece_firsts[1:], len(owner)) - 1
    block_pieces = np.append(np.searchsorted(piece_firsts, block_firsts), len(piece_firsts))
    return unit_starts[piece_firsts], unit_stops[piece_lasts], block_pieces


def _plan_pairs(
    starts: np.ndarray,
    doc_starts: np.ndarray,
    order: np.ndarray,
    room: int,
    target: int,
    short_seq_prob: float,
    fold: bool,
    rng: np.random.Generator,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """segment-pair or sentence-pair (target 0): ((piece starts, piece stops, block
    pieces), NSP labels); pieces 2i and 2i+1 are pair i's A and B. With `fold`
    (segment-pair), a pair that would leave its document's last sentence alone
    takes it (at the end of an IsNext B, or of a NotNext A); without, that
    sentence is not used as an A."""
    at = starts.tolist()  # token coordinate of each sentence start
    docs = doc_starts.tolist()
    draw = _uniforms(rng)
    pairs: list[int] = []  # A's start and stop, B's start and stop, label; pair after pair
    for doc in order.tolist():
        end = docs[doc + 1]
        goal = target
        if short_seq_prob and next(draw) < short_seq_prob:
            goal = 2 + _below(next(draw), room - 1)
        first = docs[doc]
        # A lone sentence left at the end has nothing to continue it: not an A.
        while end - first > 1:
            # A chunk of whole sentences reaching the goal; A is its first 1..n-1.
            chunk_end = bisect_left(at, at[first] + goal, first + 1, end)
            split = first + 1
            if chunk_end - first > 1:
                split += _below(next(draw), chunk_end - first - 1)
            # split < end, so B may continue A: the label is always a fair coin.
            if next(draw) < 0.5:
                label, b_first, b_end = IS_NEXT, split, max(chunk_end, split + 1)
                if fold and end - b_end == 1:
                    b_end = end  # the document's last sentence would be left alone
                resume = b_end
            else:
                if fold and end - split == 1:
                    split = end  # A takes the sentence that would be left alone
                other = _below(next(draw), len(docs) - 2)
                if other >= doc:
                    other += 1
                b_first = docs[other] + _below(next(draw), docs[other + 1] - docs[other])
                b_goal = at[b_first] + goal - (at[split] - at[first])
                label, b_end = NOT_NEXT, bisect_left(at, b_goal, b_first + 1, docs[other + 1])
                resume = split  # the rest of the chunk goes back to the document
            a_length, b_length = _fit(at[split] - at[first], at[b_end] - at[b_first], room)
            pairs += (at[split] - a_length, at[split], at[b_first], at[b_first] + b_length, label)
            first = resume
    a_starts, a_stops, b_starts, b_stops, labels = np.array(pairs, dtype=np.int64).reshape(-1, 5).T
    piece_starts = np.column_stack([a_starts, b_starts]).ravel()
    piece_stops = np.column_stack([a_stops, b_stops]).ravel()
    block_pieces = np.arange(0, len(piece_starts) + 1, 2)
    return (piece_starts, piece_stops, block_pieces), labels.astype(np.int8)


def _fit(a: int, b: int, room: int) -> tuple[int, int]:
    """The lengths A and B keep when the longer is cut until both fit in `room`;
    when both are long, A keeps half the room, rounded up (BERT's truncate_seq_pair
    ends there too)."""
    if a + b <= room:
        return a, b
    half = (room + 1) // 2
    if a <= half:
        return a, room - a
    if b <= room - half:
        return room - b, b
    return half, room - half


def _below(u: float, n: int) -> int:
    """A uniform integer in [0, n) from a uniform float u in [0, 1)."""
    return min(int(u * n), n - 1)


def _uniforms(rng: np.random.Generator) -> Iterator[float]:
    """Uniform floats in [0, 1) drawn in batches: a loop then pays for a list step,
    not a Generator call, per number."""
    while True:
        yield from rng.random(1 << 16).tolist()
