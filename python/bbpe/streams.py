"""Every random stream of the masked-LM data, derived by name from one seed.

A run has one seed (as Megatron has one ``random_seed`` for all its dataset
randomness); packing, the batch samplers and masking each draw from a stream
of their own, derived from the seed, the epoch and the stream's tag, so no
stream depends on what another drew and any part of any epoch can be rebuilt
on its own:

- ``packing_generator(seed, epoch)``: the order of documents and the pair
  formats' choices (`bbpe.packing.pack`);
- ``sampler_generator(seed, epoch)``: the batch samplers' shuffles
  (`bbpe.data.FixedBatches`, `bbpe.data.TokenBudgetBatches`);
- ``mask_draws(seed, epoch, indices, sizes)``: each block's masking draws
  (`bbpe.masking.Masker`), from a counter-based generator so that block
  ``index`` of ``epoch`` needs no other block's draws;
- ``blend_seed(seed, position)``: the seed a blend's set packs with
  (`bbpe.blending.blend`), so each set has streams of its own;
- ``split_generator(seed)``: which documents are train, validation and test
  (`bbpe.packing.ShardDocuments`); it has no epoch, so a document stays in its
  split for the whole run.

Seeds, epochs and block indices are integers in [0, 2**64); they are checked
here, once for every stream.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

_U64 = 2**64

# The tags that keep the streams of one (seed, epoch) apart.
_PACKING = 0x5041434B  # "PACK"
_SAMPLER = 0x42544348  # "BTCH"
_MASKING = int.from_bytes(b"bbpe-mlm", "little")  # Philox's second key word
_BLEND = 0x424C4E44  # "BLND"
_SPLIT = 0x53504C54  # "SPLT"


def check_seed(seed: int) -> int:
    """`seed` as an int, or a ValueError if it is not in [0, 2**64)."""
    return _check(seed, "seed")


def check_epoch(epoch: int) -> int:
    """`epoch` as an int, or a ValueError if it is not in [0, 2**64)."""
    return _check(epoch, "epoch")


def _check(value: int, name: str) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, not {value!r}") from None
    if not 0 <= number < _U64:
        raise ValueError(f"{name} must be in [0, 2**64), not {value!r}")
    return number


def packing_generator(seed: int, epoch: int) -> np.random.Generator:
    """The generator that plans `epoch`'s blocks."""
    return np.random.default_rng([check_seed(seed), check_epoch(epoch), _PACKING])


def sampler_generator(seed: int, epoch: int) -> np.random.Generator:
    """The generator that orders `epoch`'s batches."""
    return np.random.default_rng([check_seed(seed), check_epoch(epoch), _SAMPLER])


def blend_seed(seed: int, position: int) -> int:
    """The seed of set `position` (0, 1, ...) of a blend: its blocks are packed
    with ``packing_generator(blend_seed(seed, position), epoch)``."""
    if operator.index(position) < 0:
        raise ValueError(f"a blend's set position must be non-negative, not {position!r}")
    entropy = np.random.SeedSequence([check_seed(seed), position, _BLEND])
    return int(entropy.generate_state(1, np.uint64)[0])


def split_generator(seed: int) -> np.random.Generator:
    """The generator that assigns documents to train, validation and test: keyed
    by the seed alone (the epoch's place holds 0), so no epoch changes a split."""
    return np.random.default_rng([check_seed(seed), 0, _SPLIT])


def mask_draws(seed: int, epoch: int, indices: Sequence[int], sizes: np.ndarray) -> np.ndarray:
    """``sizes[r]`` raw 64-bit draws for block ``indices[r]`` of ``epoch``,
    concatenated. Block (epoch, index) is the Philox stream with key
    (seed, tag) and counter (0, index, epoch, 0): every block has its own
    stream (2**64 blocks of 4 draws each), whatever else is drawn."""
    seed, epoch = check_seed(seed), check_epoch(epoch)
    bit_generator = np.random.Philox(key=np.array([seed, _MASKING], dtype=np.uint64))
    # Setting the state per block costs a fraction of building a generator,
    # and less again with plain lists than with the getter's arrays.
    counter = [0, 0, epoch, 0]
    state = {
        "bit_generator": "Philox",
        "state": {"counter": counter, "key": [seed, _MASKING]},
        "buffer": [0, 0, 0, 0],
        "buffer_pos": 4,  # the buffer is empty: start at the counter
        "has_uint32": 0,
        "uinteger": 0,
    }
    parts = []
    for index, size in zip(indices, sizes.tolist(), strict=True):
        if not 0 <= index < _U64:
            raise ValueError(f"index must be in [0, 2**64), not {index!r}")
        counter[1] = index
        bit_generator.state = state
        parts.append(bit_generator.random_raw(size))
    return np.concatenate(parts)
