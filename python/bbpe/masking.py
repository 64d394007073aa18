"""Masked-language-model masking as in BERT and RoBERTa, on NumPy blocks of token ids.

`Masker.mask(ids, epoch, index)` chooses tokens of one block and returns the
masked ids and the labels (the original id where chosen, -100 elsewhere). The
choice is a pure function of ``(seed, epoch, index)`` and the ids: it is drawn
from a counter-based generator (Philox, see `bbpe.streams`) whose counter holds
the epoch and the block index, so data-loader workers, resumed runs and
``mask_batch`` all agree, and every epoch draws a fresh mask (RoBERTa's
*dynamic* masking). `StaticMasker` is the paper's baseline: ``copies`` fixed
masks per block, epoch ``e`` reusing copy ``e % copies``; the index must name
the same text in every epoch, so `bbpe.data.MaskedLMDataset` packs its blocks
once for it.

A chosen unit becomes ``<mask>`` with probability ``mask_fraction``, a random
non-special token with probability ``random_fraction``, and stays as it was
otherwise. Units are tokens, whole words, or SpanBERT's spans of words.

Presets and what the reference implementations do:

``ROBERTA`` follows fairseq's ``masked_lm`` task (fairseq/tasks/masked_lm.py:
blocks of ``tokens_per_sample - 1`` tokens, ``<s>`` prepended) and its
``MaskTokensDataset`` (fairseq/data/mask_tokens_dataset.py):

- exactly ``int(0.15 * n + u)`` positions are chosen, ``u`` uniform in [0, 1):
  ``round`` with random rounding, whose mean is exactly ``0.15 * n``;
- ``n`` counts every position of the block: ``MaskTokensDataset`` never looks at
  which tokens are special, so ``<s>`` and ``</s>`` may be chosen
  (``mask_specials=True``); padding is added after masking and never chosen;
- a chosen position is left alone or randomised with probability 0.2, and those
  are split evenly (``leave_unmasked_prob / (leave_unmasked_prob +
  random_token_prob)``): 80% ``<mask>``, 10% random, 10% unchanged, independently
  per token (here from one uniform per unit, which has the same distribution);
- fairseq draws random tokens uniformly from its dictionary minus its first four
  symbols (``<s> <pad> </s> <unk>``), so ``<mask>`` itself can be drawn; here
  every special token is left out;
- fairseq seeds NumPy's global generator from ``(seed, epoch, index)`` for each
  block (``data_utils.numpy_seed``); here the triple is the Philox counter and
  key, with no global state.

``HF_BERT`` follows transformers' ``DataCollatorForLanguageModeling``
(``numpy_mask_tokens`` / ``torch_mask_tokens`` in
transformers/data/data_collator.py): every token that is not special (the
tokenizer's special-tokens mask, padding included) is chosen independently with
probability 0.15 (``count="bernoulli"``, so the number varies from block to
block), then 80% ``<mask>``, 10% random, 10% unchanged by two further Bernoulli
draws. Its random tokens come from the whole vocabulary, special tokens
included; here they never are. Its generator is global (or one per worker), so
its masks depend on the order batches are made in.

Whole words (``unit="word"``): a word is a word-start token and the non-start
tokens after it. Words are visited in a random order and each one is taken whole
if it still fits in the budget (Google BERT's whole-word masking and transformers'
``DataCollatorForWholeWordMask`` do the same), so at most ``budget`` tokens are
chosen; with ``count="bernoulli"`` each word is chosen with probability
``probability``. (fairseq's ``mask_whole_words`` counts its budget in words
instead.) 80/10/10 is decided per word, as in fairseq; a randomly replaced word
gets an independent random token per position.

Spans (``unit="span"``, SpanBERT, Joshi et al. 2020; facebookresearch/SpanBERT
pretraining/fairseq/data/masking.py, ``PairWithSpanMaskingScheme``): word
starts are visited in a random order; one already inside a chosen span is
skipped, any other starts a span of ``l`` words, ``l`` drawn from
``P(l) ~ span_p * (1 - span_p) ** (l - 1)`` on ``1..max_span`` (SpanBERT's code
renormalises over that range, which gives the paper's mean of 3.8 words for
``p = 0.2``, rather than piling the tail on ``max_span``). A span stops early at
a token that may not be chosen (a special token, padding), and the last one is
cut where the budget is reached (SpanBERT's budget is ``ceil(0.15 * n)``, here it
is the ``count`` rule's). Spans that touch or overlap are merged and each
merged span is replaced as a whole: 80% all ``<mask>``, 10% all random, 10% kept
(SpanBERT's ``span_masking`` with ``replacement="span"``). SpanBERT draws its
anchor as a random *token* and moves it to its word's start, so long words
anchor more often; here every word start is equally likely.

Word starts: ``word_starts[id]`` says whether token ``id`` begins a word; a word
also begins at the first token of a block, after a special token and after a
token with ``word_ends[id]`` set (``from_tokenizer`` takes both from the core, which
reads them off each token's bytes: a leading space starts a word, a newline
starts and ends one). Special tokens are words of their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bbpe import streams

IGNORE_INDEX = -100  # the label PyTorch's cross entropy skips

_KEY_MAX = np.uint32(0xFFFFFFFF)  # selection key of positions that may not be chosen


@dataclass(frozen=True)
class MaskingConfig:
    """How many tokens to choose and what to do with them.

    ``count="exact"`` chooses ``int(probability * n + u)`` of the ``n``
    eligible tokens, ``u`` uniform in [0, 1) (fairseq's random rounding: the
    count is ``floor`` or ``ceil`` of ``probability * n`` and its mean is exactly
    ``probability * n``). ``count="bernoulli"`` chooses each token (or word)
    independently with ``probability`` (transformers' collator); span masking
    needs a budget and so needs ``"exact"``.
    """

    probability: float = 0.15
    mask_fraction: float = 0.8
    random_fraction: float = 0.1
    count: Literal["exact", "bernoulli"] = "exact"
    mask_specials: bool = False
    unit: Literal["token", "word", "span"] = "token"
    span_p: float = 0.2
    max_span: int = 10

    def __post_init__(self) -> None:
        if not 0.0 < self.probability < 1.0:
            raise ValueError(f"probability must be in (0, 1), not {self.probability!r}")
        for name in ("mask_fraction", "random_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], not {value!r}")
        total = self.mask_fraction + self.random_fraction
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"mask_fraction + random_fraction must be at most 1, not {self.mask_fraction!r}"
                f" + {self.random_fraction!r} = {total!r}"
            )
        if self.count not in ("exact", "bernoulli"):
            raise ValueError(f"count must be 'exact' or 'bernoulli', not {self.count!r}")
        if self.unit not in ("token", "word", "span"):
            raise ValueError(f"unit must be 'token', 'word' or 'span', not {self.unit!r}")
        if not 0.0 < self.span_p <= 1.0:
            raise ValueError(f"span_p must be in (0, 1], not {self.span_p!r}")
        if isinstance(self.max_span, bool) or not isinstance(self.max_span, int):
            raise ValueError(f"max_span must be an integer, not {self.max_span!r}")
        if self.max_span < 1:
            raise ValueError(f"max_span must be at least 1, not {self.max_span!r}")
        if self.unit == "span" and self.count != "exact":
            raise ValueError(
                f"unit='span' covers a budget of tokens and needs count='exact', not {self.count!r}"
            )


# fairseq's RoBERTa: exact count with random rounding, <s> and </s> may be chosen.
ROBERTA = MaskingConfig(count="exact", mask_specials=True)
# transformers' DataCollatorForLanguageModeling: Bernoulli per non-special token.
HF_BERT = MaskingConfig(count="bernoulli", mask_specials=False)


class Masker:
    """Chooses and replaces tokens of blocks; see the module docstring.

    ``special_ids`` are never drawn as random replacements and, unless
    ``config.mask_specials``, never chosen; ``mask_id`` and ``pad_id`` count as
    special, and padding is never chosen. ``word_starts`` (and optionally
    ``word_ends``, tokens after which a new word begins) are boolean arrays over
    the vocabulary, needed by the ``"word"`` and ``"span"`` units.
    """

    def __init__(
        self,
        vocab_size: int,
        mask_id: int,
        special_ids: Sequence[int],
        *,
        pad_id: int | None = None,
        word_starts: np.ndarray | None = None,
        word_ends: np.ndarray | None = None,
        config: MaskingConfig = ROBERTA,
        seed: int = 0,
    ):
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be positive, not {vocab_size!r}")
        named = {"mask_id": mask_id, "pad_id": pad_id}
        for name, value in [*named.items(), *(("special id", i) for i in special_ids)]:
            if value is not None and not 0 <= value < vocab_size:
                raise ValueError(f"{name} {value!r} is not below vocab_size {vocab_size}")
        seed = streams.check_seed(seed)
        self.vocab_size = vocab_size
        self.mask_id = mask_id
        self.pad_id = pad_id
        self.config = config
        self.seed = seed

        special = np.zeros(vocab_size, dtype=bool)
        special[list(special_ids)] = True
        special[mask_id] = True
        if pad_id is not None:
            special[pad_id] = True
        self.special_ids = tuple(int(i) for i in np.flatnonzero(special))
        self._replacements = np.flatnonzero(~special)
        if config.random_fraction > 0 and self._replacements.size == 0:
            raise ValueError("random_fraction > 0 needs a non-special token to draw")
        self._eligible = np.ones(vocab_size, dtype=bool) if config.mask_specials else ~special
        if pad_id is not None:
            self._eligible[pad_id] = False
        self._ineligible = np.flatnonzero(~self._eligible)

        if config.unit != "token" and word_starts is None:
            raise ValueError(f"unit={config.unit!r} needs word_starts")
        # Special tokens are words of their own: they start one and end it.
        self._word_starts = _vocab_flags(word_starts, "word_starts", vocab_size) | special
        self._word_ends = _vocab_flags(word_ends, "word_ends", vocab_size) | special

        # A unit's decision is the high half of a draw, u = d / 2**32: it is
        # masked when u < mask_fraction, randomised when u < mask + random.
        self._mask_below = np.uint64(math.ceil(config.mask_fraction * 2**32))
        self._random_below = np.uint64(
            math.ceil((config.mask_fraction + config.random_fraction) * 2**32)
        )
        lengths = np.arange(1, config.max_span + 1)
        weights = config.span_p * (1.0 - config.span_p) ** (lengths - 1)
        self._span_cdf = np.cumsum(weights) / weights.sum()

    @classmethod
    def from_tokenizer(cls, tokenizer, *, config: MaskingConfig = ROBERTA, seed: int = 0) -> Masker:
        """A masker for a `bbpe.Tokenizer`: its ``<mask>``, ``<pad>`` and special
        tokens, and its word starts and ends (`Tokenizer.word_boundaries`)."""
        if tokenizer.mask_token_id is None:
            raise ValueError("the vocabulary has no <mask> token")
        starts, ends = tokenizer.word_boundaries()
        return cls(
            tokenizer.vocab_size,
            tokenizer.mask_token_id,
            sorted(tokenizer.special_tokens.values()),
            pad_id=tokenizer.pad_token_id,
            word_starts=starts,
            word_ends=ends,
            config=config,
            seed=seed,
        )

    def __repr__(self) -> str:
        return (
            f"Masker(vocab_size={self.vocab_size}, mask_id={self.mask_id}, "
            f"pad_id={self.pad_id}, config={self.config}, seed={self.seed})"
        )

    # ------------------------------------------------------------------ public
    def mask(self, input_ids: np.ndarray, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Masks one block: returns (masked ids, labels), leaving ``input_ids`` as
        it was. Tokens equal to ``pad_id`` are never chosen."""
        ids = _id_array(input_ids, 1)
        self._check_ids(ids)
        masked, labels = self._mask_rows(ids[None, :], np.array([ids.size]), epoch, [index])
        return masked[0], labels[0]

    def mask_batch(
        self,
        input_ids: np.ndarray,
        epoch: int,
        indices: Sequence[int],
        attention_mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Masks a padded batch: row ``r`` gets what ``mask(row r without its
        padding, epoch, indices[r])`` gives, and labels -100 on padding.

        Padding is where ``attention_mask`` is 0, or without one, where the
        ids equal ``pad_id``; it may be on either side."""
        ids = _id_array(input_ids, 2)
        if len(indices) != ids.shape[0]:
            raise ValueError(f"{ids.shape[0]} rows but {len(indices)} indices")
        self._check_ids(ids)
        if attention_mask is not None:
            valid = np.asarray(attention_mask) != 0
            if valid.shape != ids.shape:
                raise ValueError(f"attention_mask has shape {valid.shape}, input_ids {ids.shape}")
        elif self.pad_id is not None:
            valid = ids != self.pad_id
        else:
            valid = np.ones(ids.shape, dtype=bool)

        if valid.all():
            return self._mask_rows(ids, np.full(ids.shape[0], ids.shape[1]), epoch, indices)
        lengths = valid.sum(axis=1, dtype=np.int32)
        if np.array_equal(valid, np.arange(ids.shape[1]) < lengths[:, None]):
            return self._mask_rows(ids, lengths, epoch, indices)
        # Padding inside or before the tokens: move each row's tokens to the
        # front (order kept), mask, and put everything back where it was.
        order = np.argsort(~valid, axis=1, kind="stable")
        packed, labels = self._mask_rows(
            np.take_along_axis(ids, order, axis=1), lengths, epoch, indices
        )
        masked = np.empty_like(packed)
        np.put_along_axis(masked, order, packed, axis=1)
        unpacked = np.empty_like(labels)
        np.put_along_axis(unpacked, order, labels, axis=1)
        return masked, unpacked

    # ---------------------------------------------------------------- the core
    def _check_ids(self, ids: np.ndarray) -> None:
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)][0]
            raise ValueError(f"token id {bad} is not in the vocabulary (size {self.vocab_size})")

    def _mask_rows(
        self, ids: np.ndarray, lengths: np.ndarray, epoch: int, indices: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Masks rows whose tokens are ``ids[r, :lengths[r]]``, the rest padding."""
        rows, width = ids.shape
        if ids.size == 0:
            return ids.copy(), np.full(ids.shape, IGNORE_INDEX, dtype=np.int64)
        config = self.config
        padded = lengths.min() < width
        if self._ineligible.size == 1:  # RoBERTa's preset: only <pad>
            eligible = ids != self._ineligible[0]
        else:
            eligible = np.take(self._eligible, ids)
        valid = None  # every position holds a token
        if padded:
            valid = np.arange(width) < lengths[:, None]
            eligible &= valid
        counts = eligible.sum(axis=1, dtype=np.int32)

        # Per row: one rounding draw, a 32-bit selection key per position (two
        # per draw), a draw per chosen token (at most `bound` of them) and, for
        # spans, one per visited anchor (at most two per chosen token: each
        # anchor either adds a token or is a word start already chosen). Sizes
        # follow from the row's length alone.
        if config.count == "exact":
            bound = np.floor(config.probability * lengths).astype(np.int64) + 1
        else:
            bound = lengths
        anchors = np.minimum(2 * bound, lengths) if config.unit == "span" else 0
        key_draws = (lengths + 1) // 2
        sizes = 1 + key_draws + bound + anchors
        raw = streams.mask_draws(self.seed, epoch, indices, sizes)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        token_at = starts + 1 + key_draws
        anchor_at = token_at + bound

        if not padded:  # the draws form a grid
            key_rows = raw.reshape(rows, -1)[:, 1 : 1 + (width + 1) // 2]
        else:  # a short row's keys run into its other draws: they go unused
            key_rows = raw[
                np.minimum(starts[:, None] + 1 + np.arange((width + 1) // 2), raw.size - 1)
            ]
        keys = _keys(key_rows, width)
        if not eligible.all():
            keys = np.where(eligible, keys, _KEY_MAX)
        # fairseq's count: int(p * n + u) rounds p * n up with probability frac(p * n).
        budget = (config.probability * counts + _uniform(raw[starts])).astype(np.int64)

        chosen, unit_first = self._choose(ids, valid, eligible, keys, budget, raw, anchor_at)
        return self._replace(ids, chosen, unit_first, raw, token_at)

    def _choose(
        self,
        ids: np.ndarray,
        valid: np.ndarray | None,
        eligible: np.ndarray,
        keys: np.ndarray,
        budget: np.ndarray,
        raw: np.ndarray,
        anchor_at: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The chosen tokens and, unless tokens are the units, the flat position
        of each chosen token's unit's first token (see `_replace`)."""
        config = self.config
        if config.unit == "token" and config.count == "exact":
            return _smallest(keys, budget, eligible), None
        if config.unit == "token":
            return keys < np.uint32(int(config.probability * 2**32)), None

        rows, width = ids.shape
        word_start = self._word_starts[ids]
        word_start[:, 1:] |= self._word_ends[ids[:, :-1]]
        word_start[:, 0] = True
        if valid is not None:  # each padding position is a word of its own
            word_start |= ~valid
        # Words as flat positions of their first tokens; a row's last word ends
        # where the next row's first word starts.
        first = np.flatnonzero(word_start)
        size = np.diff(first, append=ids.size)
        if config.unit == "word":
            taken = self._choose_words(keys, eligible, first, size, budget)
            chosen = np.repeat(taken, size).reshape(rows, width)
            return chosen, np.repeat(first[taken], size[taken])
        # Spans that touch or overlap are merged: the merged spans are the units.
        chosen = self._choose_spans(keys, eligible, first, budget, raw, anchor_at)
        span_start = chosen.copy()
        span_start[:, 1:] &= ~chosen[:, :-1]
        span_first = np.flatnonzero(span_start)
        tokens = np.flatnonzero(chosen)
        return chosen, span_first[np.searchsorted(span_first, tokens, side="right") - 1]

    def _choose_words(
        self,
        keys: np.ndarray,
        eligible: np.ndarray,
        first: np.ndarray,
        size: np.ndarray,
        budget: np.ndarray,
    ) -> np.ndarray:
        """Which words are chosen (one flag per word): words are visited in the
        order of their first token's key and taken whenever they fit."""
        candidate = eligible.reshape(-1)[first]
        word_keys = keys.reshape(-1)[first]
        if self.config.count == "bernoulli":
            return candidate & (word_keys < np.uint32(int(self.config.probability * 2**32)))
        order, count = _visiting_order(word_keys, candidate, first, keys.shape)
        is_word = np.arange(keys.shape[1]) < count[:, None]
        lengths = np.where(is_word, size[np.where(is_word, order, 0)], 0)
        # Every word before the first that does not fit is taken...
        taken = is_word & (np.cumsum(lengths, axis=1) <= budget[:, None])
        left = budget - (lengths * taken).sum(axis=1)
        # ... then, one per round, the next one that fits in what is left. A word
        # passed over never fits later: what is left only shrinks.
        rows = np.arange(keys.shape[0])
        while True:
            fits = ~taken & is_word & (lengths <= left[:, None])
            found = fits.any(axis=1)
            if not found.any():
                break
            column = fits.argmax(axis=1)[found]
            taken[rows[found], column] = True
            left[found] -= lengths[rows[found], column]
        chosen = np.zeros(first.size, dtype=bool)
        chosen[order[taken]] = True
        return chosen

    def _choose_spans(
        self,
        keys: np.ndarray,
        eligible: np.ndarray,
        first: np.ndarray,
        budget: np.ndarray,
        raw: np.ndarray,
        anchor_at: np.ndarray,
    ) -> np.ndarray:
        """SpanBERT's spans over words (flat first positions ``first``): each
        step visits the next anchor of every row that still has budget left."""
        rows, width = keys.shape
        flat_eligible = eligible.reshape(-1)
        candidate = flat_eligible[first]
        order, count = _visiting_order(keys.reshape(-1)[first], candidate, first, keys.shape)
        word_end = np.append(first, keys.size)  # word w + 1's first token ends word w
        barrier = np.append(np.flatnonzero(~flat_eligible), keys.size)  # spans stop there

        covered = np.zeros(keys.size, dtype=bool)
        left = budget.copy()
        step = 0
        while True:
            active = np.flatnonzero((left > 0) & (step < count))
            if active.size == 0:
                break
            word = order[active, step]
            fresh = ~covered[first[word]]  # SpanBERT skips anchors already chosen
            r, word = active[fresh], word[fresh]
            start = first[word]
            u = _uniform(raw[anchor_at[r] + step])
            span = 1 + np.searchsorted(self._span_cdf, u, side="right")
            span = np.minimum(span, self.config.max_span)  # rounding at the top of the cdf
            # Word numbers run on into the next row: stop at the row's end too.
            end = word_end[np.minimum(word + span, first.size)]
            end = np.minimum(end, (r + 1) * width)
            end = np.minimum(end, barrier[np.searchsorted(barrier, start)])
            window = start[:, None] + np.arange((end - start).max(initial=0))
            inside = window < end[:, None]
            window = np.minimum(window, keys.size - 1)
            new = inside & ~covered[window]
            # Tokens are added in order until the budget is spent.
            new &= np.cumsum(new, axis=1) <= left[r][:, None]
            covered[window[new]] = True
            left[r] -= new.sum(axis=1)
            step += 1
        return covered.reshape(rows, width)

    def _replace(
        self,
        ids: np.ndarray,
        chosen: np.ndarray,
        unit_first: np.ndarray | None,
        raw: np.ndarray,
        first_draw: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels and the 80/10/10 replacement. The k-th chosen token of row r
        (in position order) owns draw ``first_draw[r] + k``: its high half
        decides for the unit that starts there, its low half picks the token's
        random replacement. ``unit_first`` is, for each chosen token in flat
        order, the flat position of its unit's first token."""
        width = ids.shape[1]
        flat = np.flatnonzero(chosen)
        row = flat // width
        draw = raw[first_draw[row] + _rank_in_row(row)]
        masked = ids.copy()
        masked_flat = masked.reshape(-1)
        labels = np.full(ids.shape, IGNORE_INDEX, dtype=np.int64)
        labels.reshape(-1)[flat] = masked_flat[flat]

        decision = draw >> np.uint64(32)
        if unit_first is not None:
            decision = decision[np.searchsorted(flat, unit_first)]
        to_mask = decision < self._mask_below
        masked_flat[flat[to_mask]] = self.mask_id
        to_random = ~to_mask & (decision < self._random_below)
        if to_random.any():
            # Lemire's multiply-shift: uniform to within size / 2**32 (1e-5 for 50K ids).
            low = draw[to_random] & np.uint64(0xFFFFFFFF)
            pick = (low * np.uint64(self._replacements.size)) >> np.uint64(32)
            masked_flat[flat[to_random]] = self._replacements[pick]
        return masked, labels


class StaticMasker:
    """RoBERTa's static-masking baseline: the data duplicated ``copies`` times,
    each copy with its own fixed mask; epoch ``e`` sees copy ``e % copies``
    (the paper: 10 copies over 40 epochs, each mask seen 4 times).

    Block ``index``'s mask is ``masker``'s for (copy, index): a pure function of
    (seed, copy, index), so it repeats only if ``index`` names the same text in
    every epoch. `bbpe.data.MaskedLMDataset` sees to that by packing its blocks
    once (epoch 0's plan) when given a StaticMasker; blocks re-packed each epoch
    would meet a different mask every time."""

    def __init__(self, masker: Masker, copies: int = 10):
        if copies < 1:
            raise ValueError(f"copies must be at least 1, not {copies!r}")
        self.masker = masker
        self.copies = copies

    @property
    def seed(self) -> int:
        return self.masker.seed

    def mask(self, input_ids: np.ndarray, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.masker.mask(input_ids, epoch % self.copies, index)

    def mask_batch(
        self,
        input_ids: np.ndarray,
        epoch: int,
        indices: Sequence[int],
        attention_mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.masker.mask_batch(input_ids, epoch % self.copies, indices, attention_mask)

    def __repr__(self) -> str:
        return f"StaticMasker({self.masker!r}, copies={self.copies})"


# -------------------------------------------------------------------- helpers
def _id_array(input_ids, ndim: int) -> np.ndarray:
    ids = np.asarray(input_ids)
    if ids.ndim != ndim:
        raise ValueError(f"input_ids must be {ndim}-D, not {ids.ndim}-D")
    if ids.size == 0 and ids.dtype.kind not in "iu":
        ids = ids.astype(np.int64)  # an empty list arrives as float
    if ids.dtype.kind not in "iu":
        raise ValueError(f"input_ids must hold integers, not {ids.dtype}")
    return ids


def _vocab_flags(flags: np.ndarray | None, name: str, vocab_size: int) -> np.ndarray:
    if flags is None:
        return np.zeros(vocab_size, dtype=bool)
    flags = np.asarray(flags, dtype=bool)
    if flags.shape != (vocab_size,):
        raise ValueError(f"{name} must have shape ({vocab_size},), not {flags.shape}")
    return flags


def _uniform(raw: np.ndarray) -> np.ndarray:
    """Raw 64-bit draws as doubles in [0, 1), the way NumPy's Generator.random does."""
    return (raw >> np.uint64(11)) * (1.0 / 2**53)


def _keys(draws: np.ndarray, width: int) -> np.ndarray:
    """``width`` 32-bit keys per row of 64-bit draws, two per draw, low half
    first (the same on any byte order)."""
    pairs = draws.astype("<u8", copy=False).view("<u4")
    return pairs[:, :width].astype(np.uint32, copy=False)


def _smallest(keys: np.ndarray, k: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Exactly ``k[r]`` eligible positions of each row: those with the smallest
    keys, equal keys taken in position order."""
    rows, width = np.arange(keys.shape[0]), keys.shape[1]
    ordered = np.sort(keys, axis=1)
    kth = ordered[rows, np.maximum(k - 1, 0)]
    chosen = keys <= kth[:, None]
    # Rows with k = 0, or with the k-th key repeated (about one row in 10^7
    # with 32-bit keys), take the smaller keys and then the first equal ones.
    repeated = (k < width) & (ordered[rows, np.minimum(k, width - 1)] == kth)
    for r in np.flatnonzero((k == 0) | repeated):
        below = keys[r] < kth[r]
        tied = np.flatnonzero((keys[r] == kth[r]) & eligible[r])
        chosen[r] = below
        chosen[r, tied[: max(k[r] - below.sum(), 0)]] = True
    return chosen


def _visiting_order(
    word_keys: np.ndarray, candidate: np.ndarray, first: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's candidate words (indices into ``first``) by increasing key,
    equal keys by position, in the first ``count[r]`` columns of ``order``.
    Sorting key << 32 | word index sorts both at once; a row's word indices
    differ from those of the same row alone by a constant, so the order does
    not depend on the other rows."""
    rows, width = shape
    word = np.flatnonzero(candidate)
    packed = np.full(rows * width, np.uint64(2**64 - 1))
    packed[first[word]] = (word_keys[word].astype(np.uint64) << np.uint64(32)) | word.astype(
        np.uint64
    )
    packed = np.sort(packed.reshape(rows, width), axis=1)
    order = (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)
    count = np.bincount(first[word] // width, minlength=rows)
    return order, count


def _rank_in_row(row: np.ndarray) -> np.ndarray:
    """For sorted row numbers, each entry's rank among its row's entries."""
    if row.size == 0:
        return row
    first = np.flatnonzero(np.concatenate(([True], row[1:] != row[:-1])))
    return np.arange(row.size) - np.repeat(first, np.diff(np.append(first, row.size)))


__all__ = ["HF_BERT", "IGNORE_INDEX", "ROBERTA", "Masker", "MaskingConfig", "StaticMasker"]
