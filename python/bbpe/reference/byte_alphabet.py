"""GPT-2's reversible map from bytes to printable characters (``bytes_to_unicode``).

Vocabulary files spell tokens in this alphabet (a space byte is ``Ġ``, a
newline ``Ċ``) so that every byte sequence is a printable string.
"""

# Printable Latin-1 bytes stand for themselves; the other 68 are moved, in byte
# order, to U+0100 onwards.
_PRINTABLE = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
_MOVED = [b for b in range(256) if b not in _PRINTABLE]

BYTE_TO_CHAR: dict[int, str] = {b: chr(b) for b in _PRINTABLE}
BYTE_TO_CHAR.update({b: chr(0x100 + n) for n, b in enumerate(_MOVED)})
CHAR_TO_BYTE: dict[str, int] = {c: b for b, c in BYTE_TO_CHAR.items()}


def bytes_to_token_string(data: bytes) -> str:
    return "".join(BYTE_TO_CHAR[b] for b in data)


def token_string_to_bytes(token: str) -> bytes:
    """Raises KeyError for a character outside the alphabet."""
    return bytes(CHAR_TO_BYTE[c] for c in token)
