"""From shards to masked batches (bbpe.data): collation, the batch samplers (ranks,
budgets, determinism in (seed, epoch)), splitting batches across data-loader
workers, resuming mid-epoch, and MaskedLMDataset over real shards in each of the
four RoBERTa input formats."""

import abc
import collections
import functools
import importlib.util
import itertools
import json
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import bbpe
from bbpe import packing, shards
from bbpe.data import (
    FixedBatches,
    MaskedLMDataset,
    MaskedLMIterable,
    TokenBudgetBatches,
    accumulation_steps,
    batches,
    collate,
)
from bbpe.masking import IGNORE_INDEX, Masker, StaticMasker
from bbpe.packing import PAIR_FORMATS
from bbpe.sample import sample_texts

PAD = 1
seeds = st.integers(0, 2**32 - 1)
epochs = st.integers(0, 1000)


def as_sets(batch_lists) -> list[frozenset[int]]:
    return [frozenset(batch) for batch in batch_lists]


def same_batches(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
        for x, y in zip(a, b, strict=True)
    )


def interleave(per_worker: list[list]) -> list:
    """The order a torch DataLoader yields: one item from each worker in turn."""
    missing = object()
    rounds = itertools.zip_longest(*per_worker, fillvalue=missing)
    return [item for round_ in rounds for item in round_ if item is not missing]


class ListDataset:
    """A stand-in for MaskedLMDataset: example i has `lengths[i]` tokens, all i + 3."""

    def __init__(self, lengths):
        self.lengths = lengths

    def __getitem__(self, i):
        ids = np.full(self.lengths[i], i + 3, dtype=np.int64)
        return {"input_ids": ids, "labels": ids[::-1].copy(), "index": i}


# ---------------------------------------------------------------------------
# collate


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 20), min_size=1, max_size=8),
    multiple=st.sampled_from([None, 1, 8]),
    pair=st.booleans(),
    seed=seeds,
)
def test_collate_pads_ids_attention_and_labels(lengths, multiple, pair, seed):
    rng = np.random.default_rng(seed)
    examples = []
    for i, n in enumerate(lengths):
        ids = rng.integers(3, 1000, n)
        example = {"input_ids": ids, "labels": np.where(rng.random(n) < 0.3, ids, -100)}
        if pair:
            example["nsp_label"] = i % 2
        examples.append({**example, "index": 10 + i})
    batch = collate(examples, PAD, pad_to_multiple_of=multiple)

    width = batch["input_ids"].shape[1]
    step = multiple or 1
    assert width % step == 0 and max(lengths) <= width < max(lengths) + step
    assert set(batch) == {"input_ids", "attention_mask", "labels", "index"} | (
        {"nsp_label"} if pair else set()
    )
    assert all(array.dtype == np.int64 for array in batch.values())
    for row, (example, n) in enumerate(zip(examples, lengths, strict=True)):
        assert np.array_equal(batch["input_ids"][row, :n], example["input_ids"])
        assert (batch["input_ids"][row, n:] == PAD).all()
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (width - n)
        assert np.array_equal(batch["labels"][row, :n], example["labels"])
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all()
    assert batch["index"].tolist() == [10 + i for i in range(len(lengths))]
    if pair:
        assert batch["nsp_label"].tolist() == [i % 2 for i in range(len(lengths))]


def test_collate_without_labels_and_bad_arguments():
    batch = collate([{"input_ids": np.array([0, 5, 2])}, {"input_ids": np.array([0, 2])}], PAD)
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].tolist() == [[0, 5, 2], [0, 2, PAD]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    with pytest.raises(ValueError, match="at least one"):
        collate([], PAD)
    with pytest.raises(ValueError, match="pad_to_multiple_of"):
        collate([{"input_ids": np.array([0, 2])}], PAD, pad_to_multiple_of=0)


# ---------------------------------------------------------------------------
# FixedBatches


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 300),
    batch_size=st.integers(1, 40),
    world_size=st.integers(1, 5),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=seeds,
    epoch=epochs,
)
def test_fixed_batches_give_ranks_disjoint_equal_shares(
    n, batch_size, world_size, shuffle, drop_last, seed, epoch
):
    share = n // world_size
    assume(share >= (batch_size if drop_last else 1))
    settings_ = dict(shuffle=shuffle, seed=seed, epoch=epoch, drop_last=drop_last)
    samplers = [
        FixedBatches(n, batch_size, rank=r, world_size=world_size, **settings_)
        for r in range(world_size)
    ]
    per_rank = [list(sampler) for sampler in samplers]

    # Equal batch counts and sizes on every rank, as data parallelism needs.
    for sampler, rank_batches in zip(samplers, per_rank, strict=True):
        assert len(rank_batches) == len(sampler) == len(per_rank[0])
        assert [len(b) for b in rank_batches] == [len(b) for b in per_rank[0]]
        assert all(len(b) == batch_size for b in rank_batches[:-1])
        assert all(isinstance(i, int) for b in rank_batches for i in b)
    taken = [i for rank_batches in per_rank for batch in rank_batches for i in batch]
    assert len(taken) == len(set(taken))  # no index twice, within or across ranks
    kept = share - share % batch_size if drop_last else share
    assert len(taken) == world_size * kept
    assert set(taken) <= set(range(n))
    # Step k of all ranks is one contiguous slice of the epoch's order.
    if not shuffle:
        step = world_size * batch_size
        for k in range(len(per_rank[0])):
            together = sorted(i for rank_batches in per_rank for i in rank_batches[k])
            assert together == list(range(k * step, k * step + len(together)))


def test_fixed_batches_depend_on_seed_and_epoch_only():
    order = list(FixedBatches(1000, 32, seed=3, epoch=2))
    assert order == list(FixedBatches(1000, 32, seed=3, epoch=2))
    resumed = FixedBatches(1000, 32, seed=3, epoch=0)
    resumed.set_epoch(2)
    assert list(resumed) == order and resumed.epoch == 2
    assert list(FixedBatches(1000, 32, seed=3, epoch=3)) != order
    assert list(FixedBatches(1000, 32, seed=4, epoch=2)) != order
    assert sorted(i for batch in order for i in batch) == list(range(1000))
    assert list(FixedBatches(10, 4, shuffle=False)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert list(FixedBatches(10, 4, shuffle=False, drop_last=True)) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_fixed_batches_follow_a_new_number_of_examples():
    sampler = FixedBatches(10, 4, shuffle=False)
    sampler.set_epoch(1, np.ones(5))
    assert sampler.num_examples == 5 and list(sampler) == [[0, 1, 2, 3], [4]]


def test_fixed_batches_refuse_bad_settings():
    with pytest.raises(ValueError, match="batch_size"):
        FixedBatches(10, 0)
    with pytest.raises(ValueError, match="rank"):
        FixedBatches(10, 2, rank=2, world_size=2)
    with pytest.raises(ValueError, match="no batch"):
        FixedBatches(3, 2, world_size=4)
    with pytest.raises(ValueError, match="no batch"):
        FixedBatches(10, 8, world_size=2, drop_last=True)


# ---------------------------------------------------------------------------
# TokenBudgetBatches


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 64), min_size=1, max_size=300),
    room=st.integers(0, 200),
    world_size=st.integers(1, 4),
    bucket_size=st.integers(1, 400),
    seed=seeds,
    epoch=epochs,
)
def test_token_budget_batches_fit_and_share_disjointly(
    lengths, room, world_size, bucket_size, seed, epoch
):
    max_tokens = max(lengths) + room
    lengths = np.array(lengths)
    settings_ = dict(seed=seed, epoch=epoch, bucket_size=bucket_size)
    whole = as_sets(TokenBudgetBatches(lengths, max_tokens, **settings_))
    # Without ranks: every index exactly once, each batch within the budget.
    assert sorted(i for batch in whole for i in batch) == list(range(len(lengths)))
    assert all(len(b) * lengths[list(b)].max() <= max_tokens for b in whole)
    assume(len(whole) >= world_size)

    per_rank = [
        as_sets(TokenBudgetBatches(lengths, max_tokens, rank=r, world_size=world_size, **settings_))
        for r in range(world_size)
    ]
    assert len({len(rank_batches) for rank_batches in per_rank}) == 1
    dealt = [batch for rank_batches in per_rank for batch in rank_batches]
    # Ranks deal out the same batches, less fewer than world_size dropped ones.
    assert set(dealt) <= set(whole) and len(dealt) == len(set(dealt))
    assert len(dealt) == len(whole) - len(whole) % world_size
    taken = [i for batch in dealt for i in batch]
    assert len(taken) == len(set(taken))


def test_token_budget_batches_depend_on_seed_and_epoch_only():
    lengths = np.random.default_rng(0).integers(1, 100, 2000)
    order = list(TokenBudgetBatches(lengths, 400, seed=5, epoch=1))
    assert order == list(TokenBudgetBatches(lengths, 400, seed=5, epoch=1))
    resumed = TokenBudgetBatches(lengths, 400, seed=5, epoch=0)
    resumed.set_epoch(1)
    assert list(resumed) == order and resumed.epoch == 1
    for other in (
        TokenBudgetBatches(lengths, 400, seed=5, epoch=2),
        TokenBudgetBatches(lengths, 400, seed=6, epoch=1),
    ):
        # Not only another order: other examples meet in the batches.
        assert set(as_sets(other)) != set(as_sets(order))


def test_token_budget_batches_sort_within_buckets_to_save_padding():
    rng = np.random.default_rng(1)
    lengths = rng.choice([8, 64], 2000)
    batches_ = [np.array(b) for b in TokenBudgetBatches(lengths, 512, bucket_size=500)]
    mixed = sum(len(set(lengths[b])) > 1 for b in batches_)
    assert mixed <= 4  # at most one batch per bucket straddles the two lengths
    padding = sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches_)
    assert padding <= 4 * 512


def test_token_budget_batches_refuse_an_example_over_budget():
    with pytest.raises(ValueError, match="example 2 has 600 tokens, more than max_tokens=512"):
        TokenBudgetBatches([10, 20, 600, 700], 512)
    sampler = TokenBudgetBatches([10, 20], 512)
    with pytest.raises(ValueError, match="example 1 has 513 tokens"):
        sampler.set_epoch(1, [3, 513])
    with pytest.raises(ValueError, match="too few"):
        TokenBudgetBatches([10, 20], 512, world_size=2)


def test_accumulation_steps():
    assert accumulation_steps(8192, 32, 8) == 32  # the paper's 8K sequences on 8 ranks
    assert accumulation_steps(8192, 100, 8) == 11  # rounded up: 8,800 sequences a step
    assert accumulation_steps(8192 * 512, 16384, 16) == 16  # tokens, with a token budget
    with pytest.raises(ValueError, match="positive"):
        accumulation_steps(8192, 0)


# ---------------------------------------------------------------------------
# workers and resuming


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 30), min_size=1, max_size=120),
    num_workers=st.integers(1, 5),
    start=st.integers(0, 15),
    seed=seeds,
)
def test_workers_split_the_batches_exactly(lengths, num_workers, start, seed):
    dataset = ListDataset(lengths)
    sampler = TokenBudgetBatches(lengths, 64, seed=seed)
    expected = [collate([dataset[i] for i in b], PAD) for b in list(sampler)[start:]]
    # Resuming at `start` gives the batches an uninterrupted epoch gives from there.
    assert same_batches(list(batches(dataset, sampler, PAD, start=start)), expected)

    per_worker = [
        list(batches(dataset, sampler, PAD, worker_id=w, num_workers=num_workers, start=start))
        for w in range(num_workers)
    ]
    assert same_batches(interleave(per_worker), expected)
    seen = [i for shard in per_worker for batch in shard for i in batch["index"].tolist()]
    assert len(seen) == len(set(seen))


def test_batches_refuse_a_bad_worker():
    with pytest.raises(ValueError, match="worker_id"):
        next(batches(ListDataset([3]), [[0]], PAD, worker_id=2, num_workers=2))


# ---------------------------------------------------------------------------
# MaskedLMDataset over real shards


@pytest.fixture(scope="module")
def roberta():
    return bbpe.Tokenizer.from_pretrained("roberta-base")


def write_shards(directory, texts) -> str:
    corpus = directory / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    shards.write(corpus, directory / "shards", "roberta-base", split_sentences=True)
    return str(directory / "shards")


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory) -> str:
    texts = sample_texts()[:40]
    return write_shards(tmp_path_factory.mktemp("data"), texts)


@pytest.mark.parametrize("format", packing.FORMATS)
def test_items_are_masked_blocks(shard_dir, roberta, format):
    masked = MaskedLMDataset(shard_dir, roberta, format=format, max_len=64, seed=1)
    plain = MaskedLMDataset(shard_dir, roberta, format=format, max_len=64, seed=1, masker=False)
    specials = masked.specials
    pair = format in PAIR_FORMATS
    assert len(masked) == len(plain) > 10
    lengths = masked.lengths()
    chosen = became_mask = 0
    for i in range(len(masked)):
        item, original = masked[i], plain[i]
        assert set(item) == {"input_ids", "labels", "index"} | ({"nsp_label"} if pair else set())
        assert set(original) == set(item) - {"labels"}
        ids, labels, source = item["input_ids"], item["labels"], original["input_ids"]
        assert ids.dtype == labels.dtype == np.int64 and ids.ndim == labels.ndim == 1
        assert len(ids) == len(labels) == len(source) == lengths[i] <= 64
        assert source[0] == specials.bos and source[-1] == specials.eos
        kept = labels == IGNORE_INDEX
        assert np.array_equal(ids[kept], source[kept])
        assert np.array_equal(labels[~kept], source[~kept])
        chosen += int((~kept).sum())
        became_mask += int((ids[~kept] == specials.mask).sum())
        if pair:
            assert item["nsp_label"] in (0, 1) and item["nsp_label"] == original["nsp_label"]
        assert item["index"] == i
        if i == len(masked) - 1:
            assert np.array_equal(masked[-1]["input_ids"], ids) and masked[-1]["index"] == i
    # RoBERTa's (fairseq's) count: int(0.15 * n + u) of all n positions of a block.
    assert abs(chosen - 0.15 * lengths.sum()) <= len(masked)
    assert 0.7 < became_mask / chosen < 0.9
    if pair:
        labels = {masked[i]["nsp_label"] for i in range(len(masked))}
        assert labels == {0, 1}


def test_mask_of_block_i_is_the_maskers_for_epoch_and_index(shard_dir, roberta):
    dataset = MaskedLMDataset(shard_dir, roberta, max_len=64, seed=3, epoch=2)
    for i in (0, 5, len(dataset) - 1):
        ids, labels = dataset.masker.mask(dataset.blocks[i].input_ids, 2, i)
        assert np.array_equal(dataset[i]["input_ids"], ids)
        assert np.array_equal(dataset[i]["labels"], labels)


def test_set_epoch_repacks_and_remasks_reproducibly(shard_dir, roberta):
    dataset = MaskedLMDataset(shard_dir, roberta, max_len=64, seed=1)

    def items():
        return [dataset[i] for i in range(len(dataset))]

    first = items()
    backwards = [dataset[i] for i in reversed(range(len(dataset)))][::-1]
    assert same_batches(backwards, first)  # an item does not depend on what came before
    dataset.set_epoch(1)
    second = items()
    assert dataset.epoch == 1 and not same_batches(second, first)
    fresh = MaskedLMDataset(shard_dir, roberta, max_len=64, seed=1, epoch=1)
    assert same_batches([fresh[i] for i in range(len(fresh))], second)
    dataset.set_epoch(0)
    assert same_batches(items(), first)


def dataset_variants(shard_dir, roberta):
    """Datasets in every format, masked dynamically, statically and not at all,
    of one set of shards and of a blend of two (the second a split)."""
    blend = [(2, shard_dir), (1, packing.ShardDocuments(shard_dir, split="train", seed=3))]
    for format in packing.FORMATS:
        yield MaskedLMDataset(shard_dir, roberta, format=format, max_len=64, seed=3, epoch=2)
        static = StaticMasker(Masker.from_tokenizer(roberta, seed=3), copies=3)
        yield MaskedLMDataset(shard_dir, roberta, format=format, max_len=40, seed=3, masker=static)
        yield MaskedLMDataset(shard_dir, roberta, format=format, max_len=64, masker=False)
        yield MaskedLMDataset(blend, roberta, format=format, max_len=48, seed=3, epoch=1)


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_a_batch_is_made_whole_as_collate_makes_it_of_the_items(shard_dir, roberta, data):
    for dataset in dataset_variants(shard_dir, roberta):
        n = len(dataset)
        indices = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=20))
        multiple = data.draw(st.sampled_from([None, 1, 8]))
        items = [dataset[i] for i in indices]
        whole = dataset.batch(indices, pad_to_multiple_of=multiple)
        assert same_batches([whole], [collate(items, PAD, pad_to_multiple_of=multiple)])
        assert list(whole) == list(collate(items, PAD))  # the same keys in the same order
        assert all(array.dtype == np.int64 for array in whole.values())
        fetched = dataset.__getitems__(indices)
        assert len(fetched) == len(items)
        for got, item in zip(fetched, items, strict=True):
            assert got.keys() == item.keys()
            assert all(np.array_equal(got[key], item[key]) for key in item)


def test_batches_of_a_dataset_are_those_of_its_items(shard_dir, roberta):
    """`batches` makes each batch whole; with another pad id it collates items."""
    dataset = MaskedLMDataset(shard_dir, roberta, format="segment-pair", max_len=64, seed=5)
    sampler = TokenBudgetBatches.for_dataset(dataset, 256)
    expected = [collate([dataset[i] for i in b], PAD, pad_to_multiple_of=8) for b in sampler]
    assert len(expected) > 3
    assert same_batches(list(batches(dataset, sampler, PAD, pad_to_multiple_of=8)), expected)
    other = [collate([dataset[i] for i in b], 7) for b in sampler]
    assert same_batches(list(batches(dataset, sampler, 7)), other)


def test_a_batch_refuses_bad_indices(shard_dir, roberta):
    dataset = MaskedLMDataset(shard_dir, roberta, max_len=64)
    n = len(dataset)
    with pytest.raises(IndexError, match=f"block {-n - 1} out of range for {n} blocks"):
        dataset.batch([0, -n - 1])
    with pytest.raises(ValueError, match="at least one block"):
        dataset.batch([])
    with pytest.raises(ValueError, match="pad_to_multiple_of must be positive"):
        dataset.batch([0], pad_to_multiple_of=0)
    with pytest.raises(TypeError, match="must be integers, not float64"):
        dataset.batch([0, 1.5])


@pytest.fixture(scope="module")
def small_shard_dir(tmp_path_factory) -> str:
    return write_shards(tmp_path_factory.mktemp("small"), sample_texts()[:6])


def masks_by_text(dataset, epochs) -> dict[bytes, list[bytes]]:
    """For each text (a block's unmasked ids) seen over `epochs`: the masks
    (masked ids and labels) it was seen with, in the order seen."""
    seen = collections.defaultdict(list)
    for epoch in epochs:
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            ids, labels = dataset[i]["input_ids"], dataset[i]["labels"]
            text = np.where(labels == IGNORE_INDEX, ids, labels)
            seen[text.tobytes()].append(ids.tobytes() + labels.tobytes())
    return seen


LONG = 32 * 8  # bytes: 32 int64 ids, enough that two random masks all but never coincide


@pytest.mark.parametrize("format", packing.FORMATS)
def test_static_masking_shows_each_text_with_10_masks_4_times_each(
    small_shard_dir, roberta, format
):
    # RoBERTa's static baseline (Liu et al. 2019, 4.1): the data duplicated 10
    # times, each copy masked its own way, over 40 epochs: every sequence is seen
    # with each of its 10 masks 4 times.
    static = StaticMasker(Masker.from_tokenizer(roberta, seed=7), copies=10)
    dataset = MaskedLMDataset(
        small_shard_dir, roberta, format=format, max_len=64, seed=7, masker=static
    )
    blocks = len(dataset)
    seen = masks_by_text(dataset, range(40))
    long = [masks for text, masks in seen.items() if len(text) >= LONG]
    assert len(long) > 20
    for masks in long:
        assert sorted(collections.Counter(masks).values()) == [4] * 10
    # Short texts too: epoch e shows copy e % 10's mask (which may coincide with
    # another copy's when few masks are possible).
    for masks in seen.values():
        assert masks == masks[:10] * 4
    assert len(seen) == blocks == len(dataset)  # the same texts every epoch
    # Epoch 13 is copy 3 again, in a new dataset too (a resumed run).
    resumed = MaskedLMDataset(
        small_shard_dir, roberta, format=format, max_len=64, seed=7, masker=static, epoch=13
    )
    dataset.set_epoch(3)
    assert same_batches([resumed[i] for i in range(blocks)], [dataset[i] for i in range(blocks)])


def test_dynamic_masking_gives_a_text_a_fresh_mask_every_epoch(small_shard_dir, roberta):
    # doc-sentences keeps a short document in one block whatever the document
    # order, so texts recur across epochs; each time with a new mask.
    dataset = MaskedLMDataset(small_shard_dir, roberta, format="doc-sentences", max_len=64, seed=7)
    seen = masks_by_text(dataset, range(8))
    recurring = [masks for text, masks in seen.items() if len(text) >= LONG and len(masks) > 1]
    assert len(recurring) > 10 and max(map(len, recurring)) == 8
    for masks in recurring:
        assert len(set(masks)) == len(masks)


def test_dataset_errors(shard_dir, roberta, tmp_path):
    for format, too_small in (("full-sentences", 2), ("segment-pair", 5)):
        with pytest.raises(ValueError, match="max_len") as error:
            MaskedLMDataset(shard_dir, roberta, format=format, max_len=too_small)
        assert format in str(error.value) and str(too_small) in str(error.value)
    with pytest.raises(ValueError, match="<mask>"):
        MaskedLMDataset(shard_dir, "gpt2")
    with pytest.raises(ValueError, match="tokenizer"):
        MaskedLMDataset(shard_dir)
    with pytest.raises(ValueError, match="unknown format"):
        MaskedLMDataset(shard_dir, roberta, format="sentences")
    # Empty documents are not written: no shards at all.
    (tmp_path / "none").mkdir()
    with pytest.raises(ValueError, match="no shards"):
        MaskedLMDataset(write_shards(tmp_path / "none", ["", ""]), roberta)
    (tmp_path / "one").mkdir()
    one_document = write_shards(tmp_path / "one", ["One sentence. And another one."])
    with pytest.raises(ValueError, match="two documents"):
        MaskedLMDataset(one_document, roberta, format="sentence-pair")
    # A shard whose only sentence is empty.
    prefix = tmp_path / "empty"
    shards.write_index(shards.idx_path(prefix), [0], [0, 1], np.uint16)
    open(shards.bin_path(prefix), "wb").close()
    with pytest.raises(ValueError, match="no tokens"):
        MaskedLMDataset(prefix, roberta)


def test_smallest_max_len_per_format(shard_dir, roberta):
    for format in packing.FORMATS:
        smallest = 6 if format in PAIR_FORMATS else 3
        dataset = MaskedLMDataset(shard_dir, roberta, format=format, max_len=smallest)
        assert dataset.lengths().max() <= smallest


def test_dataset_has_one_seed(shard_dir, roberta):
    # A masker built with another seed would be a second seed: refused, naming both.
    for masker in (
        Masker.from_tokenizer(roberta, seed=2),
        StaticMasker(Masker.from_tokenizer(roberta, seed=2), copies=3),
    ):
        with pytest.raises(ValueError, match="the masker's seed is 2 but the dataset's is 1"):
            MaskedLMDataset(shard_dir, roberta, max_len=64, seed=1, masker=masker)
        dataset = MaskedLMDataset(shard_dir, roberta, max_len=64, seed=2, masker=masker)
        assert dataset.seed == masker.seed == 2
    assert MaskedLMDataset(shard_dir, roberta, max_len=64, seed=4).masker.seed == 4
    for seed in (-1, 2**64):
        with pytest.raises(ValueError, match="seed must be in"):
            MaskedLMDataset(shard_dir, roberta, max_len=64, seed=seed, masker=False)
    dataset = MaskedLMDataset(shard_dir, roberta, max_len=64, masker=False)
    with pytest.raises(ValueError, match="epoch must be in"):
        dataset.set_epoch(-1)
    # Seed and epoch change only through set_epoch, which re-packs.
    with pytest.raises(AttributeError):
        dataset.epoch = 1
    with pytest.raises(AttributeError):
        dataset.seed = 1


@pytest.mark.parametrize("static", [False, True])
def test_samplers_for_a_dataset_follow_its_seed_and_epoch(shard_dir, roberta, static):
    masker = Masker.from_tokenizer(roberta, seed=5)
    if static:
        masker = StaticMasker(masker, copies=2)
    dataset = MaskedLMDataset(
        shard_dir, roberta, format="doc-sentences", max_len=64, seed=5, masker=masker
    )
    samplers = [
        FixedBatches.for_dataset(dataset, 4, rank=1, world_size=2),
        TokenBudgetBatches.for_dataset(dataset, 128, rank=1, world_size=2, bucket_size=16),
    ]

    def standalone():
        """The samplers as made from the dataset's seed, epoch and lengths now."""
        settings_ = dict(seed=dataset.seed, epoch=dataset.epoch, rank=1, world_size=2)
        return [
            FixedBatches(len(dataset), 4, **settings_),
            TokenBudgetBatches(dataset.lengths(), 128, bucket_size=16, **settings_),
        ]

    first = [list(sampler) for sampler in samplers]
    assert first == [list(sampler) for sampler in standalone()]
    for epoch in (1, 2, 0):
        dataset.set_epoch(epoch)
        for sampler, expected in zip(samplers, standalone(), strict=True):
            assert (sampler.seed, sampler.epoch) == (5, epoch)
            assert sampler.num_examples == len(dataset)
            assert len(sampler) == len(expected) and list(sampler) == list(expected)
            assert sampler._batches() is sampler._batches()  # made once per epoch
    assert [list(sampler) for sampler in samplers] == first
    assert [list(sampler) for sampler in pickle.loads(pickle.dumps(samplers))] == first
    for sampler in samplers:
        with pytest.raises(ValueError, match="follows its dataset's epoch"):
            sampler.set_epoch(1)


@pytest.mark.trainers
def test_samplers_for_a_dataset_serve_as_torch_batch_samplers(shard_dir, roberta):
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    dataset = MaskedLMDataset(shard_dir, roberta, format="doc-sentences", max_len=64, seed=3)
    sampler = TokenBudgetBatches.for_dataset(dataset, 128)
    collate_fn = functools.partial(collate, pad_id=dataset.specials.pad)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_fn)
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        expected = [collate([dataset[i] for i in b], PAD) for b in sampler]
        loaded = [{k: np.asarray(v) for k, v in batch.items()} for batch in loader]
        assert len(loader) == len(sampler) and same_batches(loaded, expected)


# ---------------------------------------------------------------------------
# MaskedLMIterable


@pytest.fixture
def doc_sentences(shard_dir, roberta):
    return MaskedLMDataset(shard_dir, roberta, format="doc-sentences", max_len=64, seed=1)


def test_iterable_yields_the_ranks_batches_once_across_workers(doc_sentences):
    dataset = doc_sentences
    sampler = TokenBudgetBatches.for_dataset(dataset, 256)
    stream = MaskedLMIterable(dataset, sampler, pad_to_multiple_of=8)
    whole = list(stream)
    assert len(whole) == len(stream) == len(sampler) > 1
    expected = [collate([dataset[i] for i in b], PAD, pad_to_multiple_of=8) for b in sampler]
    assert same_batches(whole, expected)
    for batch in whole:
        rows, width = batch["input_ids"].shape
        assert width % 8 == 0 and rows * batch["attention_mask"].sum(1).max() <= 256
        assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    indices = [i for batch in whole for i in batch["index"].tolist()]
    assert sorted(indices) == list(range(len(dataset)))

    workers = [
        list(MaskedLMIterable(dataset, sampler, pad_to_multiple_of=8, worker_id=w, num_workers=3))
        for w in range(3)
    ]
    assert same_batches(interleave(workers), whole)

    resumed = MaskedLMIterable(dataset, sampler, pad_to_multiple_of=8, start=2)
    assert len(resumed) == len(whole) - 2 and same_batches(list(resumed), whole[2:])


def test_iterable_set_epoch_moves_the_dataset_and_the_sampler_follows(doc_sentences):
    dataset = doc_sentences
    sampler = TokenBudgetBatches.for_dataset(dataset, 128)
    stream = MaskedLMIterable(dataset, sampler, start=3)
    first = list(MaskedLMIterable(dataset, sampler))
    lengths = dataset.lengths().copy()
    stream.set_epoch(1)
    assert dataset.epoch == sampler.epoch == stream.epoch == 1 and stream.start == 0
    # The re-packed blocks come in another order; the sampler must budget with theirs.
    assert not np.array_equal(dataset.lengths(), lengths)
    assert np.array_equal(sampler.lengths, dataset.lengths())
    second = list(stream)
    assert not same_batches(second, first)
    for batch in second:
        assert batch["attention_mask"].sum(1).max() * len(batch["index"]) <= 128
    indices = sorted(i for batch in second for i in batch["index"].tolist())
    assert indices == list(range(len(dataset)))
    stream.set_epoch(0)
    assert same_batches(list(stream), first)


def test_iterable_ranks_cover_the_blocks_disjointly(doc_sentences):
    dataset = doc_sentences
    per_rank = []
    for rank in range(3):
        sampler = FixedBatches.for_dataset(dataset, 4, rank=rank, world_size=3)
        per_rank.append([i for b in MaskedLMIterable(dataset, sampler) for i in b["index"]])
    taken = [i for indices in per_rank for i in indices]
    assert len(taken) == len(set(taken)) == len(dataset) - len(dataset) % 3


def test_iterable_survives_pickling(doc_sentences):
    # DataLoader workers started by "spawn" get a pickled copy of the stream.
    stream = MaskedLMIterable(doc_sentences, FixedBatches.for_dataset(doc_sentences, 4))
    assert same_batches(list(pickle.loads(pickle.dumps(stream))), list(stream))


def test_iterable_needs_a_sampler_made_for_its_dataset(doc_sentences, shard_dir, roberta):
    # A sampler with a seed, epoch or lengths of its own could disagree with the dataset.
    with pytest.raises(ValueError, match="FixedBatches.for_dataset"):
        MaskedLMIterable(doc_sentences, FixedBatches(len(doc_sentences), 4, seed=1))
    with pytest.raises(ValueError, match="TokenBudgetBatches.for_dataset"):
        MaskedLMIterable(doc_sentences, TokenBudgetBatches(doc_sentences.lengths(), 64, seed=1))
    other = MaskedLMDataset(shard_dir, roberta, format="doc-sentences", max_len=64, seed=1)
    with pytest.raises(ValueError, match="for_dataset"):
        MaskedLMIterable(doc_sentences, FixedBatches.for_dataset(other, 4))
    with pytest.raises(ValueError, match="together"):
        MaskedLMIterable(doc_sentences, FixedBatches.for_dataset(doc_sentences, 4), worker_id=0)


def fake_torch(monkeypatch, worker_info):
    """Just enough of torch.utils.data, loaded, for bbpe.data to consult."""
    torch = types.ModuleType("torch")
    torch.utils = types.ModuleType("torch.utils")
    torch.utils.data = types.ModuleType("torch.utils.data")
    torch.utils.data.get_worker_info = lambda: worker_info
    torch.utils.data.IterableDataset = type("IterableDataset", (abc.ABC,), {})
    for module in (torch, torch.utils, torch.utils.data):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return torch


def test_iterable_asks_torch_for_its_worker_only_when_torch_is_loaded(monkeypatch, doc_sentences):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    sampler = FixedBatches.for_dataset(doc_sentences, 2)
    whole = list(MaskedLMIterable(doc_sentences, sampler))
    torch = fake_torch(monkeypatch, types.SimpleNamespace(id=1, num_workers=3))
    stream = MaskedLMIterable(doc_sentences, sampler)
    assert isinstance(stream, torch.utils.data.IterableDataset)
    assert same_batches(list(stream), whole[1::3])
    torch.utils.data.get_worker_info = lambda: None  # the main process
    assert same_batches(list(stream), whole)


@pytest.mark.trainers
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_bbpe_data_does_not_import_torch():
    code = "import sys, bbpe.data; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.trainers
def test_torch_dataloader_with_workers_yields_the_same_batches(doc_sentences):
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    sampler = FixedBatches.for_dataset(doc_sentences, 4)
    stream = MaskedLMIterable(doc_sentences, sampler)
    whole = list(stream)
    loaded = list(DataLoader(stream, batch_size=None, num_workers=2))
    assert same_batches([{k: v.numpy() for k, v in b.items()} for b in loaded], whole)

    collate_fn = functools.partial(collate, pad_id=doc_sentences.specials.pad)
    mapped = DataLoader(doc_sentences, batch_sampler=sampler, collate_fn=collate_fn, num_workers=2)
    assert same_batches(list(mapped), whole)
