"""Stage 1: text -> pretokens, with GPT-2's pattern.

The pattern's classes are a fact of this reference, not of whichever regex
engine is installed (each `regex` release follows a newer Unicode, and Unicode
17 made letters of code points that Unicode 16 left unassigned): `\\p{L}`,
`\\p{N}`, `\\s` and `\\S` are spelled out as the code-point ranges the Rust core
uses, read from `unicode_classes.txt` (regex-syntax 0.8, Unicode 16.0.0, the
same as tiktoken's engine; `cargo test` checks the file against the core's
table). Spelled out, the pattern needs no Unicode tables at all, so the
standard library's `re` runs it (seven times faster than `regex` with the
same ranges).
"""

import re
from importlib.resources import files

# GPT-2's pattern as published with the original encoder.
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"

UNICODE_VERSION = "16.0.0"


def _read_classes() -> dict[str, str]:
    """Each class of unicode_classes.txt as the inside of a regex set."""
    ranges: dict[str, list[str]] = {}
    text = files(__package__).joinpath("unicode_classes.txt").read_text(encoding="ascii")
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, *spans = line.split()
        for span in spans:
            start, end = (int(bound, 16) for bound in span.split("-"))
            ranges.setdefault(name, []).append(f"\\U{start:08x}-\\U{end:08x}")
    return {name: "".join(spans) for name, spans in ranges.items()}


_RANGES = _read_classes()
# Unicode White_Space (str.isspace() adds U+001C..U+001F, which it is not).
SPACE = _RANGES["S"]
_SETS = {r"\p{L}": _RANGES["L"], r"\p{N}": _RANGES["N"], r"\s": SPACE}


def pin_classes(pattern: str) -> str:
    """`pattern` with `\\p{L}`, `\\p{N}`, `\\s` and `\\S` spelled as the core's
    ranges: a set of its own outside a set, its ranges inside one (flat sets
    are what both `re` and `regex` read)."""
    out = []
    set_start = None  # where the set being read begins, after `[` or `[^`
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            name = next((n for n in _SETS if pattern.startswith(n, i)), None)
            if name is not None:
                out.append(_SETS[name] if set_start is not None else f"[{_SETS[name]}]")
                i += len(name)
            elif pattern.startswith(r"\S", i) and set_start is None:
                out.append(f"[^{SPACE}]")
                i += 2
            elif pattern.startswith(r"\S", i):
                raise ValueError(r"\S inside a set cannot be pinned; write [^\s...] instead")
            else:
                out.append(pattern[i : i + 2])
                i += 2
            continue
        if set_start is None and pattern[i] == "[":
            set_start = i + (2 if pattern.startswith("[^", i) else 1)
        elif set_start is not None and pattern[i] == "]" and i > set_start:
            set_start = None  # a `]` first in a set is a literal
        out.append(pattern[i])
        i += 1
    return "".join(out)


_GPT2 = re.compile(pin_classes(GPT2_PATTERN))


def pretokenize(text: str) -> list[str]:
    """The pieces of `text`; the pattern matches every character, so they cover it."""
    return _GPT2.findall(text)
