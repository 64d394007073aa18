"""From shards to masked batches: the last stage of the masked-LM data pipeline.

    shards ──► ShardDocuments ──► pack (blocks of one epoch) ──► Masker ──► collate ──► batches
               packing            packing                       masking    data        data

`MaskedLMDataset` is map-style over one epoch's blocks, and makes a batch of them
whole (`batch`: read together, masked together; the same arrays as collating
its items one by one); `FixedBatches` and `TokenBudgetBatches` cut its indices
into batches for one data-parallel rank; `MaskedLMIterable` (or the plain
generator `batches`) yields collated batches and splits them across data-loader
workers. Everything is decided by (seed, epoch) and
the block's index, never by what was drawn before, so any batch of any epoch can
be rebuilt on its own: resuming mid-epoch (`start=`) gives the batches an
uninterrupted run would have given.

The dataset holds the one seed (every random stream derives from it, see
`bbpe.streams`) and the epoch; samplers made `for_dataset` read both from it, so
`dataset.set_epoch(e)` is all a new epoch takes. NumPy only; bbpe never imports
torch. With torch, either::

    dataset = MaskedLMDataset(shards, "roberta-base", seed=seed)
    sampler = FixedBatches.for_dataset(dataset, 32, rank=rank, world_size=world_size)
    loader = DataLoader(dataset, batch_sampler=sampler,
                        collate_fn=functools.partial(collate, pad_id=dataset.specials.pad))
    for epoch in range(epochs):
        dataset.set_epoch(epoch)  # the sampler follows
        for batch in loader: ...

or, with the batches split across workers by `MaskedLMIterable` itself::

    stream = MaskedLMIterable(dataset, sampler)
    for epoch in range(epochs):
        stream.set_epoch(epoch)  # before the loader's workers copy the stream
        for batch in DataLoader(stream, batch_size=None, num_workers=4): ...

Several corpora blend by weight (`MaskedLMDataset([(3, "wiki/"), (1, "books/")], ...)`,
`bbpe.blending`), and `split=` keeps their train, validation or test documents.

Batches are dicts of int64 NumPy arrays (DataLoader turns them into tensors).
Every rank must use the same seed; only `rank` differs.
"""

from __future__ import annotations

import itertools
import math
import numbers
import operator
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from bbpe import blending, masking, packing, streams


class MaskedLMDataset:
    """One epoch's blocks of `shards` in `format`, masked: `ds[i]` is a dict with

    - "input_ids": int64, the block with its specials, masked;
    - "labels": int64, the original id where a position was chosen for the loss,
      -100 elsewhere (absent when `masker=False`);
    - "nsp_label": 0 IsNext / 1 NotNext (pair formats only);
    - "index": i.

    `shards` is a `packing.ShardDocuments` or anything it accepts (shard prefix,
    directory with a manifest, `IndexedDataset`, a list of these), or a blend of
    several such sets: a list of (weight, shards) pairs, packed each on its own and
    drawn in proportion to the weights (`bbpe.blending`; block i is then masked as
    block i of the blend). `split` ("train", "validation" or "test") keeps that
    split of the documents (of each set of a blend), cut by `split_weights` and
    the seed (`packing.ShardDocuments`). `documents` is then a `ShardDocuments`,
    or a tuple of them with `weights` (exact fractions; None without a blend).
    `tokenizer` (a
    `bbpe.Tokenizer` or a name such as "roberta-base") supplies `specials` and the
    masker when they are not given. `seed` is the data's one seed: `masker=None`
    builds the RoBERTa masker with it, a masker given must have been built with
    it (a ValueError otherwise, rather than a second seed), and samplers made
    `for_dataset` take it; `masker=False` turns masking off. `set_epoch` re-packs
    (a new document order) and re-masks (block i is masked by
    `masker.mask(block, epoch, i)`). With a `masking.StaticMasker` the data is
    static, as in RoBERTa's baseline: the blocks are packed once (the plan of
    epoch 0) and every epoch re-masks them, so block i is the same text in every
    epoch and sees copy `epoch % copies` of its masks.

    `packing` checks the rest and raises ValueError: an unknown format, a
    `max_len` without room for text between the format's specials, shards
    without tokens, a pair format over fewer than two documents.
    """

    def __init__(
        self,
        shards: Any,
        tokenizer: Any = None,
        *,
        format: str = "full-sentences",
        max_len: int = 512,
        seed: int = 0,
        masker: masking.Masker | masking.StaticMasker | bool | None = None,
        specials: packing.SpecialIds | None = None,
        epoch: int = 0,
        short_seq_prob: float = 0.0,
        split: str | None = None,
        split_weights=(969, 30, 1),
    ):
        if masker is True:
            raise ValueError("masker must be a Masker, None (the default masker) or False")
        if isinstance(tokenizer, str):
            from bbpe.tokenizer import Tokenizer

            tokenizer = Tokenizer.from_pretrained(tokenizer)
        if tokenizer is None and (specials is None or masker is None):
            raise ValueError("without a tokenizer, give both specials and a masker (or False)")
        seed = streams.check_seed(seed)
        if masker is not None and masker is not False and masker.seed != seed:
            raise ValueError(
                f"the masker's seed is {masker.seed} but the dataset's is {seed}: the data has "
                f"one seed, so build the masker with seed={seed} or give the dataset "
                f"seed={masker.seed}"
            )
        if specials is None:
            specials = packing.SpecialIds.from_tokenizer(tokenizer)
        if masker is None:
            masker = masking.Masker.from_tokenizer(tokenizer, seed=seed)
        self.specials = specials
        self.masker = masker
        blend = _blend_entries(shards)
        if blend is None:
            self.weights = None
            self.documents = _documents(shards, split, split_weights, seed)
        else:
            self.weights = packing.check_weights([weight for weight, _ in blend], "blend weights")
            self.documents = tuple(
                _documents(source, split, split_weights, seed) for _, source in blend
            )
        self.format = format
        self.max_len = max_len
        self._seed = seed
        self.short_seq_prob = short_seq_prob
        self.blocks: packing.Blocks | blending.BlendedBlocks | None = None
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Packs the blocks of `epoch` (of epoch 0 for a `StaticMasker`, whose masks
        repeat only if the blocks do); their masks follow from (epoch, index).
        Samplers made for this dataset follow it."""
        epoch = streams.check_epoch(epoch)
        plan = 0 if isinstance(self.masker, masking.StaticMasker) else epoch
        if self.blocks is None or self.blocks.epoch != plan:
            settings = dict(
                max_len=self.max_len,
                seed=self.seed,
                epoch=plan,
                short_seq_prob=self.short_seq_prob,
            )
            if self.weights is None:
                self.blocks = packing.pack(self.documents, self.format, self.specials, **settings)
            else:
                self.blocks = blending.blend(
                    self.documents, self.weights, self.format, self.specials, **settings
                )
        self._epoch = epoch

    @property
    def seed(self) -> int:
        """The one seed of the data (packing, masks, samplers made for the dataset)."""
        return self._seed

    @property
    def epoch(self) -> int:
        """The epoch, changed only by `set_epoch` (which re-packs)."""
        return self._epoch

    def lengths(self) -> np.ndarray:
        """The blocks' lengths in tokens, specials included (for `TokenBudgetBatches`)."""
        return self.blocks.lengths()

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = operator.index(i)
        n = len(self.blocks)
        if not -n <= i < n:
            raise IndexError(f"block {i} out of range for {n} blocks")
        i %= n  # the mask and "index" belong to the block, however it was named
        block = self.blocks[i]
        example: dict[str, Any] = {"input_ids": block.input_ids}
        if self.masker is not False:
            masked, labels = self.masker.mask(block.input_ids, self.epoch, i)
            example.update(input_ids=masked, labels=labels)
        if self.format in packing.PAIR_FORMATS:
            example["nsp_label"] = block.nsp_label
        example["index"] = i
        return example

    def batch(
        self, indices: Sequence[int] | np.ndarray, *, pad_to_multiple_of: int | None = None
    ) -> dict[str, np.ndarray]:
        """The collated batch of blocks `indices`: what `collate([self[i] for i in
        indices], self.specials.pad, pad_to_multiple_of=...)` gives, made for the
        whole batch at once (the blocks read together, masked by one
        `mask_batch`)."""
        order = packing.check_indices(indices, len(self.blocks))
        if len(order) == 0:
            raise ValueError("a batch needs at least one block")
        width = _padded_width(int(self.blocks.lengths()[order].max()), pad_to_multiple_of)
        ids, lengths, nsp_labels = self.blocks.batch(order, width)
        attention_mask = (np.arange(width) < lengths[:, None]).astype(np.int64)
        batch = {"input_ids": ids, "attention_mask": attention_mask}
        if self.masker is not False:
            masked, labels = self.masker.mask_batch(ids, self.epoch, order.tolist(), attention_mask)
            batch.update(input_ids=masked, labels=labels)
        if nsp_labels is not None:
            batch["nsp_label"] = nsp_labels
        batch["index"] = order
        return batch

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """`[self[i] for i in indices]`, made as one `batch` (torch's DataLoader
        fetches a batch sampler's indices through this)."""
        batch = self.batch(indices)
        lengths = batch["attention_mask"].sum(axis=1).tolist()
        examples = []
        for row, n in enumerate(lengths):
            example: dict[str, Any] = {"input_ids": batch["input_ids"][row, :n]}
            if "labels" in batch:
                example["labels"] = batch["labels"][row, :n]
            if "nsp_label" in batch:
                example["nsp_label"] = int(batch["nsp_label"][row])
            example["index"] = int(batch["index"][row])
            examples.append(example)
        return examples


def _padded_width(longest: int, pad_to_multiple_of: int | None) -> int:
    if pad_to_multiple_of is None:
        return longest
    if pad_to_multiple_of < 1:
        raise ValueError(f"pad_to_multiple_of must be positive, not {pad_to_multiple_of}")
    return -(-longest // pad_to_multiple_of) * pad_to_multiple_of


def _blend_entries(shards: Any) -> list[tuple[Any, Any]] | None:
    """The (weight, shards) pairs of a blend, or None when `shards` is one set.
    An entry is a blend's when it is a tuple or list starting with a number."""
    if not isinstance(shards, (list, tuple)):
        return None
    weighted = [
        isinstance(item, (list, tuple)) and len(item) > 0 and isinstance(item[0], numbers.Number)
        for item in shards
    ]
    if not any(weighted):
        return None
    for item, is_weighted in zip(shards, weighted, strict=True):
        if not is_weighted or len(item) != 2:
            raise ValueError(
                f"a blend is a list of (weight, shards) pairs, so {item!r} does not belong in it"
            )
    return [tuple(item) for item in shards]


def _documents(source: Any, split: str | None, split_weights: Any, seed: int):
    """`source` as `ShardDocuments`, of `split` if one is asked for."""
    if not isinstance(source, packing.ShardDocuments):
        return packing.ShardDocuments(source, split=split, split_weights=split_weights, seed=seed)
    if split is not None:
        raise ValueError(
            "split= applies to shards the dataset reads; give ShardDocuments its split instead"
        )
    if source.split is not None and source.seed != seed:
        raise ValueError(
            f"the documents' {source.split} split was drawn with seed {source.seed} but the "
            f"dataset's seed is {seed}: the data has one seed"
        )
    return source


def collate(
    examples: Sequence[Mapping[str, Any]], pad_id: int, *, pad_to_multiple_of: int | None = None
) -> dict[str, np.ndarray]:
    """Stacks examples of `MaskedLMDataset` into int64 arrays, right-padded to the
    longest (rounded up to `pad_to_multiple_of`, e.g. 8 for tensor cores):
    "input_ids" (pad_id), "attention_mask" (1 on tokens, 0 on padding), "labels"
    (-100 on padding) when the examples have labels, and "nsp_label" / "index"
    as 1-D arrays when they have those."""
    if not examples:
        raise ValueError("collate needs at least one example")
    longest = max(len(example["input_ids"]) for example in examples)
    width = _padded_width(longest, pad_to_multiple_of)
    first = examples[0]
    shape = (len(examples), width)
    batch = {
        "input_ids": np.full(shape, pad_id, dtype=np.int64),
        "attention_mask": np.zeros(shape, dtype=np.int64),
    }
    if "labels" in first:
        batch["labels"] = np.full(shape, masking.IGNORE_INDEX, dtype=np.int64)
    for row, example in enumerate(examples):
        n = len(example["input_ids"])
        batch["input_ids"][row, :n] = example["input_ids"]
        batch["attention_mask"][row, :n] = 1
        if "labels" in batch:
            batch["labels"][row, :n] = example["labels"]
    for key in ("nsp_label", "index"):
        if key in first:
            batch[key] = np.array([example[key] for example in examples], dtype=np.int64)
    return batch


def _check_rank(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, not rank={rank}, world_size={world_size}")


class _Sampler:
    """Where a sampler's seed, epoch and examples come from. A sampler made
    `for_dataset` reads them from its dataset whenever it is used (the dataset is
    the one place that knows them, so the two cannot disagree) and re-batches
    when they changed; one made over plain lengths keeps its own, which
    `set_epoch` changes. Subclasses say what their examples are (`_take`: a
    count or lengths) and how they are batched (`_make`)."""

    dataset: MaskedLMDataset | None = None

    @property
    def seed(self) -> int:
        return self._seed if self.dataset is None else self.dataset.seed

    @property
    def epoch(self) -> int:
        return self._epoch if self.dataset is None else self.dataset.epoch

    def set_epoch(self, epoch: int, lengths: Sequence[int] | np.ndarray | None = None) -> None:
        """Batches for `epoch`; `lengths` replace the examples' lengths when they
        changed with the epoch (only their number counts for `FixedBatches`). A
        sampler made for a dataset follows the dataset's `set_epoch` instead."""
        if self.dataset is not None:
            raise ValueError(
                "this sampler follows its dataset's epoch: call dataset.set_epoch(epoch)"
            )
        self._epoch = streams.check_epoch(epoch)
        if lengths is not None:
            self._examples = self._take(lengths)
        self._cache = None  # the caller's lengths may be the same array, changed
        self._batches()  # refuses an epoch that leaves this rank without a batch

    def _batches(self) -> Any:
        """The current epoch's batches for this rank, made again only when the
        seed, epoch or examples changed (a cache, not a second record of them)."""
        if self.dataset is None:
            key = (self._seed, self._epoch, self._examples)
        else:
            key = (self.dataset.seed, self.dataset.epoch, self._take(self.dataset.lengths()))
        cached = self._cache
        if cached is None or cached[0][:2] != key[:2] or not _same(cached[0][2], key[2]):
            self._cache = (key, self._make(*key))
        return self._cache[1]


def _same(a: int | np.ndarray, b: int | np.ndarray) -> bool:
    """Counts of examples are the same by value; lengths only as the same array
    (a dataset keeps its lengths until it re-packs)."""
    return a is b if isinstance(a, np.ndarray) else a == b


class FixedBatches(_Sampler):
    """Batches of `batch_size` indices of `range(num_examples)` for one rank, in an
    order shuffled by (seed, epoch) (or in order with `shuffle=False`).

    Ranks take every `world_size`-th index of the shuffled order, after the
    `num_examples % world_size` last ones are dropped for the epoch, so ranks never
    share an index and all have the same number of batches (as data parallelism
    needs); a new epoch drops other indices. Step k's batches of all ranks are
    together the k-th slice of `world_size * batch_size` indices of that order.
    `drop_last` drops each rank's final short batch. Yields lists of ints, so it
    also serves as a torch `batch_sampler`.

    `FixedBatches.for_dataset(dataset, batch_size, ...)` batches a
    `MaskedLMDataset` with its seed, epoch and number of blocks.
    """

    def __init__(
        self,
        num_examples: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        _check_rank(rank, world_size)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self._seed = streams.check_seed(seed)
        self._examples = num_examples
        self.set_epoch(epoch)

    @classmethod
    def for_dataset(
        cls,
        dataset: MaskedLMDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> FixedBatches:
        """Batches of `dataset`'s blocks, in the order of its seed and current epoch."""
        sampler = cls(
            len(dataset),
            batch_size,
            shuffle=shuffle,
            seed=dataset.seed,
            epoch=dataset.epoch,
            drop_last=drop_last,
            rank=rank,
            world_size=world_size,
        )
        sampler.dataset = dataset
        return sampler

    @property
    def num_examples(self) -> int:
        return self._examples if self.dataset is None else len(self.dataset)

    @staticmethod
    def _take(lengths: Sequence[int] | np.ndarray) -> int:
        return len(lengths)

    def _count(self, n: int) -> int:
        share = n // self.world_size
        return share // self.batch_size if self.drop_last else -(-share // self.batch_size)

    def __len__(self) -> int:
        return self._count(self.num_examples)

    def _make(self, seed: int, epoch: int, n: int) -> np.ndarray:
        """This rank's indices in the order of (seed, epoch)."""
        if self._count(n) == 0:
            raise ValueError(
                f"{n} examples in batches of {self.batch_size} give rank "
                f"{self.rank} of {self.world_size} no batch"
                + (" (drop_last)" if self.drop_last else "")
            )
        if self.shuffle:
            order = streams.sampler_generator(seed, epoch).permutation(n)
        else:
            order = np.arange(n)
        return order[: n - n % self.world_size][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        share = self._batches()
        for k in range(len(self)):
            yield share[k * self.batch_size : (k + 1) * self.batch_size].tolist()


class TokenBudgetBatches(_Sampler):
    """Batches whose padded size (examples × longest) stays within `max_tokens`
    (fairseq's `--max-tokens`), for variable-length blocks (DOC-SENTENCES, the
    paper's "dynamically increase the batch size").

    The indices are shuffled by (seed, epoch) and cut into buckets of `bucket_size`;
    each bucket is sorted by length (ties stay in shuffled order) and cut greedily
    into the largest batches that fit, so that padding is small while which
    examples meet in a batch still changes every epoch. The batch order is then
    shuffled, the last `len % world_size` batches are dropped for the epoch, and
    rank r takes batches r, r + world_size, ...: ranks share no index and have
    the same number of batches. An example longer than `max_tokens` is an error
    (rather than a batch over budget that could run out of memory).

    `TokenBudgetBatches.for_dataset(dataset, max_tokens, ...)` batches a
    `MaskedLMDataset` with its seed, epoch and block lengths.
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        max_tokens: int,
        *,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        bucket_size: int = 8192,
    ):
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, not {max_tokens}")
        if bucket_size < 1:
            raise ValueError(f"bucket_size must be positive, not {bucket_size}")
        _check_rank(rank, world_size)
        self.max_tokens = max_tokens
        self.rank = rank
        self.world_size = world_size
        self.bucket_size = bucket_size
        self._seed = streams.check_seed(seed)
        self.set_epoch(epoch, lengths)

    @classmethod
    def for_dataset(
        cls,
        dataset: MaskedLMDataset,
        max_tokens: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        bucket_size: int = 8192,
    ) -> TokenBudgetBatches:
        """Batches of `dataset`'s blocks, by their lengths, in the order of its
        seed and current epoch."""
        sampler = cls(
            dataset.lengths(),
            max_tokens,
            seed=dataset.seed,
            epoch=dataset.epoch,
            rank=rank,
            world_size=world_size,
            bucket_size=bucket_size,
        )
        sampler.dataset = dataset
        return sampler

    @property
    def lengths(self) -> np.ndarray:
        return self._examples if self.dataset is None else self.dataset.lengths()

    @property
    def num_examples(self) -> int:
        return len(self.lengths)

    @staticmethod
    def _take(lengths: Sequence[int] | np.ndarray) -> np.ndarray:
        # A dataset's lengths come back as they are (int64): the same array
        # until it re-packs, which is what the batches' cache compares.
        lengths = np.asarray(lengths, dtype=np.int64)
        return lengths if lengths.ndim == 1 else lengths.reshape(-1)

    def _make(self, seed: int, epoch: int, lengths: np.ndarray) -> list[np.ndarray]:
        too_long = np.flatnonzero(lengths > self.max_tokens)
        if len(too_long):
            i = int(too_long[0])
            raise ValueError(
                f"example {i} has {lengths[i]} tokens, more than max_tokens={self.max_tokens}"
                " (make max_tokens at least the longest block, i.e. max_len)"
            )
        rng = streams.sampler_generator(seed, epoch)
        order = rng.permutation(len(lengths))
        batches = []
        for start in range(0, len(order), self.bucket_size):
            bucket = order[start : start + self.bucket_size]
            bucket = bucket[np.argsort(lengths[bucket], kind="stable")]
            batches += _fill_sorted(bucket, lengths[bucket], self.max_tokens)
        shared = len(batches) - len(batches) % self.world_size
        chosen = rng.permutation(len(batches))[:shared][self.rank :: self.world_size]
        if len(chosen) == 0:
            raise ValueError(
                f"{len(lengths)} examples make {len(batches)} batches of at most "
                f"{self.max_tokens} tokens: too few for {self.world_size} ranks"
            )
        return [batches[k] for k in chosen]

    def __len__(self) -> int:
        return len(self._batches())

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._batches():
            yield batch.tolist()


def _fill_sorted(indices: np.ndarray, lengths: np.ndarray, max_tokens: int) -> list[np.ndarray]:
    """Cuts `indices` (by ascending `lengths`) into the longest runs whose count ×
    last length stays within `max_tokens`."""
    batches = []
    start = 0
    while start < len(indices):
        # Later lengths are no shorter, so no batch from here holds more than this.
        window = lengths[start : start + max_tokens // max(int(lengths[start]), 1)]
        padded = np.arange(1, len(window) + 1) * window  # non-decreasing
        size = int(np.searchsorted(padded, max_tokens, side="right"))
        batches.append(indices[start : start + size])
        start += size
    return batches


def accumulation_steps(target: int, per_step: int, world_size: int = 1) -> int:
    """Micro-batches each rank accumulates per optimizer step so that `world_size`
    ranks reach a `target` batch: sequences with `FixedBatches` (the paper's 8K
    sequences: `accumulation_steps(8192, 32, 8)` is 32), or tokens with
    `TokenBudgetBatches` and `per_step=max_tokens` (budgets are upper bounds, so
    such steps hold somewhat fewer). Rounded up: a step holds at least `target`."""
    if min(target, per_step, world_size) < 1:
        raise ValueError(
            f"target, per_step and world_size must be positive, not {target}, {per_step}, "
            f"{world_size}"
        )
    return math.ceil(target / (per_step * world_size))


def batches(
    dataset: Any,
    sampler: Any,
    pad_id: int,
    *,
    worker_id: int = 0,
    num_workers: int = 1,
    start: int = 0,
    pad_to_multiple_of: int | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Collated batches of `dataset` for the index lists of `sampler`, from batch
    `start` on; worker w of n takes batches start + w, start + w + n, ... so that
    a torch DataLoader, which takes one batch from each worker in turn, yields
    them in the sampler's order."""
    if not 0 <= worker_id < num_workers:
        raise ValueError(f"need 0 <= worker_id < num_workers, not {worker_id}, {num_workers}")
    if start < 0:
        raise ValueError(f"start must be non-negative, not {start}")
    # A MaskedLMDataset padding with `pad_id` makes each batch whole.
    whole = isinstance(dataset, MaskedLMDataset) and dataset.specials.pad == pad_id
    for indices in itertools.islice(sampler, start + worker_id, None, num_workers):
        if whole:
            yield dataset.batch(indices, pad_to_multiple_of=pad_to_multiple_of)
        else:
            examples = [dataset[i] for i in indices]
            yield collate(examples, pad_id, pad_to_multiple_of=pad_to_multiple_of)


def _torch_worker() -> tuple[int, int]:
    """(worker id, number of workers) inside a torch DataLoader worker, else (0, 1).
    torch is asked only when the program has loaded it: bbpe never imports it."""
    if "torch" not in sys.modules:
        return 0, 1
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


class MaskedLMIterable:
    """An iterable over one epoch's collated batches of a `MaskedLMDataset` for the
    rank of `sampler` (`FixedBatches.for_dataset` or `TokenBudgetBatches.for_dataset`
    of this dataset), split across data-loader workers: inside a torch
    DataLoader worker each takes its share (`batches`), together exactly the
    rank's batches; `worker_id` / `num_workers` set the split without torch.
    `start` skips the first batches of the epoch (resuming mid-epoch).

    When torch is loaded, instances count as `torch.utils.data.IterableDataset`
    (registered, not inherited), so that DataLoader iterates them instead of
    indexing them; use `DataLoader(stream, batch_size=None)`.
    """

    def __init__(
        self,
        dataset: MaskedLMDataset,
        sampler: FixedBatches | TokenBudgetBatches,
        *,
        pad_to_multiple_of: int | None = None,
        start: int = 0,
        worker_id: int | None = None,
        num_workers: int | None = None,
    ):
        if sampler.dataset is not dataset:
            raise ValueError(
                "the sampler must follow this dataset: make it with "
                f"{type(sampler).__name__}.for_dataset(dataset, ...)"
            )
        if (worker_id is None) != (num_workers is None):
            raise ValueError("give worker_id and num_workers together")
        _register_with_torch()
        self.dataset = dataset
        self.sampler = sampler
        self.pad_to_multiple_of = pad_to_multiple_of
        self.start = start
        self.worker_id = worker_id
        self.num_workers = num_workers

    @property
    def epoch(self) -> int:
        return self.dataset.epoch

    def set_epoch(self, epoch: int, *, start: int = 0) -> None:
        """Re-packs the dataset for `epoch` (the sampler follows it) and starts at batch `start`."""
        self.dataset.set_epoch(epoch)
        self.start = start

    def __len__(self) -> int:
        """Batches left in the epoch for this rank, all workers together."""
        return max(len(self.sampler) - self.start, 0)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        if self.worker_id is None:
            worker_id, num_workers = _torch_worker()
        else:
            worker_id, num_workers = self.worker_id, self.num_workers
        return batches(
            self.dataset,
            self.sampler,
            self.dataset.specials.pad,
            worker_id=worker_id,
            num_workers=num_workers,
            start=self.start,
            pad_to_multiple_of=self.pad_to_multiple_of,
        )


def _register_with_torch() -> None:
    # DataLoader tells iterable datasets from map-style ones by isinstance.
    if "torch" in sys.modules:
        from torch.utils.data import IterableDataset

        IterableDataset.register(MaskedLMIterable)


__all__ = [
    "FixedBatches",
    "MaskedLMDataset",
    "MaskedLMIterable",
    "TokenBudgetBatches",
    "accumulation_steps",
    "batches",
    "collate",
]
