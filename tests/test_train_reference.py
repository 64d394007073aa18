"""The reference trainer (bbpe.reference.train) against Hugging Face's BpeTrainer
behind a ByteLevel pre-tokenizer: the same vocabulary and the same merges, in
the same order, on small repetitive corpora full of ties and on real text."""

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bbpe
from bbpe.reference import (
    Trained,
    bytes_to_token_string,
    count_words,
    learn_merges,
    train,
)
from bbpe.reference.vocab import GPT2_SPECIALS, ROBERTA_SPECIALS
from conftest import hf_trained, vocab_files

tokenizers = pytest.importorskip("tokenizers")
from tokenizers import pre_tokenizers  # noqa: E402

SAMPLE = Path(bbpe.__file__).parent / "samples" / "sample.jsonl"
EXAMPLES = settings(max_examples=300, deadline=None)
MANY_EXAMPLES = settings(max_examples=1000, deadline=None)  # a few ms each


def reference_strings(trained: Trained):
    """The reference's vocabulary and merges spelled as HF spells them
    (specials as written, other tokens in GPT-2's byte alphabet)."""
    n = len(trained.specials)
    strings = [*trained.specials, *map(bytes_to_token_string, trained.tokens[n:])]
    vocab = {string: id for id, string in enumerate(strings)}
    merges = [tuple(map(bytes_to_token_string, pair)) for pair in trained.merge_pairs()]
    return vocab, merges


def assert_same_as_hf(texts, vocab_size, min_frequency, special_tokens) -> Trained:
    trained = train(texts, vocab_size, min_frequency, special_tokens)
    vocab, merges = reference_strings(trained)
    hf_vocab, hf_merges = hf_trained(texts, vocab_size, min_frequency, special_tokens)
    assert merges == hf_merges
    assert vocab == hf_vocab
    return trained


# ------------------------------------------------------------------ corpora
# Few distinct characters, so pairs tie on count all the time, plus multi-byte
# ones (Hangul, emoji) whose bytes merge inside a character first.
SNIPPETS = ["a", "b", "c", " ", "  ", "\n", "가", "나", "😀", "<s>", "'s", "1"]
snippet_texts = st.lists(st.sampled_from(SNIPPETS), max_size=40).map("".join)
# A small pool of words repeated many times: shared substrings at many counts.
words = st.lists(st.sampled_from(SNIPPETS[:9]), min_size=1, max_size=6).map("".join)
pooled_texts = st.lists(words, min_size=1, max_size=6).flatmap(
    lambda pool: st.lists(st.sampled_from(pool), min_size=1, max_size=15).map(" ".join)
)
corpora = st.lists(st.one_of(snippet_texts, pooled_texts), min_size=1, max_size=10)
# "ab" and "a" are also made by merges or are single bytes: they keep their id.
specials = st.sampled_from([[], GPT2_SPECIALS, ROBERTA_SPECIALS, ["ab", "<s>", "a", "ab"]])
vocab_sizes = st.integers(260, 400)
min_frequencies = st.integers(0, 3)


# ------------------------------------------------------------------ against HF
@MANY_EXAMPLES
@given(corpora, vocab_sizes, min_frequencies, specials)
def test_same_as_hf(texts, vocab_size, min_frequency, special_tokens):
    assert_same_as_hf(texts, vocab_size, min_frequency, special_tokens)


def test_same_as_hf_on_real_text():
    texts, size = [], 0
    with SAMPLE.open(encoding="utf-8") as lines:
        for line in lines:
            texts.append(json.loads(line)["text"])
            size += len(texts[-1].encode())
            if size >= 200_000:
                break
    trained = assert_same_as_hf(texts, 1000, 2, ROBERTA_SPECIALS)
    assert len(trained.tokens) == 1000


@EXAMPLES
@given(corpora)
def test_count_words_as_hf_pretokenizes(texts):
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf = Counter(piece for text in texts for piece, _ in pre.pre_tokenize_str(text))
    ours = {bytes_to_token_string(word): n for word, n in count_words(texts).items()}
    assert ours == hf


def test_count_words_with_another_pattern():
    assert count_words(["ab ab", "a b\n"], pattern=r"(\S)+|\s*") == {
        b"ab": 2,
        b" ": 2,
        b"a": 1,
        b"b": 1,
        b"\n": 1,
    }
    texts = ["abab ab", "ba"]
    assert train(texts, 300, 1, [], pattern=r"ab|.").merge_pairs() == [(b"a", b"b")]


# ------------------------------------------------------------------ by hand
def test_worked_example():
    # One word, a a a b d a a a b a c. (a, a) occurs 4 times; after it, (a, b)
    # and (aa, a) tie at 2 and the smaller pair of ids, (a, b), wins; then
    # (aa, ab) occurs twice; from then on every pair occurs once and the
    # smallest pair of ids wins each time: (a, c) = (64, 66) first.
    trained = train(["aaabdaaabac"], vocab_size=300, min_frequency=0, special_tokens=[])
    assert trained.merge_pairs() == [
        (b"a", b"a"),
        (b"a", b"b"),
        (b"aa", b"ab"),
        (b"a", b"c"),
        (b"d", b"aaab"),
        (b"aaab", b"daaab"),
        (b"aaabdaaab", b"ac"),
    ]
    # Each merge makes a new token, with the next id; the last is the whole word.
    assert trained.tokens[256:] == [left + right for left, right in trained.merge_pairs()]
    assert trained.tokens[-1] == b"aaabdaaabac"
    # min_frequency 2 stops before the first pair seen once.
    twice = train(["aaabdaaabac"], vocab_size=300, min_frequency=2, special_tokens=[])
    assert twice.merge_pairs() == trained.merge_pairs()[:3]
    # vocab_size counts every token, specials included.
    small = train(["aaabdaaabac"], vocab_size=258, min_frequency=0, special_tokens=["<s>"])
    assert len(small.tokens) == 258 and small.merge_pairs() == [(b"a", b"a")]


def test_ids_are_gpt2s():
    # Without specials, the 256 bytes get the ids GPT-2's vocab.json gives them.
    gpt2 = json.loads(vocab_files("gpt2")[0].read_text(encoding="utf-8"))
    trained = train([], vocab_size=1000, special_tokens=[])
    assert trained.merges == []
    assert {bytes_to_token_string(t): id for id, t in enumerate(trained.tokens)} == {
        s: id for s, id in gpt2.items() if id < 256
    }
    # Specials come first, once each; a special that is a single byte takes its place.
    trained = train([], vocab_size=1000, special_tokens=["<s>", "!", "<s>", "<pad>"])
    assert trained.specials == ["<s>", "!", "<pad>"]
    assert trained.tokens[:4] == [b"<s>", b"!", b"<pad>", b'"']
    assert len(trained.tokens) == 258


def test_merge_pairs_keep_the_last_rank_of_a_repeated_pair():
    # The merge loop never repeats a pair on its own (see below), so build one.
    trained = Trained(
        tokens=[b"a", b"b", b"c", b"ab", b"abc"],
        merges=[(0, 1, 3), (3, 2, 4), (0, 1, 3)],
    )
    assert trained.merge_pairs() == [(b"ab", b"c"), (b"a", b"b")]


@EXAMPLES
@given(corpora, vocab_sizes, min_frequencies, specials)
def test_each_merge_makes_a_token_once(texts, vocab_size, min_frequency, special_tokens):
    # No token is made by two merges. Hence a pair gains occurrences in one
    # step only, is queued once, and is merged once, in every word it occurs
    # in; so no two queue entries are ever equal in count and pair, and the
    # order HF's heap leaves open between such entries never decides a merge.
    trained = train(texts, vocab_size, min_frequency, special_tokens)
    made = [new for _, _, new in trained.merges]
    assert len(set(made)) == len(made)
    assert len(trained.merge_pairs()) == len(trained.merges)
    for left, right, new in trained.merges:
        assert trained.tokens[new] == trained.tokens[left] + trained.tokens[right]


def greedy_bpe(word_counts, vocab_size, min_frequency, special_tokens, max_token_length=None):
    """Textbook BPE, recounting every pair at every step: merge the most frequent
    pair (the smaller pair of ids among equals) everywhere, leftmost first."""
    tokens = learn_merges({}, 0, 0, special_tokens).tokens  # the initial ids
    ids = {token: id for id, token in enumerate(tokens)}
    words = [([ids[bytes([b])] for b in word], n) for word, n in word_counts.items()]
    merges = []
    while len(tokens) < vocab_size:
        counts = Counter()
        for symbols, n in words:
            for pair in zip(symbols, symbols[1:], strict=False):
                length = len(tokens[pair[0]]) + len(tokens[pair[1]])
                if max_token_length is None or length <= max_token_length:
                    counts[pair] += n
        if not counts:
            break
        (left, right), count = min(counts.items(), key=lambda item: (-item[1], item[0]))
        if count < max(1, min_frequency):
            break
        token = tokens[left] + tokens[right]
        if token not in ids:
            ids[token] = len(tokens)
            tokens.append(token)
        merges.append((left, right, ids[token]))
        for symbols, _ in words:
            i = 0
            while i + 1 < len(symbols):
                if symbols[i] == left and symbols[i + 1] == right:
                    symbols[i : i + 2] = [ids[token]]
                i += 1
    return Trained(tokens, merges)


@EXAMPLES
@given(corpora, vocab_sizes, min_frequencies, specials, st.none() | st.integers(1, 8))
def test_same_as_textbook_bpe(texts, vocab_size, min_frequency, special_tokens, max_length):
    # HF's incremental books (stale counts, entries naming words) add up to the
    # textbook algorithm: every pair not yet merged has an accurate count and
    # one queue entry naming every word it occurs in (see the test above).
    word_counts = count_words(texts)
    trained = learn_merges(word_counts, vocab_size, min_frequency, special_tokens, max_length)
    greedy = greedy_bpe(word_counts, vocab_size, min_frequency, special_tokens, max_length)
    assert trained.merges == greedy.merges
    assert trained.tokens == greedy.tokens


# ------------------------------------------------------------------ max_token_length
@EXAMPLES
@given(corpora, vocab_sizes, min_frequencies, specials, st.integers(1, 8))
def test_max_token_length(texts, vocab_size, min_frequency, special_tokens, max_length):
    word_counts = count_words(texts)
    free = learn_merges(word_counts, vocab_size, min_frequency, special_tokens)
    capped = learn_merges(word_counts, vocab_size, min_frequency, special_tokens, max_length)
    # No merge makes a token longer than the cap.
    assert all(len(capped.tokens[new]) <= max_length for _, _, new in capped.merges)
    # Until the unrestricted run makes its first token that is too long, both
    # runs make the same merges with the same ids: pairs too long are never
    # counted, but the counts of the others and the order among them are the same.
    first_too_long = next(
        (i for i, (_, _, new) in enumerate(free.merges) if len(free.tokens[new]) > max_length),
        len(free.merges),
    )
    assert capped.merges[:first_too_long] == free.merges[:first_too_long]
    if first_too_long == len(free.merges):  # then the cap changes nothing
        assert capped.merges == free.merges


def test_max_token_length_by_hand():
    # "aaaa" x2 and "bb": (a, a) 6 times, then (aa, aa) twice, then (b, b) once.
    word_counts = {b"aaaa": 2, b"bb": 1}
    free = learn_merges(word_counts, 300, 0, [])
    assert free.merge_pairs() == [(b"a", b"a"), (b"aa", b"aa"), (b"b", b"b")]
    # Capped at 3 bytes, (aa, aa) is never counted and (b, b) comes second.
    capped = learn_merges(word_counts, 300, 0, [], max_token_length=3)
    assert capped.merge_pairs() == [(b"a", b"a"), (b"b", b"b")]
    # Capped at 1 byte nothing merges.
    assert learn_merges(word_counts, 300, 0, [], max_token_length=1).merges == []
