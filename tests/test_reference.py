"""Differential tests: the Rust core against the readable reference encoder
(bbpe.reference) and against tiktoken and Hugging Face tokenizers, on text
generated to hit the GPT-2 pattern's corners."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbpe import Tokenizer
from bbpe.reference import (
    BYTE_TO_CHAR,
    ReferenceEncoder,
    bytes_to_token_string,
    merge,
    pretokenize,
    token_string_to_bytes,
)
from bbpe.reference.pretokenize import SPACE, UNICODE_VERSION, pin_classes
from conftest import vocab_files

NAMES = ["gpt2", "roberta-base"]
RUST = {name: Tokenizer.from_pretrained(name) for name in NAMES}
REFERENCE = {name: ReferenceEncoder.from_files(*vocab_files(name)) for name in NAMES}
EXAMPLES = settings(max_examples=300, deadline=None)
MASK_WITH_SPACE = re.compile(f"[{SPACE}]+<mask>")

# ------------------------------------------------------------------ text to test on
# Unicode White_Space, then look-alikes that are not (str.isspace() is True for U+001C..U+001F).
WHITE_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
WHITE_SPACE += "\u2028\u2029\u202f\u205f\u3000"
NOT_WHITE_SPACE = "\x1c\x1d\x1e\x1f\u180e\u200b\u200c\u200d\u2060\ufeff"
SNIPPETS = [
    # emoji: plain, skin tones, ZWJ sequences, flags, variation selectors
    *["😀", "👍🏽", "👋🏿", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🤷🏻‍♀️", "❤️", "🇯🇵", "\U0001f3fb"],
    # combining marks, on their own and after letters
    *[
        "e\u0301",
        "\u0301",
        "\u0308\u0323",
        "a\u20dd",
        "\u0915\u093f",
        "\u0bb8\u0bcd",
        "Z\u0351\u036b",
    ],
    # CJK, Hangul syllables, conjoining and compatibility jamo
    *[
        "漢字",
        "日本語のテキスト",
        "ｶﾀｶﾅ",
        "한국어",
        "안녕하세요",
        "\u1100\u1161\u11a8",
        "\u3131\u314f",
    ],
    # right-to-left scripts and direction marks
    *["مرحبا", "العربية\u064e", "שלום", "עִבְרִית", "\u200f", "\u200e", "\u202e"],
    # digits of other scripts, and other numbers
    *["0123456789", "٠١٢٣٤٥٦٧٨٩", "۰۱۲۳", "०१२३४", "０１２３", "²³", "Ⅻ", "½", "𝟘𝟙"],
    # letters and digits new in Unicode 16 and 17, next to older ones
    *["x\U00010d4a\U00010d4b", "a\u0c5c", "\U0001e6c0\U0001e6c1z", "1\U00011de0", "x\U00010940"],
    # ASCII words, punctuation and special token strings (whole and broken)
    *["hello", " world", "It", " is", "x1", "!!", "...", "?", " (", ")\n", "_", "--", "\\"],
    *["<|endoftext|>", "<s>", "</s>", "<mask>", "<pad>", "<unk>", "<|endoftext", "<", "s>", "|>"],
    # contractions in mixed case, with straight and curly apostrophes
    *[
        q + s
        for q in "'’"
        for s in ["s", "t", "re", "ve", "m", "ll", "d", "S", "T", "RE", "Ve", "lL"]
    ],
    *WHITE_SPACE,
    *NOT_WHITE_SPACE,
]
RUN_UNITS = ["a", "A", " ", "\n", " \n", "\u3000", "x ", "1", "٣", "!", "'", "😀", "한", "ab", "'s"]

characters = st.one_of(
    st.characters(exclude_categories=("Cs",)),  # any code point, assigned or not
    st.characters(max_codepoint=0x3FF, exclude_categories=("Cs",)),
    st.sampled_from(sorted(set("".join(SNIPPETS)))),
    st.sampled_from(WHITE_SPACE + NOT_WHITE_SPACE + "'’ sStTrReEvVmMlLdD0aA!"),
)
random_bytes = st.binary(max_size=64).map(lambda b: b.decode("utf-8", "replace"))
runs = st.builds(lambda unit, n: unit * n, st.sampled_from(RUN_UNITS), st.integers(2, 120))
snippets = st.one_of(st.sampled_from(SNIPPETS), st.text(characters, max_size=6), runs, random_bytes)
texts = st.one_of(
    st.text(characters, max_size=60),
    st.lists(snippets, max_size=14).map("".join),
    random_bytes,
)


# ------------------------------------------------------------------------ fixed cases
def test_byte_alphabet():
    assert (BYTE_TO_CHAR[ord(" ")], BYTE_TO_CHAR[ord("\n")], BYTE_TO_CHAR[0xAD]) == ("Ġ", "Ċ", "Ń")
    every_byte = bytes(range(256))
    assert len(set(bytes_to_token_string(every_byte))) == 256
    assert token_string_to_bytes(bytes_to_token_string(every_byte)) == every_byte


def test_merge_lowest_rank_then_leftmost():
    a, b, c, ab, bc, aa, aaa = range(7)
    ranks = {(b, c): (0, bc), (a, b): (1, ab), (a, a): (2, aa), (aa, a): (3, aaa)}
    assert merge([a, b, c], ranks) == [a, bc]
    assert merge([a, b, a, b], ranks) == [ab, ab]
    assert merge([a, a, a], ranks) == [aaa]
    assert merge([a, a, a, a], ranks) == [aa, aa]
    assert merge([a, a, a, a, a], ranks) == [aa, aaa]


def test_pretokenize_examples():
    assert pretokenize("It's a great day, isn't it?") == [
        *["It", "'s", " a", " great", " day", ",", " isn", "'t", " it", "?"]
    ]
    assert pretokenize("'sam 'LL 're") == ["'s", "am", " '", "LL", " '", "re"]
    assert pretokenize("a \n\nb") == ["a", " \n", "\n", "b"]
    assert pretokenize("end   ") == ["end", "   "]
    assert pretokenize("x123 ٣٤ e\u0301") == ["x", "123", " ٣٤", " e", "\u0301"]
    assert pretokenize("a\x1c\x1cb\u3000\u3000c") == [
        *["a", "\x1c\x1c", "b", "\u3000", "\u3000", "c"]
    ]


def test_classes_of_every_code_point():
    """Each code point c is probed as `a c 1 c ! c \\t c`: whether it joins the
    letter, the digit, the punctuation and the whitespace before it shows its
    class, so reference and Rust split alike only if they classify c alike."""
    code_points = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    for start in range(0, len(code_points), 0x10000):
        chunk = code_points[start : start + 0x10000]
        text = "".join(f"a{c}1{c}!{c}\t{c}" for c in map(chr, chunk))
        assert pretokenize(text) == RUST["gpt2"].pretokenize(text), hex(chunk[0])


@pytest.mark.parametrize("name", NAMES)
def test_long_runs(name):
    """Pieces far longer than the Rust core's heap threshold (96 bytes)."""
    for unit in RUN_UNITS:
        text = f"x{unit * 300}y"
        rust = RUST[name].encode(text, add_special_tokens=False, allowed_special="none")
        assert REFERENCE[name].encode(text, allowed_special="none") == rust, unit


# ------------------------------------------------------------------------- properties
@EXAMPLES
@given(texts)
def test_pretokenize_matches_rust(text):
    assert pretokenize(text) == RUST["gpt2"].pretokenize(text)
    assert "".join(pretokenize(text)) == text


@EXAMPLES
@given(texts)
def test_encode_gpt2_matches_rust(text):
    rust = RUST["gpt2"].encode(text, add_special_tokens=False, allowed_special="none")
    assert REFERENCE["gpt2"].encode(text, allowed_special="none") == rust


@EXAMPLES
@given(text=texts)
def test_encode_gpt2_matches_tiktoken(text, tiktoken_gpt2):
    rust = RUST["gpt2"].encode(text, add_special_tokens=False, allowed_special="none")
    assert tiktoken_gpt2.encode_ordinary(text) == rust
    assert REFERENCE["gpt2"].encode(text, allowed_special="none") == rust


@EXAMPLES
@given(text=texts)
def test_encode_gpt2_matches_hf_tokenizers(text, hf_gpt2):
    rust = RUST["gpt2"].encode(text, add_special_tokens=False, allowed_special="none")
    assert hf_gpt2.encode(text, add_special_tokens=False).ids == rust
    assert REFERENCE["gpt2"].encode(text, allowed_special="none") == rust


@EXAMPLES
@given(texts)
def test_encode_roberta_matches_rust(text):
    rust = RUST["roberta-base"].encode(text, add_special_tokens=False, allowed_special="none")
    assert REFERENCE["roberta-base"].encode(text, allowed_special="none") == rust


@pytest.mark.parametrize("name", NAMES)
@EXAMPLES
@given(text=texts)
def test_special_tokens_match_rust(name, text):
    some = {"gpt2": set(), "roberta-base": {"<mask>", "</s>"}}[name]
    for allowed in ["all", some]:
        rust = RUST[name].encode(text, add_special_tokens=False, allowed_special=allowed)
        assert REFERENCE[name].encode(text, allowed_special=allowed) == rust


@EXAMPLES
@given(text=texts)
def test_special_tokens_match_tiktoken(text, tiktoken_gpt2):
    rust = RUST["gpt2"].encode(text, add_special_tokens=False, allowed_special="all")
    assert tiktoken_gpt2.encode(text, allowed_special="all") == rust


@pytest.mark.parametrize("name", NAMES)
@EXAMPLES
@given(text=texts)
def test_decode_encode_round_trips(name, text):
    # With special tokens recognised, roberta-base's <mask> swallows the
    # whitespace before it (as in its HF tokenizer.json); nothing else is lost.
    absorbed = MASK_WITH_SPACE.sub("<mask>", text) if name == "roberta-base" else text
    reference = REFERENCE[name]
    for allowed, expected in [("none", text), ("all", absorbed)]:
        rust = RUST[name].encode(text, add_special_tokens=False, allowed_special=allowed)
        assert RUST[name].decode(rust) == expected
        ids = reference.encode(text, allowed_special=allowed)
        assert reference.decode(ids) == expected.encode()


# ------------------------------------------------------------------ pinned classes
def test_pinned_classes_follow_unicode_16_not_the_installed_regex():
    # U+0558 and U+18E00 were assigned after Unicode 16 (as a letter and an
    # ideograph); the core, like tiktoken, reads them as "other".
    assert UNICODE_VERSION == "16.0.0"
    assert pretokenize("a\u0558b \U00018e00") == ["a", "\u0558", "b", " \U00018e00"]
    assert pretokenize("a\u0558b") == RUST["gpt2"].pretokenize("a\u0558b")


def test_pin_classes_inside_and_outside_sets():
    pinned = re.compile(pin_classes(r"[^\s\p{L}\p{N}]+|\p{L}+|\S"))
    assert pinned.findall("ab한,;\u3000٣") == ["ab한", ",;", "٣"]
    assert pin_classes(r"\\p{L}") == r"\\p{L}"  # an escaped backslash, not a class
    with pytest.raises(ValueError, match="inside a set"):
        pin_classes(r"[\S]")
