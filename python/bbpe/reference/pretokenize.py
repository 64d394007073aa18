"""Stage 1: text -> pretokens, with GPT-2's pattern run by the `regex` package.

The pattern's classes are pinned to what they mean in the Rust core, whose
table comes from Rust's regex-syntax 0.8 (Unicode 16.0); tiktoken and Hugging
Face tokenizers agree with it on every code point.
"""

import regex

# GPT-2's pattern as published with the original encoder.
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"

# regex-syntax's \s is White_Space (str.isspace adds U+001C..U+001F); spelled out to pin it.
SPACE = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Letters and digits new in Unicode 17.0: recent `regex` has them, regex-syntax 0.8 does not.
_UNICODE_17_LETTERS = (
    r"\u088f\u0c5c\u0cdc\ua7ce\ua7cf\ua7d2\ua7d4\ua7f1\U00010940-\U00010959"
    r"\U00010ec5-\U00010ec7\U00011db0-\U00011ddb\U00016ea0-\U00016eb8\U00016ebb-\U00016ed3"
    r"\U00016ff2\U00016ff3\U000187f8-\U000187ff\U00018d09-\U00018d1e\U00018d80-\U00018df2"
    r"\U0001e6c0-\U0001e6de\U0001e6e0-\U0001e6e2\U0001e6e4\U0001e6e5\U0001e6e7-\U0001e6ed"
    r"\U0001e6f0-\U0001e6f4\U0001e6fe\U0001e6ff\U0002b73a-\U0002b73f\U0002cea2-\U0002cead"
    r"\U000323b0-\U00033479"
)
_UNICODE_17_NUMBERS = r"\U00011de0-\U00011de9\U00016ff4-\U00016ff6"

# Each class of the pattern, spelled as a set (V1 syntax: nested sets, `--` is difference).
_CLASSES = {
    r"\p{L}": rf"[\p{{L}}--[{_UNICODE_17_LETTERS}]]",
    r"\p{N}": rf"[\p{{N}}--[{_UNICODE_17_NUMBERS}]]",
    r"\s": f"[{SPACE}]",
    r"\S": f"[^{SPACE}]",
}
PINNED_PATTERN = regex.sub(r"\\p\{[LN]\}|\\[sS]", lambda m: _CLASSES[m[0]], GPT2_PATTERN)
_GPT2 = regex.compile(PINNED_PATTERN, regex.VERSION1)


def pretokenize(text: str) -> list[str]:
    """The pieces of `text`; the pattern matches every character, so they cover it."""
    return _GPT2.findall(text)
