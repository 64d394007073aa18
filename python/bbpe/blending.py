"""Several corpora in one epoch of blocks, in proportion to weights (the RoBERTa
paper trained on five: BookCorpus, Wikipedia, CC-News, OpenWebText and Stories).

Each set (a `packing.ShardDocuments`) is packed on its own, with a seed derived
from the data's seed and the set's position (`bbpe.streams.blend_seed`). An
epoch has as many blocks as the sets of non-zero weight have together, shared
out by weight in a fixed interleaving (`interleave`): among the first k blocks
of an epoch, set j has more than w k - 1 and fewer than w k + 1, w being its
share of the weights. A set drawn less often than it has blocks gives the first
ones of its epoch (in its shuffled document order, so other ones next epoch); a
set drawn more often gives all of them again, in the same order (masked anew:
masks are keyed by a block's index in the blend, so every block of the epoch
has its own). Everything is a function of (sets, weights, seed, epoch), the
same in any process, rank or data-loader worker.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from bbpe import packing, streams


class BlendedBlocks(Sequence[packing.Block]):
    """One epoch of a blend: block i is block `positions[i]` of set `sets[i]`'s
    epoch (`parts[sets[i]]`, the `packing.Blocks` of that set; None for a set of
    weight 0)."""

    def __init__(
        self,
        parts: Sequence[packing.Blocks | None],
        sets: np.ndarray,
        positions: np.ndarray,
        seed: int,
        epoch: int,
    ) -> None:
        self.parts = tuple(parts)
        self.sets, self.positions = sets, positions
        self.seed, self.epoch = seed, epoch
        self._lengths = np.empty(len(sets), dtype=np.int64)
        for j, part in enumerate(self.parts):
            if part is not None:
                mine = sets == j
                self._lengths[mine] = part.lengths()[positions[mine]]
        for array in (self.sets, self.positions, self._lengths):
            array.flags.writeable = False

    def lengths(self) -> np.ndarray:
        """The length of every block, special tokens included (read-only, int64)."""
        return self._lengths

    def __len__(self) -> int:
        return len(self._lengths)

    def __getitem__(self, i: int) -> packing.Block:
        j = operator.index(i)
        n = len(self)
        if not -n <= j < n:
            raise IndexError(f"block {i} out of range for {n} blocks")
        return self.parts[int(self.sets[j])][int(self.positions[j])]

    def batch(
        self, indices: Sequence[int] | np.ndarray, width: int | None = None
    ) -> packing.BlockBatch:
        """Blocks `indices` as the rows of one array, as `packing.Blocks.batch`
        gives them: each set's blocks are read together and put in their rows."""
        order = packing.check_indices(indices, len(self))
        lengths = self._lengths[order]
        longest = int(lengths.max(initial=0))
        width = longest if width is None else width
        sets = self.sets[order]
        ids = labels = None
        for j in np.unique(sets):
            rows = np.flatnonzero(sets == j)
            part = self.parts[j].batch(self.positions[order[rows]], width)
            if ids is None:
                ids = np.empty((len(order), width), dtype=np.int64)
                labels = None if part.nsp_labels is None else np.empty(len(order), np.int64)
            ids[rows] = part.input_ids
            if labels is not None:
                labels[rows] = part.nsp_labels
        if ids is None:  # no blocks asked for
            ids = np.empty((0, width), dtype=np.int64)
        return packing.BlockBatch(ids, lengths, labels)

    def __repr__(self) -> str:
        counts = np.bincount(self.sets, minlength=len(self.parts)).tolist()
        return f"BlendedBlocks({len(self)} blocks, per set {counts}, epoch={self.epoch})"


def blend(
    sets: Sequence[packing.ShardDocuments],
    weights,
    format: str,
    specials: packing.SpecialIds,
    *,
    max_len: int = 512,
    seed: int = 0,
    epoch: int = 0,
    short_seq_prob: float = 0.0,
) -> BlendedBlocks:
    """One epoch of `sets` blended by `weights` (one number per set, none negative,
    not all zero): each set of non-zero weight is packed as `packing.pack` does
    (same format, max_len and short_seq_prob), with its own seed, and their
    blocks are interleaved as the module says."""
    shares = packing.check_weights(weights, "blend weights")
    if len(shares) != len(sets):
        raise ValueError(
            f"blend weights: one per set, but {len(shares)} for {len(sets)} sets: {weights!r}"
        )
    seed = streams.check_seed(seed)
    parts: list[packing.Blocks | None] = []
    for j, (documents, share) in enumerate(zip(sets, shares, strict=True)):
        if share == 0:
            parts.append(None)
            continue
        try:
            part = packing.pack(
                documents,
                format,
                specials,
                max_len=max_len,
                seed=streams.blend_seed(seed, j),
                epoch=epoch,
                short_seq_prob=short_seq_prob,
            )
        except ValueError as error:
            raise ValueError(f"set {j} of the blend: {error}") from None
        parts.append(part)
    total = sum(len(part) for part in parts if part is not None)
    sets_of_blocks = interleave(shares, total)
    positions = np.empty(total, dtype=np.int64)
    for j, part in enumerate(parts):
        if part is not None:
            mine = np.flatnonzero(sets_of_blocks == j)
            positions[mine] = np.arange(len(mine)) % len(part)
    return BlendedBlocks(parts, sets_of_blocks, positions, seed, epoch)


def interleave(weights: Sequence[Fraction], n: int) -> np.ndarray:
    """The set (int32) of each of the first `n` blocks, for exact non-negative
    `weights` (not all zero).

    Set j's share is w = weights[j] / sum(weights); its c-th block (c = 0, 1,
    ...) may take slot c / w rounded down at the earliest and is due by slot
    (c + 1) / w rounded up. Each slot goes to the set whose next block is due
    first among those it may take (ties: the lowest set). This is a
    proportionate-fair ("Pfair") schedule (Baruah et al., 1996): after k slots
    every set has more than w k - 1 and fewer than w k + 1 blocks. (Megatron's
    greedy rule, the slot to the set furthest below its share, can stray by
    more than one block when there are many sets of uneven weight.) The
    arithmetic is in integers, so the bound is exact, and the schedule repeats
    every `sum(weights)` slots once weights are scaled to coprime integers:
    weights 3:1:1 repeat a schedule of 5.
    """
    scale = math.lcm(*(w.denominator for w in weights))
    shares = [int(w * scale) for w in weights]
    common = math.gcd(*shares)
    shares = [share // common for share in shares]
    total = sum(shares)
    active = [j for j, share in enumerate(shares) if share > 0]
    counts = [0] * len(shares)
    # Slot c * total / share rounded down, and (c + 1) * total / share rounded up.
    earliest = [0] * len(shares)
    due = [-(-total // share) if share else 0 for share in shares]
    order = []
    for slot in range(min(n, total)):
        best = -1
        for j in active:
            if earliest[j] <= slot and (best < 0 or due[j] < due[best]):
                best = j
        order.append(best)
        c = counts[best] = counts[best] + 1
        earliest[best] = c * total // shares[best]
        due[best] = -(-(c + 1) * total // shares[best])
    period = np.array(order, dtype=np.int32)
    return np.resize(period, n) if n > len(period) else period
