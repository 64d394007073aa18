"""Shared fixtures: the bundled vocabularies and offline builds of the external
engines (tiktoken, Hugging Face tokenizers) that the differential tests compare
against. A test that needs a missing engine is skipped, not failed."""

import json
import os
from pathlib import Path
from unittest import mock

import pytest

import bbpe

VOCABULARIES = Path(bbpe.__file__).parent / "vocabularies"

# GPT-2's pattern as tiktoken spells the contractions (its engine has no
# alternation-order subtleties with these, so it is the same pattern).
GPT2_PATTERN = r"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
# The hashes tiktoken's own "gpt2" encoding checks its downloads against: the
# bundled files are OpenAI's encoder.json and vocab.bpe, unchanged.
GPT2_MERGES_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
GPT2_VOCAB_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"


def vocab_files(name: str) -> tuple[Path, Path]:
    """(vocab.json, merges.txt) of a bundled vocabulary ("gpt2", "roberta-base")."""
    return VOCABULARIES / name / "vocab.json", VOCABULARIES / name / "merges.txt"


def build_tiktoken_gpt2():
    """tiktoken's "gpt2" encoding, built offline the way tiktoken_ext builds it."""
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    try:  # the pattern tiktoken ships (possessive quantifiers, same matches)
        from tiktoken_ext.openai_public import r50k_pat_str as pattern
    except ImportError:
        pattern = GPT2_PATTERN
    vocab, merges = vocab_files("gpt2")
    with mock.patch.dict(os.environ, {"TIKTOKEN_CACHE_DIR": ""}):  # read in place, no cache
        ranks = data_gym_to_mergeable_bpe_ranks(
            vocab_bpe_file=str(merges),
            encoder_json_file=str(vocab),
            vocab_bpe_hash=GPT2_MERGES_SHA256,
            encoder_json_hash=GPT2_VOCAB_SHA256,
        )
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=pattern,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
        explicit_n_vocab=50257,
    )


def build_hf_byte_level(name: str):
    """A Hugging Face byte-level BPE tokenizer: no prefix space, no template, no
    trimming, and no added tokens (special token strings are plain text)."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers

    vocab, merges = vocab_files(name)
    tok = tokenizers.Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok


@pytest.fixture(scope="session")
def tiktoken_gpt2():
    return build_tiktoken_gpt2()


@pytest.fixture(scope="session")
def hf_gpt2():
    return build_hf_byte_level("gpt2")


def hf_trained(texts, vocab_size: int, min_frequency: int, special_tokens):
    """What Hugging Face's BpeTrainer behind a ByteLevel pre-tokenizer learns
    from `texts`: its vocabulary (token string -> id) and merges (pairs of
    token strings), in order."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return vocab_and_merges(tok.to_str())


def vocab_and_merges(tokenizer_json: str):
    """The vocabulary and merges of a tokenizer.json text. Newer versions save a
    merge as a list of two strings, older ones (and bbpe) as "a b"."""
    model = json.loads(tokenizer_json)["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return model["vocab"], merges


def ray_or_skip():
    """Ray, or a skip where it is not installed; in CI's second environment,
    which installs it (BBPE_REQUIRE_RAY=1), a missing Ray is an error."""
    if os.environ.get("BBPE_REQUIRE_RAY") == "1":
        import ray

        return ray
    return pytest.importorskip("ray")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In the environment that has the real trainers (BBPE_REQUIRE_TRAINERS=1),
    a `trainers` test that skips failed to find them: report it as failed."""
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and os.environ.get("BBPE_REQUIRE_TRAINERS") == "1"
        and item.get_closest_marker("trainers") is not None
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped where the trainers must be installed: {report.longrepr}"
