"""Corpora blended and split (bbpe.blending, ShardDocuments' split=): realised
proportions in every prefix of an epoch, one stream per set, the same batches in
a fresh process, for any number of workers and after resuming; splits disjoint,
covering, in proportion and fixed across epochs; clear errors for bad weights.
Every set of the generated corpora has ids of its own, so a block's ids tell
which set, document and sentence it came from."""

import hashlib
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbpe import blending, shards, streams
from bbpe.data import FixedBatches, MaskedLMDataset, MaskedLMIterable, TokenBudgetBatches
from bbpe.masking import Masker, StaticMasker
from bbpe.packing import ShardDocuments, SpecialIds, pack

SPECIALS = SpecialIds(bos=0, eos=2, pad=1, mask=3)
VOCAB = 1 << 16
SET_BASE = 10_000  # set k's ids start at (k + 1) * SET_BASE


def write_set(directory, documents: list[list[int]], first_id: int) -> str:
    """One shard of `documents` (lists of sentence lengths) whose ids are
    first_id, first_id + 1, ... in corpus order; returns its prefix."""
    directory.mkdir(parents=True, exist_ok=True)
    prefix = str(directory / "part_00")
    lengths = [n for doc in documents for n in doc]
    np.arange(first_id, first_id + sum(lengths), dtype="<i4").tofile(prefix + ".bin")
    doc_index = np.cumsum([0] + [len(doc) for doc in documents])
    shards.write_index(prefix + ".idx", lengths, doc_index, np.int32)
    return prefix


def random_documents(rng, count: int) -> list[list[int]]:
    return [rng.integers(1, 12, rng.integers(1, 6)).tolist() for _ in range(count)]


@pytest.fixture(scope="module")
def three_sets(tmp_path_factory):
    """Three sets of 40, 25 and 12 documents."""
    root = tmp_path_factory.mktemp("sets")
    rng = np.random.default_rng(7)
    return [
        write_set(root / f"set{k}", random_documents(rng, count), (k + 1) * SET_BASE)
        for k, count in enumerate([40, 25, 12])
    ]


def masker(seed: int = 0) -> Masker:
    return Masker(VOCAB, SPECIALS.mask, SPECIALS.all(), pad_id=SPECIALS.pad, seed=seed)


def blended(three_sets, weights=(3, 1, 1), **options) -> MaskedLMDataset:
    options = {"max_len": 16, "specials": SPECIALS, "masker": False, **options}
    return MaskedLMDataset(list(zip(weights, three_sets, strict=True)), **options)


def set_of(ids: np.ndarray) -> int:
    """The set a block's text comes from (blocks never mix sets)."""
    text = ids[ids >= SET_BASE]
    sets = np.unique(text // SET_BASE - 1)
    assert len(sets) == 1
    return int(sets[0])


def assert_within_one_of_shares(sets: np.ndarray, weights) -> None:
    """Among the first k blocks, set j has more than w k - 1 and fewer than w k + 1."""
    shares = [Fraction(w) / sum(map(Fraction, weights)) for w in weights]
    for j, share in enumerate(shares):
        counts = np.cumsum(sets == j).tolist()
        assert all(abs(c - share * k) < 1 for k, c in enumerate(counts, start=1)), j


# ---------------------------------------------------------------------------
# the interleaving


@settings(max_examples=150, deadline=None)
@given(
    weights=st.lists(
        st.one_of(st.integers(0, 40), st.floats(0, 1e3, allow_subnormal=False)),
        min_size=1,
        max_size=7,
    ).filter(any),
    n=st.integers(0, 300),
)
def test_interleave_keeps_every_set_within_one_block_of_its_share(weights, n):
    exact = [Fraction(w) for w in weights]
    order = blending.interleave(exact, n)
    assert len(order) == n
    assert not np.isin(order, [j for j, w in enumerate(exact) if w == 0]).any()
    assert_within_one_of_shares(order, exact)


def test_interleave_of_small_ratios_repeats_with_their_sum():
    order = blending.interleave([Fraction(3), Fraction(1), Fraction(1)], 50)
    assert np.array_equal(order, np.tile(order[:5], 10))
    assert np.bincount(order[:5]).tolist() == [3, 1, 1]


# ---------------------------------------------------------------------------
# blended datasets


@pytest.mark.parametrize("weights", [(3, 1, 1), (1, 5, 2), (0.2, 0.3, 0.5)])
def test_blocks_of_each_set_follow_the_weights_in_every_prefix(three_sets, weights):
    dataset = blended(three_sets, weights)
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        sets = np.array([set_of(dataset[i]["input_ids"]) for i in range(len(dataset))])
        assert np.array_equal(sets, dataset.blocks.sets)
        sizes = [len(part) for part in dataset.blocks.parts]
        assert len(dataset) == sum(sizes)  # as many blocks as the sets have together
        assert_within_one_of_shares(sets, weights)


def test_float_weights_mean_the_decimals_they_print_as(three_sets):
    decimals = blended(three_sets, (0.5, 0.3, 0.2))
    integers = blended(three_sets, (5, 3, 2))
    assert decimals.weights == (Fraction(1, 2), Fraction(3, 10), Fraction(1, 5))
    assert np.array_equal(decimals.blocks.sets, integers.blocks.sets)


def test_each_set_is_packed_with_its_own_stream_and_drawn_in_its_order(three_sets):
    dataset = blended(three_sets, seed=5, epoch=2)
    for j, prefix in enumerate(three_sets):
        own = pack(
            ShardDocuments(prefix),
            "full-sentences",
            SPECIALS,
            max_len=16,
            seed=streams.blend_seed(5, j),
            epoch=2,
        )
        drawn = [dataset[int(i)]["input_ids"] for i in np.flatnonzero(dataset.blocks.sets == j)]
        # Fewer draws than blocks take the first ones; more take them all again.
        expected = [own[k % len(own)].input_ids for k in range(len(drawn))]
        assert len(drawn) > 0 and all(map(np.array_equal, drawn, expected))
    counts = np.bincount(dataset.blocks.sets)
    sizes = [len(part) for part in dataset.blocks.parts]
    assert counts[0] > sizes[0] and counts[1] < sizes[1]  # 3:1:1 over 40, 25, 12 documents


def test_a_downsampled_set_gives_other_blocks_in_another_epoch(three_sets):
    dataset = blended(three_sets, (3, 1, 1))
    seen = []
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        drawn = np.flatnonzero(dataset.blocks.sets == 1)
        seen.append({tuple(dataset[int(i)]["input_ids"].tolist()) for i in drawn})
    assert seen[0] != seen[1]


def test_a_set_of_weight_zero_gives_no_block(three_sets):
    dataset = blended(three_sets, (2, 0, 1))
    assert dataset.blocks.parts[1] is None
    sets = {set_of(dataset[i]["input_ids"]) for i in range(len(dataset))}
    assert sets == {0, 2}
    assert_within_one_of_shares(dataset.blocks.sets, (2, 0, 1))


def test_masks_are_keyed_by_the_index_in_the_blend(three_sets):
    dataset = blended(three_sets, seed=3, masker=masker(3), epoch=1)
    for i in range(len(dataset)):
        example = dataset[i]
        ids, labels = dataset.masker.mask(dataset.blocks[i].input_ids, 1, i)
        assert np.array_equal(example["input_ids"], ids)
        assert np.array_equal(example["labels"], labels)
    # An upsampled set shows the same text again, with masks of its own.
    repeats = np.flatnonzero((dataset.blocks.sets == 0) & (dataset.blocks.positions == 0))
    assert len(repeats) > 1
    masks = {tuple(dataset[int(i)]["labels"].tolist()) for i in repeats}
    assert len(masks) > 1


def test_static_masking_blends_the_same_blocks_every_epoch(three_sets):
    dataset = blended(three_sets, masker=StaticMasker(masker(), copies=2))
    texts = []
    for epoch in (0, 1, 2):
        dataset.set_epoch(epoch)
        texts.append([dataset.blocks[i].input_ids.tolist() for i in range(len(dataset))])
    assert texts[0] == texts[1] == texts[2]


def test_pair_formats_blend_with_their_labels(three_sets):
    dataset = blended(three_sets, format="segment-pair", max_len=24)
    labels = {dataset[i]["nsp_label"] for i in range(len(dataset))}
    assert labels == {0, 1}
    assert_within_one_of_shares(dataset.blocks.sets, (3, 1, 1))
    for i in range(len(dataset)):
        set_of(dataset[i]["input_ids"])  # a pair's B comes from A's set


def test_token_budget_batches_cover_the_blend(three_sets):
    dataset = blended(three_sets, format="doc-sentences")
    lengths = [len(dataset[i]["input_ids"]) for i in range(len(dataset))]
    assert dataset.lengths().tolist() == lengths
    sampler = TokenBudgetBatches.for_dataset(dataset, max_tokens=64)
    assert sorted(i for batch in sampler for i in batch) == list(range(len(dataset)))


def epoch_batches(dataset, sampler, **options) -> list[dict]:
    return list(MaskedLMIterable(dataset, sampler, **options))


def digest(batches: list[dict]) -> str:
    h = hashlib.sha256()
    for batch in batches:
        for key in sorted(batch):
            h.update(key.encode() + batch[key].tobytes())
    return h.hexdigest()


def test_workers_share_the_blend_out_without_changing_it(three_sets):
    dataset = blended(three_sets, seed=11, masker=masker(11), epoch=4)
    sampler = FixedBatches.for_dataset(dataset, 4)
    whole = epoch_batches(dataset, sampler)
    for workers in (2, 3):
        shares = [
            epoch_batches(dataset, sampler, worker_id=w, num_workers=workers)
            for w in range(workers)
        ]
        rounds = [
            shares[w][k] for k in range(len(whole)) for w in range(workers) if k < len(shares[w])
        ]
        assert digest(rounds) == digest(whole)


def test_resuming_mid_epoch_gives_the_rest_of_the_blend(three_sets):
    dataset = blended(three_sets, seed=2, masker=masker(2), epoch=1)
    sampler = FixedBatches.for_dataset(dataset, 5)
    whole = epoch_batches(dataset, sampler)
    for start in (1, 4, len(whole) - 1):
        resumed = blended(three_sets, seed=2, masker=masker(2), epoch=1)
        tail = epoch_batches(resumed, FixedBatches.for_dataset(resumed, 5), start=start)
        assert digest(tail) == digest(whole[start:])


BATCHES_SCRIPT = """
import hashlib, sys
from bbpe.data import FixedBatches, MaskedLMDataset, MaskedLMIterable
from bbpe.masking import Masker
from bbpe.packing import SpecialIds
specials = SpecialIds(bos=0, eos=2, pad=1, mask=3)
masker = Masker({vocab}, 3, specials.all(), pad_id=1, seed=9)
dataset = MaskedLMDataset({sources!r}, specials=specials, masker=masker, max_len=16, seed=9,
                          epoch=3, split="train", split_weights=(8, 1, 1))
h = hashlib.sha256()
for batch in MaskedLMIterable(dataset, FixedBatches.for_dataset(dataset, 4)):
    for key in sorted(batch):
        h.update(key.encode() + batch[key].tobytes())
print(h.hexdigest())
"""


def test_a_fresh_process_blends_the_same_batches(three_sets):
    sources = list(zip((3, 1, 1), three_sets, strict=True))
    dataset = blended(
        three_sets, seed=9, masker=masker(9), epoch=3, split="train", split_weights=(8, 1, 1)
    )
    here = digest(epoch_batches(dataset, FixedBatches.for_dataset(dataset, 4)))
    script = BATCHES_SCRIPT.format(vocab=VOCAB, sources=sources)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == here


# ---------------------------------------------------------------------------
# splits


def document_ids(documents: ShardDocuments) -> set[int]:
    """Each document by its first id (every generated sentence has text)."""
    return {
        int(documents.sentence(documents.document(d)[0])[0]) for d in range(documents.num_documents)
    }


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(1, 60),
    weights=st.tuples(*[st.integers(0, 20)] * 3).filter(any),
    seed=st.integers(0, 2**64 - 1),
)
def test_splits_are_disjoint_cover_all_documents_and_keep_their_shares(
    tmp_path_factory, count, weights, seed
):
    rng = np.random.default_rng(count)
    documents = random_documents(rng, count)
    prefix = write_set(tmp_path_factory.mktemp("split"), documents, SET_BASE)
    everything = document_ids(ShardDocuments(prefix))
    parts = []
    for name, weight in zip(("train", "validation", "test"), weights, strict=True):
        try:
            part = ShardDocuments(prefix, split=name, split_weights=weights, seed=seed)
        except ValueError as error:  # a split without documents holds no tokens
            assert "holds no tokens" in str(error) and f"the {name} split (0 of" in str(error)
            part_ids = set()
        else:
            part_ids = document_ids(part)
            # Its documents, in corpus order, with all their sentences.
            firsts = [int(part.sentence(part.document(d)[0])[0]) for d in range(len(part_ids))]
            assert firsts == sorted(firsts)
            kept = zip(documents, _firsts(documents), strict=True)
            assert part.num_tokens == sum(sum(doc) for doc, first in kept if first in part_ids)
        assert abs(len(part_ids) - Fraction(count * weight, sum(weights))) < 1
        parts.append(part_ids)
    assert set().union(*parts) == everything
    assert sum(map(len, parts)) == len(everything)


def _firsts(documents: list[list[int]]) -> list[int]:
    sizes = np.array([sum(doc) for doc in documents])
    return (SET_BASE + np.cumsum(sizes) - sizes).tolist()


def test_a_split_stays_the_same_in_every_epoch_and_follows_the_seed(three_sets):
    def split(seed, epoch):
        """Each set's validation documents, and the tokens the epoch's blocks hold."""
        dataset = blended(
            three_sets, seed=seed, epoch=epoch, split="validation", split_weights=(6, 3, 1)
        )
        ids = np.concatenate([dataset.blocks[i].input_ids for i in range(len(dataset))])
        return [document_ids(documents) for documents in dataset.documents], ids[ids >= SET_BASE]

    first, _ = split(0, 0)
    for epoch in (1, 2, 7):
        documents, tokens = split(0, epoch)
        assert documents == first
        allowed = np.concatenate([split_tokens(d) for d in dataset_documents(three_sets, 0)])
        assert np.isin(tokens, allowed).all()
    assert split(1, 0)[0] != first
    assert all(len(ids) > 0 for ids in first)  # every set has validation documents


def dataset_documents(three_sets, seed):
    return [
        ShardDocuments(prefix, split="validation", split_weights=(6, 3, 1), seed=seed)
        for prefix in three_sets
    ]


def split_tokens(documents: ShardDocuments) -> np.ndarray:
    return np.concatenate([documents.sentence(i) for i in range(documents.num_sentences)])


def test_megatron_style_split_strings_mean_the_same_weights(three_sets):
    a = ShardDocuments(three_sets[0], split="validation", split_weights="969, 30, 1", seed=4)
    b = ShardDocuments(three_sets[0], split="validation", split_weights=(969, 30, 1), seed=4)
    assert document_ids(a) == document_ids(b)


# ---------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ((3, -1, 1), "must not be negative: -1"),
        ((0, 0, 0), r"must not all be zero: \[0, 0, 0\]"),
        ((1, float("nan"), 1), "must be finite numbers, not .*nan"),
    ],
)
def test_bad_blend_weights_are_named(three_sets, weights, message):
    with pytest.raises(ValueError, match=message):
        blended(three_sets, weights)


@pytest.mark.parametrize(
    ("split_weights", "message"),
    [
        ((9, 1), r"three numbers .* not \(9, 1\)"),
        ("9,x,1", "must be finite numbers, not '9,x,1'"),
        ((1, -2, 1), "must not be negative: -2"),
        ((0, 0, 0), "must not all be zero"),
    ],
)
def test_bad_split_weights_are_named(three_sets, split_weights, message):
    with pytest.raises(ValueError, match=message):
        blended(three_sets, split="train", split_weights=split_weights)


def test_other_blend_mistakes_are_named(three_sets, tmp_path):
    with pytest.raises(ValueError, match="does not belong"):
        MaskedLMDataset([(3, three_sets[0]), three_sets[1]], specials=SPECIALS, masker=False)
    with pytest.raises(ValueError, match=r"does not belong"):
        MaskedLMDataset([(3, three_sets[0], 1)], specials=SPECIALS, masker=False)
    sets = [ShardDocuments(prefix) for prefix in three_sets]
    with pytest.raises(ValueError, match=r"one per set, but 2 for 3 sets: \[1, 2\]"):
        blending.blend(sets, [1, 2], "full-sentences", SPECIALS)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        blended(three_sets, split="dev")
    with pytest.raises(ValueError, match="give ShardDocuments its split"):
        MaskedLMDataset(sets[0], specials=SPECIALS, masker=False, split="train")
    drawn = ShardDocuments(three_sets[0], split="train", seed=1)
    with pytest.raises(ValueError, match="drawn with seed 1 but the dataset's seed is 2"):
        MaskedLMDataset(drawn, specials=SPECIALS, masker=False, seed=2)
    lone = write_set(tmp_path, [[3]], 9 * SET_BASE)  # one document: no NotNext pair
    with pytest.raises(ValueError, match="set 2 of the blend: sentence-pair needs"):
        blended([*three_sets[:2], lone], format="sentence-pair")
