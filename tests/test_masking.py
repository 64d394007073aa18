"""bbpe.masking: masked-LM masking (RoBERTa / transformers / whole words / SpanBERT
spans). Rates are checked against binomial bounds on real RoBERTa blocks; the
structural rules (specials, padding, labels, whole words, spans, batch = rows,
determinism) on generated rows over a small vocabulary, where every token id
says what it is."""

import math
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bbpe
from bbpe import streams
from bbpe.masking import (
    HF_BERT,
    IGNORE_INDEX,
    ROBERTA,
    Masker,
    MaskingConfig,
    StaticMasker,
    _smallest,
)
from bbpe.sample import sample_path, sample_texts

# A small vocabulary: 0 <s>, 1 <pad>, 2 </s>, 3 <unk>, 31 <mask>; multiples of
# 4 start words (" the"), 5 ends one ("\n"), the rest continue words.
BOS, PAD, EOS, UNK, MASK = 0, 1, 2, 3, 31
VOCAB = 32
SPECIALS = (BOS, PAD, EOS, UNK, MASK)
NEWLINE = 5
WORD_STARTS = np.arange(VOCAB) % 4 == 0
WORD_ENDS = np.arange(VOCAB) == NEWLINE
IS_SPECIAL = np.isin(np.arange(VOCAB), SPECIALS)
UNITS = [
    MaskingConfig(),
    MaskingConfig(count="bernoulli"),
    MaskingConfig(unit="word"),
    MaskingConfig(unit="word", count="bernoulli"),
    MaskingConfig(unit="span"),
    MaskingConfig(unit="span", probability=0.4, mask_fraction=0.5, random_fraction=0.5),
]

Z = 5.0  # the masks are fixed by their seeds; 5 sigma leaves room for any seed


def small_masker(config: MaskingConfig = ROBERTA, seed: int = 0) -> Masker:
    return Masker(
        VOCAB,
        MASK,
        [BOS, EOS, UNK],
        pad_id=PAD,
        word_starts=WORD_STARTS,
        word_ends=WORD_ENDS,
        config=config,
        seed=seed,
    )


# Rows of the small vocabulary: any token but <pad> and <mask>.
TOKENS = st.integers(0, VOCAB - 2).filter(lambda t: t != PAD)
ROWS = st.lists(TOKENS, max_size=80).map(lambda r: np.array(r, dtype=np.int64))


def words(ids: np.ndarray, starts=WORD_STARTS, ends=WORD_ENDS, special=IS_SPECIAL):
    """(start, stop) of each word, by the rule written out token by token."""
    bounds = [
        i
        for i in range(len(ids))
        if i == 0 or starts[ids[i]] or special[ids[i]] or special[ids[i - 1]] or ends[ids[i - 1]]
    ]
    stops = [*bounds[1:], len(ids)] if bounds else []
    return list(zip(bounds, stops, strict=True))


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each maximal run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def check_labels(ids, masked, labels, masker):
    """Labels hold the original id where chosen and -100 elsewhere; unchosen
    tokens are unchanged, chosen ones are <mask>, unchanged or non-special."""
    chosen = labels != IGNORE_INDEX
    assert np.array_equal(labels[chosen], ids[chosen])
    assert np.array_equal(masked[~chosen], ids[~chosen])
    replaced = chosen & (masked != ids) & (masked != masker.mask_id)
    assert not np.isin(masked[replaced], masker.special_ids).any()
    return chosen


def budget_range(eligible: int, p: float) -> tuple[int, int]:
    low = math.floor(p * eligible)
    return low, low + 1


# ---------------------------------------------------------------- real blocks
@pytest.fixture(scope="module")
def roberta():
    return bbpe.Tokenizer.from_pretrained("roberta-base")


@pytest.fixture(scope="module")
def blocks(roberta):
    """<s> + 510 ids + </s> blocks of the sample corpus, documents ended by </s>."""
    ids, offsets = roberta.encode_batch_flat(sample_texts())
    ends = offsets[1:]
    flat = np.insert(ids.astype(np.int64), ends, 2)  # </s> after every document
    rows = flat[: flat.size // 510 * 510].reshape(-1, 510)
    bos, eos = np.zeros((len(rows), 1), np.int64), np.full((len(rows), 1), 2)
    return np.hstack([bos, rows, eos])[:400]


def test_exact_count_is_fairseqs_random_rounding(roberta, blocks):
    """ROBERTA chooses int(0.15 n + u) of all n positions: floor or ceil of 0.15 n,
    rounding up with probability frac(0.15 n) = 0.8 for 512-token blocks."""
    masker = Masker.from_tokenizer(roberta)
    counts = np.concatenate(
        [
            (masker.mask_batch(blocks, epoch, range(len(blocks)))[1] != IGNORE_INDEX).sum(1)
            for epoch in range(5)
        ]
    )
    low, high = budget_range(512, 0.15)
    assert set(counts.tolist()) == {low, high}
    up = (counts == high).mean()
    assert abs(up - 0.8) < Z * math.sqrt(0.8 * 0.2 / counts.size)


def test_exact_count_without_specials(roberta, blocks):
    """With specials excluded the count follows the eligible tokens of each block."""
    masker = Masker.from_tokenizer(roberta, config=MaskingConfig())
    masked, labels = masker.mask_batch(blocks, 0, range(len(blocks)))
    eligible = (~np.isin(blocks, masker.special_ids)).sum(1)
    counts = (labels != IGNORE_INDEX).sum(1)
    assert np.all((counts == np.floor(0.15 * eligible)) | (counts == np.floor(0.15 * eligible) + 1))
    assert (eligible < 510).any()  # some blocks end a document inside


def test_bernoulli_rate_and_split(roberta, blocks):
    """HF_BERT: each non-special token chosen with probability 0.15; of the chosen
    80% <mask>, 10% random, 10% unchanged."""
    masker = Masker.from_tokenizer(roberta, config=HF_BERT)
    masked, labels = masker.mask_batch(blocks, 7, range(len(blocks)))
    chosen = check_labels(blocks, masked, labels, masker)
    eligible = ~np.isin(blocks, masker.special_ids)
    assert not (chosen & ~eligible).any()
    n = eligible.sum()
    assert abs(chosen.sum() - 0.15 * n) < Z * math.sqrt(n * 0.15 * 0.85)
    spread = (chosen.sum(1) - 0.15 * eligible.sum(1)).std()
    assert spread > 3  # the number varies from block to block (binomial: about 8)
    assert_split(blocks[chosen], masked[chosen], 0.8, 0.1)


def assert_split(original, masked, mask_fraction, random_fraction):
    """Shares of <mask>, changed and unchanged tokens among the chosen (RoBERTa
    ids); a random token equals the original one time in 50260."""
    n = original.size
    shares = {
        "mask": (masked == 50264).sum(),
        "random": ((masked != 50264) & (masked != original)).sum(),
        "kept": (masked == original).sum(),
    }
    same = random_fraction / 50260
    expected = {"mask": mask_fraction, "random": random_fraction - same}
    expected["kept"] = 1 - mask_fraction - random_fraction + same
    for name, p in expected.items():
        assert abs(shares[name] - p * n) <= Z * math.sqrt(n * p * (1 - p)) + 1e-9, (name, shares)


def test_roberta_split_and_specials(roberta, blocks):
    """ROBERTA: 80/10/10 over many tokens; <s> and </s> may be chosen (fairseq),
    and random replacements are never special."""
    masker = Masker.from_tokenizer(roberta)
    masked, labels = masker.mask_batch(blocks, 1, range(len(blocks)))
    chosen = check_labels(blocks, masked, labels, masker)
    assert_split(blocks[chosen], masked[chosen], 0.8, 0.1)
    assert chosen[:, 0].any() and chosen[:, -1].any()
    assert abs(chosen[:, 0].mean() - 0.15) < Z * math.sqrt(0.15 * 0.85 / len(blocks))


@pytest.mark.parametrize("fractions", [(1.0, 0.0), (0.0, 1.0), (0.5, 0.3)])
def test_other_splits(roberta, blocks, fractions):
    config = MaskingConfig(mask_fraction=fractions[0], random_fraction=fractions[1])
    masker = Masker.from_tokenizer(roberta, config=config)
    masked, labels = masker.mask_batch(blocks, 0, range(len(blocks)))
    chosen = check_labels(blocks, masked, labels, masker)
    assert_split(blocks[chosen], masked[chosen], *fractions)


def test_random_replacements_cover_the_vocabulary(roberta, blocks):
    """Random tokens are drawn uniformly from the 50260 non-special ids."""
    config = MaskingConfig(mask_fraction=0.0, random_fraction=1.0)
    masker = Masker.from_tokenizer(roberta, config=config)
    drawn = []
    for epoch in range(3):
        masked, labels = masker.mask_batch(blocks, epoch, range(len(blocks)))
        drawn.append(masked[labels != IGNORE_INDEX])
    drawn = np.concatenate(drawn)
    assert not np.isin(drawn, masker.special_ids).any()
    # Uniform over the ids: each tenth of the id range gets a tenth of the draws.
    deciles = np.bincount(drawn * 10 // 50264, minlength=10)
    expected = drawn.size / 10
    assert np.all(np.abs(deciles - expected) < Z * math.sqrt(expected))


# ------------------------------------------------------------ structural rules
@settings(max_examples=150, deadline=None)
@given(ROWS, st.sampled_from(UNITS), st.integers(0, 3), st.integers(0, 2**64 - 1))
def test_rules_on_any_row(ids, config, epoch, index):
    """Never a special or <pad> chosen, labels exact, the count as configured."""
    masker = small_masker(config)
    row = ids.copy()
    masked, labels = masker.mask(ids, epoch, index)
    assert np.array_equal(ids, row)  # the input is left alone
    assert masked.dtype == ids.dtype and labels.dtype == np.int64
    chosen = check_labels(ids, masked, labels, masker)
    assert not (chosen & IS_SPECIAL[ids]).any()
    eligible = int((~IS_SPECIAL[ids]).sum())
    low, high = budget_range(eligible, config.probability)
    if config.count == "exact" and config.unit != "word":
        assert low <= chosen.sum() <= high
    elif config.unit == "word":
        assert chosen.sum() <= (high if config.count == "exact" else eligible)


@settings(max_examples=100, deadline=None)
@given(ROWS)
def test_padding_is_never_chosen(ids):
    """<pad> inside a row is never chosen, even when specials may be."""
    ids = ids.copy()
    ids[::3] = PAD
    masked, labels = small_masker(ROBERTA).mask(ids, 0, 0)
    assert np.all(labels[ids == PAD] == IGNORE_INDEX)
    assert np.all(masked[ids == PAD] == PAD)


def test_specials_can_be_chosen_with_mask_specials():
    ids = np.array([BOS, 8, 9, 10, EOS] * 20)
    chosen = np.zeros(ids.size, dtype=bool)
    for epoch in range(20):
        chosen |= small_masker(ROBERTA).mask(ids, epoch, 0)[1] != IGNORE_INDEX
    assert chosen[ids == BOS].any() and chosen[ids == EOS].any()


@settings(max_examples=100, deadline=None)
@given(ROWS, st.sampled_from(UNITS), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_deterministic(ids, config, epoch, index):
    """The mask is a function of (seed, epoch, index): a new masker agrees."""
    first = small_masker(config, seed=5).mask(ids, epoch, index)
    second = small_masker(config, seed=5).mask(ids, epoch, index)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])


def test_masks_differ_across_epochs_indices_and_seeds(roberta, blocks):
    masker = Masker.from_tokenizer(roberta)
    block = blocks[0]

    def chosen(m, epoch, index):
        return tuple(np.flatnonzero(m.mask(block, epoch, index)[1] != IGNORE_INDEX))

    by_epoch = {chosen(masker, e, 0) for e in range(20)}
    by_index = {chosen(masker, 0, i) for i in range(20)}
    by_seed = {chosen(Masker.from_tokenizer(roberta, seed=s), 0, 0) for s in range(20)}
    assert len(by_epoch) == len(by_index) == len(by_seed) == 20
    assert chosen(masker, 3, 4) != chosen(masker, 4, 3)  # epoch and index are not mixed up
    assert chosen(masker, 0, 2**64 - 1) != chosen(masker, 2**64 - 1, 0)


def test_same_mask_in_another_process(roberta, blocks):
    """No global state: a fresh interpreter, with NumPy's global seed changed,
    draws the same mask (data-loader workers, resumed runs)."""
    masked, labels = Masker.from_tokenizer(roberta, seed=3).mask(blocks[5], 9, 5)
    script = (
        "import sys, numpy as np, bbpe\n"
        "from bbpe.masking import Masker\n"
        "np.random.seed(99)\n"
        "block = np.array([int(t) for t in sys.argv[1].split()])\n"
        "tok = bbpe.Tokenizer.from_pretrained('roberta-base')\n"
        "masked, labels = Masker.from_tokenizer(tok, seed=3).mask(block, 9, 5)\n"
        "print(' '.join(map(str, masked)), '|', ' '.join(map(str, labels)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, " ".join(map(str, blocks[5]))],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(sample_path().parents[2])},
    ).stdout
    other_masked, other_labels = (np.array(part.split(), dtype=np.int64) for part in out.split("|"))
    assert np.array_equal(masked, other_masked) and np.array_equal(labels, other_labels)


def test_pickled_maskers_agree(roberta, blocks):
    """Data-loader workers get pickled copies: they mask alike."""
    masker = StaticMasker(Masker.from_tokenizer(roberta, config=MaskingConfig(unit="span")), 4)
    copy = pickle.loads(pickle.dumps(masker))
    for mine, theirs in zip(masker.mask(blocks[1], 6, 1), copy.mask(blocks[1], 6, 1), strict=True):
        assert np.array_equal(mine, theirs)


# ------------------------------------------------------------- batch = rows
@st.composite
def padded_batches(draw):
    """Rows, a padded batch of them and an attention mask; padding on the
    right, the left, or anywhere."""
    rows = draw(st.lists(ROWS, min_size=1, max_size=6))
    width = max(len(r) for r in rows) + draw(st.integers(0, 3))
    layout = draw(st.sampled_from(["right", "left", "scattered"]))
    ids = np.full((len(rows), width), PAD, dtype=np.int64)
    attention = np.zeros((len(rows), width), dtype=np.int64)
    for r, row in enumerate(rows):
        if layout == "right":
            at = np.arange(len(row))
        elif layout == "left":
            at = np.arange(width - len(row), width)
        else:
            at = np.sort(np.array(draw(st.permutations(range(width)))[: len(row)], dtype=int))
        ids[r, at] = row
        attention[r, at] = 1
    return rows, ids, attention


@settings(max_examples=150, deadline=None)
@given(padded_batches(), st.sampled_from(UNITS), st.booleans(), st.integers(0, 5))
def test_batch_rows_equal_single_rows(batch, config, with_attention, epoch):
    """Row r of mask_batch is mask(row r without padding, epoch, indices[r]), so
    worker splits and resumed runs agree whatever the batch looks like."""
    rows, ids, attention = batch
    masker = small_masker(config, seed=11)
    indices = [7 * r + 3 for r in range(len(rows))]
    if with_attention:  # padding found from the mask: what it holds does not matter
        ids = np.where(attention == 1, ids, 9)  # (9 would continue a word)
        masked, labels = masker.mask_batch(ids, epoch, indices, attention_mask=attention)
    else:
        masked, labels = masker.mask_batch(ids, epoch, indices)
    for r, row in enumerate(rows):
        at = attention[r] == 1
        row_masked, row_labels = masker.mask(row, epoch, indices[r])
        assert np.array_equal(masked[r, at], row_masked)
        assert np.array_equal(labels[r, at], row_labels)
        assert np.array_equal(masked[r, ~at], ids[r, ~at])
        assert np.all(labels[r, ~at] == IGNORE_INDEX)


def test_batch_rows_equal_single_rows_on_real_blocks(roberta, blocks):
    configs = [ROBERTA, HF_BERT, MaskingConfig(unit="word"), MaskingConfig(unit="span")]
    # With <s> eligible, a span at the end of a row could run on into the next.
    configs.append(MaskingConfig(unit="span", mask_specials=True, probability=0.5))
    batch = blocks[:16].copy()
    lengths = np.full(16, 512)
    lengths[3:8] = [300, 2, 511, 17, 100]
    attention = (np.arange(512) < lengths[:, None]).astype(np.int64)
    # Padding that would continue a word if it were text ("ing").
    batch[attention == 0] = roberta.token_to_id("ing")
    for config in configs:
        masker = Masker.from_tokenizer(roberta, config=config)
        for epoch in range(3):
            masked, labels = masker.mask_batch(batch, epoch, range(100, 116), attention)
            for r in range(16):
                row_masked, row_labels = masker.mask(batch[r, : lengths[r]], epoch, 100 + r)
                assert np.array_equal(masked[r, : lengths[r]], row_masked)
                assert np.array_equal(labels[r, : lengths[r]], row_labels)
                assert np.all(labels[r, lengths[r] :] == IGNORE_INDEX)


# ----------------------------------------------------------------- static
def test_static_masking_repeats_every_copies_epochs(roberta, blocks):
    masker = Masker.from_tokenizer(roberta)
    static = StaticMasker(masker, copies=3)
    masks = [static.mask_batch(blocks[:8], epoch, range(8))[1] for epoch in range(7)]
    for epoch in range(3, 7):
        assert np.array_equal(masks[epoch], masks[epoch % 3])
    assert not np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[1], masks[2])
    assert np.array_equal(static.mask(blocks[2], 4, 2)[1], masks[1][2])
    assert StaticMasker(masker).copies == 10


# ------------------------------------------------------- plain reference
def reference_mask(masker: Masker, ids: np.ndarray, epoch: int, index: int):
    """The documented rules written out one token and one word at a time, with
    the documented draws: Philox keyed (seed, tag) at counter (0, index, epoch,
    0) gives a rounding draw, 32-bit keys (two per draw, low half first), one
    draw per chosen token and, for spans, one per visited anchor."""
    config, n = masker.config, len(ids)
    eligible = [bool(masker._eligible[t]) for t in ids]
    bound = math.floor(config.probability * n) + 1 if config.count == "exact" else n
    anchors = min(2 * bound, n) if config.unit == "span" else 0
    key = np.array([masker.seed, streams._MASKING], dtype=np.uint64)
    counter = np.array([0, index, epoch, 0], dtype=np.uint64)
    raw = [
        int(d)
        for d in np.random.Philox(key=key, counter=counter).random_raw(
            1 + (n + 1) // 2 + bound + anchors
        )
    ]
    keys = [(raw[1 + i // 2] >> (32 * (i % 2))) & 0xFFFFFFFF for i in range(n)]
    token_draws = raw[1 + (n + 1) // 2 :]
    anchor_draws = token_draws[bound:]
    budget = int(config.probability * sum(eligible) + (raw[0] >> 11) / 2**53)
    below = int(config.probability * 2**32)  # Bernoulli: key < p * 2**32

    chosen = [False] * n
    no_special = np.zeros(masker.vocab_size, dtype=bool)  # the tables include them
    row_words = words(ids, masker._word_starts, masker._word_ends, no_special)
    if config.unit == "token" and config.count == "exact":
        for i in sorted((i for i in range(n) if eligible[i]), key=lambda i: (keys[i], i))[:budget]:
            chosen[i] = True
    elif config.unit == "token":
        chosen = [eligible[i] and keys[i] < below for i in range(n)]
    elif config.unit == "word":
        left = budget
        candidates = [w for w in row_words if eligible[w[0]]]
        for start, stop in sorted(candidates, key=lambda w: (keys[w[0]], w[0])):
            if config.count == "bernoulli":
                take = keys[start] < below
            else:
                take = stop - start <= left
                left -= take * (stop - start)
            chosen[start:stop] = [take] * (stop - start)
    else:
        left, starts = budget, [w[0] for w in row_words]
        candidates = [w for w in range(len(row_words)) if eligible[row_words[w][0]]]
        visit = sorted(candidates, key=lambda w: (keys[starts[w]], w))
        for step, word in enumerate(visit):
            if left == 0:
                break
            if chosen[starts[word]]:
                continue
            u = (anchor_draws[step] >> 11) / 2**53
            length = min(1 + int(np.searchsorted(masker._span_cdf, u, "right")), config.max_span)
            stop = row_words[min(word + length, len(row_words)) - 1][1]
            for i in range(starts[word], stop):
                if not eligible[i] or left == 0:
                    break
                if not chosen[i]:
                    chosen[i], left = True, left - 1

    # Units: tokens, words, or runs of chosen tokens (merged spans).
    if config.unit == "word":
        unit_first = {i: s for s, e in row_words for i in range(s, e)}
    else:
        unit_first, previous = {}, False
        for i in range(n):
            start_here = config.unit == "token" or not previous
            unit_first[i] = i if start_here else unit_first[i - 1]
            previous = chosen[i]
    draw_of = {i: token_draws[k] for k, i in enumerate(i for i in range(n) if chosen[i])}
    masked, labels = ids.copy(), np.full(n, IGNORE_INDEX)
    for i in (i for i in range(n) if chosen[i]):
        labels[i] = ids[i]
        decision = draw_of[unit_first[i]] >> 32
        if decision < math.ceil(config.mask_fraction * 2**32):
            masked[i] = masker.mask_id
        elif decision < math.ceil((config.mask_fraction + config.random_fraction) * 2**32):
            pick = ((draw_of[i] & 0xFFFFFFFF) * masker._replacements.size) >> 32
            masked[i] = masker._replacements[pick]
    return masked, labels


@settings(max_examples=300, deadline=None)
@given(
    ROWS,
    st.sampled_from([*UNITS, ROBERTA, HF_BERT]),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
)
def test_equals_the_plain_reference(ids, config, epoch, index):
    masker = small_masker(config, seed=2**63 + 5)
    masked, labels = masker.mask(ids, epoch, index)
    expected_masked, expected_labels = reference_mask(masker, ids, epoch, index)
    assert np.array_equal(masked, expected_masked)
    assert np.array_equal(labels, expected_labels)


@pytest.mark.parametrize("config", [*UNITS, ROBERTA, HF_BERT], ids=repr)
def test_equals_the_plain_reference_on_longer_rows(roberta, blocks, config):
    """Longer rows than hypothesis tends to draw: generated ones, where anchors
    often land in spans already chosen, and real text."""
    masker = small_masker(config, seed=7)
    rng = np.random.default_rng(0)
    for index in range(150):
        ids = rng.integers(0, VOCAB - 1, size=rng.integers(1, 200))
        ids[ids == PAD] = EOS
        for actual, expected in zip(
            masker.mask(ids, 3, index), reference_mask(masker, ids, 3, index), strict=True
        ):
            assert np.array_equal(actual, expected)
    masker = Masker.from_tokenizer(roberta, config=config, seed=7)
    for index in range(5):
        for actual, expected in zip(
            masker.mask(blocks[index], 3, index),
            reference_mask(masker, blocks[index], 3, index),
            strict=True,
        ):
            assert np.array_equal(actual, expected)


# ------------------------------------------------------------ whole words
@settings(max_examples=150, deadline=None)
@given(ROWS, st.sampled_from(["exact", "bernoulli"]), st.integers(0, 3))
def test_whole_words(ids, count, epoch):
    """Chosen words are chosen whole and decided as one (all <mask> or none);
    the exact count takes each word that fits, so no word left out fits in
    what is left of the budget."""
    config = MaskingConfig(unit="word", count=count, probability=0.3)
    masked, labels = small_masker(config).mask(ids, epoch, 1)
    chosen = labels != IGNORE_INDEX
    eligible_words = []
    for start, stop in words(ids):
        assert chosen[start:stop].all() or not chosen[start:stop].any()
        is_mask = masked[start:stop] == MASK
        assert is_mask.all() or not is_mask.any()
        if not IS_SPECIAL[ids[start]]:
            eligible_words.append((start, stop))
    if count == "exact":
        low, high = budget_range(int((~IS_SPECIAL[ids]).sum()), 0.3)
        assert chosen.sum() <= high
        left = low - chosen.sum()
        assert all(stop - start > left for start, stop in eligible_words if not chosen[start])


def test_whole_words_on_real_text(roberta, blocks):
    """Words follow the byte-level spelling; the budget is nearly always met."""
    masker = Masker.from_tokenizer(roberta, config=MaskingConfig(unit="word"))
    masked, labels = masker.mask_batch(blocks, 0, range(len(blocks)))
    tokens = {i: t for t, i in roberta.get_vocab().items()}
    starts = np.array([tokens[i].startswith("Ġ") or "Ċ" in tokens[i] for i in range(50265)])
    special = np.isin(np.arange(50265), masker.special_ids)
    ends = np.array(["Ċ" in tokens[i] for i in range(50265)])
    chosen = labels != IGNORE_INDEX
    multi = 0
    for r in range(50):
        for start, stop in words(blocks[r], starts, ends, special):
            assert chosen[r, start:stop].all() or not chosen[r, start:stop].any()
            multi += stop - start > 1 and chosen[r, start]
    assert multi > 100  # words of several tokens are chosen whole
    eligible = (~special[blocks]).sum(1)
    assert np.all(chosen.sum(1) <= np.floor(0.15 * eligible) + 1)
    assert np.mean(chosen.sum(1) >= np.floor(0.15 * eligible)) > 0.95


# ------------------------------------------------------------------ spans
@settings(max_examples=150, deadline=None)
@given(ROWS, st.integers(0, 3))
def test_spans(ids, epoch):
    """Spans fill the budget exactly, start at word starts, never hold a special
    token, and each merged span is replaced as a whole."""
    masked, labels = small_masker(MaskingConfig(unit="span", probability=0.3)).mask(ids, epoch, 2)
    chosen = labels != IGNORE_INDEX
    low, high = budget_range(int((~IS_SPECIAL[ids]).sum()), 0.3)
    assert low <= chosen.sum() <= high
    word_starts = {start for start, _ in words(ids)}
    for start, stop in runs(chosen):
        assert start in word_starts
        assert not IS_SPECIAL[ids[start:stop]].any()
        is_mask = masked[start:stop] == MASK
        assert is_mask.all() or not is_mask.any()


def test_span_lengths_follow_spanbert():
    """Span lengths in words are geometric(0.2) renormalised on 1..10 (mean 3.8),
    seen in a sparse masking of one-token words, where spans seldom touch."""
    masker = small_masker(MaskingConfig(unit="span", probability=0.01))
    ids = np.full(20_000, 8)  # every token a word
    lengths = []
    for epoch in range(25):
        chosen = masker.mask(ids, epoch, 0)[1] != IGNORE_INDEX
        assert chosen.sum() == 200
        lengths += [stop - start for start, stop in runs(chosen)]
    lengths = np.array(lengths)
    p = 0.2 * 0.8 ** np.arange(10)
    p /= p.sum()
    assert abs(lengths.mean() - 3.8) < 0.3  # clipping at 10 would give 4.5
    observed = np.bincount(np.minimum(lengths, 11), minlength=12)[1:]
    assert observed[10] < 0.03 * lengths.size  # merged spans beyond 10 words are rare
    for length in (1, 2, 3):
        expected = p[length - 1] * lengths.size
        assert abs(observed[length - 1] - expected) < Z * math.sqrt(expected)


def test_spans_on_real_text(roberta, blocks):
    masker = Masker.from_tokenizer(roberta, config=MaskingConfig(unit="span"))
    masked, labels = masker.mask_batch(blocks[:100], 0, range(100))
    check_labels(blocks[:100], masked, labels, masker)
    chosen = labels != IGNORE_INDEX
    special = np.isin(blocks[:100], masker.special_ids)
    eligible = (~special).sum(1)
    assert np.all(chosen.sum(1) - np.floor(0.15 * eligible) >= 0)
    assert np.all(chosen.sum(1) - np.floor(0.15 * eligible) <= 1)
    assert not (chosen & special).any()
    run_lengths = [stop - start for r in range(100) for start, stop in runs(chosen[r])]
    assert 4 < np.mean(run_lengths) < 8  # several tokens per span


# ----------------------------------------------------------- tokenizers
def test_from_tokenizer_roberta(roberta):
    masker = Masker.from_tokenizer(roberta)
    assert masker.mask_id == 50264 and masker.pad_id == 1 and masker.vocab_size == 50265
    assert masker.special_ids == (0, 1, 2, 3, 50264)
    assert masker.config == ROBERTA and ROBERTA.mask_specials and ROBERTA.count == "exact"
    assert HF_BERT.count == "bernoulli" and not HF_BERT.mask_specials
    ids = roberta.encode("Hello world.\nThe end", add_special_tokens=False)
    assert roberta.tokenize("Hello world.\nThe end") == ["Hello", "Ġworld", ".", "Ċ", "The", "Ġend"]
    masker = Masker.from_tokenizer(roberta, config=MaskingConfig(unit="word"))
    assert masker._word_starts[ids].tolist() == [False, True, False, True, False, True]
    assert masker._word_ends[ids].tolist() == [False, False, False, True, False, False]


def byte_alphabet_boundaries(tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Word starts and ends as the masker found them by walking the vocabulary's
    spellings: a leading "Ġ" (space) starts a word, a "Ċ" (newline) starts and
    ends one; special tokens are spelled as written."""
    starts = np.zeros(tokenizer.vocab_size, dtype=bool)
    ends = np.zeros(tokenizer.vocab_size, dtype=bool)
    for token, i in tokenizer.get_vocab().items():
        starts[i] = token.startswith("Ġ") or "Ċ" in token
        ends[i] = "Ċ" in token
    return starts, ends


@pytest.mark.parametrize("name", ["roberta-base", "gpt2", "trained"])
def test_word_boundaries_are_the_byte_alphabet_walks(name):
    if name == "trained":
        texts = [*sample_texts()[:40], "line one\nline two\n\n  indented", "<mask> \n<s>"]
        tokenizer = bbpe.train(texts=texts, vocab_size=600)
    else:
        tokenizer = bbpe.Tokenizer.from_pretrained(name)
    starts, ends = tokenizer.word_boundaries()
    expected_starts, expected_ends = byte_alphabet_boundaries(tokenizer)
    assert expected_starts.any() and expected_ends.any()
    assert np.array_equal(starts, expected_starts)
    assert np.array_equal(ends, expected_ends)
    if "<mask>" in tokenizer.special_tokens:
        masker = Masker.from_tokenizer(tokenizer, config=MaskingConfig(unit="word"))
        special = np.isin(np.arange(tokenizer.vocab_size), masker.special_ids)
        assert np.array_equal(masker._word_starts, expected_starts | special)
        assert np.array_equal(masker._word_ends, expected_ends | special)


def test_from_tokenizer_needs_a_mask_token():
    gpt2 = bbpe.Tokenizer.from_pretrained("gpt2")
    with pytest.raises(ValueError, match="the vocabulary has no <mask> token"):
        Masker.from_tokenizer(gpt2)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "settings_, message",
    [
        ({"probability": 0.0}, "probability must be in \\(0, 1\\), not 0.0"),
        ({"probability": 1.0}, "probability must be in \\(0, 1\\), not 1.0"),
        ({"mask_fraction": -0.1}, "mask_fraction must be in \\[0, 1\\], not -0.1"),
        ({"random_fraction": 1.5}, "random_fraction must be in \\[0, 1\\], not 1.5"),
        ({"mask_fraction": 0.8, "random_fraction": 0.3}, "at most 1, not 0.8 \\+ 0.3"),
        ({"count": "poisson"}, "count must be 'exact' or 'bernoulli', not 'poisson'"),
        ({"unit": "sentence"}, "unit must be 'token', 'word' or 'span', not 'sentence'"),
        ({"span_p": 0.0}, "span_p must be in \\(0, 1\\], not 0.0"),
        ({"max_span": 0}, "max_span must be at least 1, not 0"),
        ({"unit": "span", "count": "bernoulli"}, "needs count='exact', not 'bernoulli'"),
    ],
)
def test_config_validation(settings_, message):
    with pytest.raises(ValueError, match=message):
        MaskingConfig(**settings_)


def test_masker_validation():
    with pytest.raises(ValueError, match="unit='word' needs word_starts"):
        Masker(VOCAB, MASK, SPECIALS, config=MaskingConfig(unit="word"))
    with pytest.raises(ValueError, match="unit='span' needs word_starts"):
        Masker(VOCAB, MASK, SPECIALS, config=MaskingConfig(unit="span"))
    with pytest.raises(ValueError, match="mask_id 40 is not below vocab_size 32"):
        Masker(VOCAB, 40, SPECIALS)
    with pytest.raises(ValueError, match="word_starts must have shape \\(32,\\)"):
        Masker(VOCAB, MASK, SPECIALS, word_starts=np.ones(5, bool))
    masker = small_masker()
    with pytest.raises(ValueError, match="token id 32 is not in the vocabulary"):
        masker.mask(np.array([4, 32]), 0, 0)
    with pytest.raises(ValueError, match="token id -1 is not in the vocabulary"):
        masker.mask_batch(np.array([[4, -1]]), 0, [0])
    with pytest.raises(ValueError, match="2 rows but 1 indices"):
        masker.mask_batch(np.zeros((2, 3), np.int64), 0, [0])
    with pytest.raises(ValueError, match="input_ids must be 1-D, not 2-D"):
        masker.mask(np.zeros((2, 3), np.int64), 0, 0)
    with pytest.raises(ValueError, match="epoch must be in \\[0, 2\\*\\*64\\), not -1"):
        masker.mask(np.array([4, 5]), -1, 0)
    with pytest.raises(
        ValueError, match="index must be in \\[0, 2\\*\\*64\\), not 18446744073709551616"
    ):
        masker.mask(np.array([4, 5]), 0, 2**64)
    with pytest.raises(ValueError, match="copies must be at least 1, not 0"):
        StaticMasker(masker, copies=0)


def test_empty_inputs():
    masker = small_masker()
    masked, labels = masker.mask(np.array([], dtype=np.int64), 0, 0)
    assert masked.size == 0 and labels.size == 0
    masked, labels = masker.mask_batch(np.zeros((0, 4), np.int64), 0, [])
    assert masked.shape == labels.shape == (0, 4)


def test_ties_are_taken_in_position_order():
    """Equal keys (one row in ~10^7 with 32-bit keys) still give exactly k."""
    keys = np.array([[5, 3, 3, 3, 9, 3], [1, 1, 1, 1, 1, 1]], dtype=np.uint32)
    eligible = np.ones(keys.shape, dtype=bool)
    eligible[0, 1] = False
    chosen = _smallest(keys, np.array([2, 0]), eligible)
    assert chosen.tolist() == [[False, False, True, True, False, False], [False] * 6]
