"""What crosses from Python into the Rust core may lie: a `str` subclass can
claim any length or ASCII-ness. The core must read the string itself, never
what its methods say about it."""

import pytest

from bbpe import Tokenizer

TEXTS = {
    "korean": "안녕하세요, 세계! " * 40,
    "mixed": "Hello 세계 " * 40,
    "ascii": "It was a great day. " * 20,
    "short": "한국어",
}


def lying(text: str, length: int | None, ascii: bool | None):
    """`text` as a str whose len() says `length` and isascii() says `ascii`
    (each told truly where None)."""

    class Lying(str):
        def __len__(self):
            return len(str(self)) if length is None else length

        def isascii(self):
            return str(self).isascii() if ascii is None else ascii

    return Lying(text)


@pytest.fixture(scope="module")
def gpt2():
    return Tokenizer.from_pretrained("gpt2")


@pytest.mark.parametrize("ascii", [None, True, False])
@pytest.mark.parametrize("length", [None, 0, 1, 10**6, 2**62])
@pytest.mark.parametrize("kind", list(TEXTS))
def test_a_str_subclass_that_lies_is_read_as_its_real_text(gpt2, kind, length, ascii):
    text = TEXTS[kind]
    expected = gpt2.encode(text)
    liar = lying(text, length, ascii)
    assert gpt2.encode(liar) == expected
    assert gpt2.encode_batch([liar, text, liar]) == [expected] * 3
    ids, offsets = gpt2.encode_batch_flat([liar, text])
    assert ids.tolist() == expected * 2
    assert offsets.tolist() == [0, len(expected), 2 * len(expected)]
