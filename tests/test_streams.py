"""bbpe.streams: the masked-LM data's random streams, derived from one seed by
name (packing, the batch samplers, masking), with seed and epoch checked once."""

import numpy as np
import pytest

from bbpe import streams
from bbpe.data import FixedBatches, TokenBudgetBatches
from bbpe.masking import Masker


def test_each_stream_is_a_pure_function_of_seed_and_epoch():
    for make in (streams.packing_generator, streams.sampler_generator):
        assert np.array_equal(
            make(3, 1).integers(2**62, size=8), make(3, 1).integers(2**62, size=8)
        )
    draws = {
        (make.__name__, seed, epoch): tuple(make(seed, epoch).integers(2**62, size=4))
        for make in (streams.packing_generator, streams.sampler_generator)
        for seed in (0, 1)
        for epoch in (0, 1)
    }
    assert len(set(draws.values())) == len(draws)  # streams, seeds and epochs all differ


def test_a_blocks_mask_draws_need_no_other_blocks():
    sizes = np.array([5, 3, 7])
    together = streams.mask_draws(9, 2, [4, 0, 2**64 - 1], sizes)
    alone = [
        streams.mask_draws(9, 2, [i], np.array([n])) for i, n in [(4, 5), (0, 3), (2**64 - 1, 7)]
    ]
    assert np.array_equal(together, np.concatenate(alone))
    assert not np.array_equal(streams.mask_draws(9, 3, [4], np.array([5])), alone[0])
    assert not np.array_equal(streams.mask_draws(8, 2, [4], np.array([5])), alone[0])


@pytest.mark.parametrize("value", [-1, 2**64, 1.5, "1"])
def test_seeds_and_epochs_outside_the_range_are_refused_by_every_consumer(value):
    for check, name in ((streams.check_seed, "seed"), (streams.check_epoch, "epoch")):
        with pytest.raises(ValueError, match=f"{name} must be"):
            check(value)
    with pytest.raises(ValueError, match="seed must be"):
        FixedBatches(10, 2, seed=value)
    with pytest.raises(ValueError, match="epoch must be"):
        FixedBatches(10, 2, epoch=value)
    with pytest.raises(ValueError, match="seed must be"):
        TokenBudgetBatches([3, 4], 8, seed=value)
    with pytest.raises(ValueError, match="seed must be"):
        Masker(8, 7, [0], seed=value)
    assert streams.check_seed(np.uint64(2**64 - 1)) == 2**64 - 1
