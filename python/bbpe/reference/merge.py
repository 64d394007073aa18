"""Stage 2a: the byte ids of one pretoken -> token ids, merging the adjacent
pair of lowest rank first (the leftmost among equal ranks), as GPT-2 does."""

import numpy as np

NO_MERGE = np.iinfo(np.int64).max


def merge(symbols: list[int], ranks: dict[tuple[int, int], tuple[int, int]]) -> list[int]:
    symbols = list(symbols)
    while len(symbols) > 1:
        pairs = [(symbols[i], symbols[i + 1]) for i in range(len(symbols) - 1)]
        pair_ranks = np.array([ranks.get(pair, (NO_MERGE,))[0] for pair in pairs])
        at = int(np.argmin(pair_ranks))  # argmin returns the first, i.e. leftmost, minimum
        if pair_ranks[at] == NO_MERGE:
            break
        symbols[at : at + 2] = [ranks[pairs[at]][1]]
    return symbols
