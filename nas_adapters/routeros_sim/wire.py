"""RouterOS API framing: word lengths, sentences, and a sentence reader.

The simulator must put on the wire exactly what a router does, because librouteros
rejects anything else. This module knows only bytes and words; it has no idea what a
command means.

Words travel as bytes. They are decoded as UTF-8 with ``surrogateescape`` so any byte
sequence a client sends (ASCII, UTF-8, Latin-1...) comes back out byte-for-byte when the
same word is encoded again.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

__all__ = [
    "WireError",
    "SentenceDecoder",
    "decode_length",
    "decode_word",
    "encode_length",
    "encode_sentence",
    "encode_word",
    "read_sentence",
]

_CODEC = "utf-8"
_ERRORS = "surrogateescape"
# A sentence bigger than this is not something a provisioning client sends; refusing it
# keeps a broken or hostile peer from growing our buffer without bound.
MAX_WORD = 16 * 1024 * 1024


class WireError(ValueError):
    """The byte stream is not valid RouterOS API framing."""


def encode_length(length: int) -> bytes:
    """Encode a word length in the 1–4 byte forms RouterOS and librouteros use.

    Raises WireError for negative lengths and lengths of 0x10000000 or more (the 5-byte
    form exists on the wire, but nothing we send needs it and librouteros cannot read it).
    """
    if length < 0:
        raise WireError(f"negative length {length}")
    if length < 0x80:
        return bytes((length,))
    if length < 0x4000:
        return (length | 0x8000).to_bytes(2, "big")
    if length < 0x200000:
        return (length | 0xC00000).to_bytes(3, "big")
    if length < 0x10000000:
        return (length | 0xE0000000).to_bytes(4, "big")
    raise WireError(f"length {length} needs the 5-byte form, which is not sent")


def _length_size(first: int) -> int:
    """How many bytes (including `first`) the length prefix starting with `first` takes."""
    if first < 0x80:
        return 1
    if first < 0xC0:
        return 2
    if first < 0xE0:
        return 3
    if first < 0xF0:
        return 4
    if first < 0xF8:
        return 5
    raise WireError(f"reserved control byte 0x{first:02x}")


def decode_length(data: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int] | None:
    """Decode the length prefix at `pos`.

    Returns ``(length, position after the prefix)``, or None when `data` ends before the
    prefix does. Understands all five forms, including ``0xF0`` + 4 bytes.
    Raises WireError on a reserved control byte (0xF8–0xFF).
    """
    if pos >= len(data):
        return None
    first = data[pos]
    size = _length_size(first)
    end = pos + size
    if end > len(data):
        return None
    if size == 1:
        return first, end
    if size == 5:
        return int.from_bytes(data[pos + 1 : end], "big"), end
    masks = {2: 0x8000, 3: 0xC00000, 4: 0xE0000000}
    return int.from_bytes(data[pos:end], "big") ^ masks[size], end


def encode_word(word: str) -> bytes:
    """Encode one word: length prefix then the word's bytes."""
    raw = word.encode(_CODEC, _ERRORS)
    n = len(raw)
    if n < 0x80:
        return bytes((n,)) + raw
    return encode_length(n) + raw


def decode_word(raw: bytes | bytearray | memoryview) -> str:
    """Turn a word's bytes into text, reversibly (see the module docstring)."""
    return bytes(raw).decode(_CODEC, _ERRORS)


def encode_sentence(words: Iterable[str]) -> bytes:
    """Encode words followed by the empty word that ends a sentence."""
    parts = [encode_word(w) for w in words]
    parts.append(b"\x00")
    return b"".join(parts)


class SentenceDecoder:
    """Incremental decoder: feed it bytes as they arrive, get back whole sentences.

    A sentence is returned as a list of words (the terminating empty word dropped).
    Empty sentences (a lone 0x00) are returned as empty lists; RouterOS ignores them and so
    should the caller.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._words: list[str] = []

    def feed(self, data: bytes) -> list[list[str]]:
        """Add bytes; return every sentence now complete, in order.

        Raises WireError on a reserved control byte or an oversized word.
        """
        buf = self._buf
        buf += data
        out: list[list[str]] = []
        pos = 0
        while True:
            got = decode_length(buf, pos)
            if got is None:
                break
            length, start = got
            if length > MAX_WORD:
                raise WireError(f"word of {length} bytes is too long")
            end = start + length
            if end > len(buf):
                break
            if length == 0:
                out.append(self._words)
                self._words = []
            else:
                self._words.append(decode_word(buf[start:end]))
            pos = end
        del buf[:pos]
        return out


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-sentence")
        data += chunk
    return bytes(data)


def read_sentence(sock: socket.socket) -> list[str]:
    """Read one sentence from a blocking socket (a raw client for tests and tools).

    Raises ConnectionError if the peer closes the connection before the sentence ends,
    WireError on bad framing.
    """
    words: list[str] = []
    while True:
        prefix = _recv_exact(sock, 1)
        prefix += _recv_exact(sock, _length_size(prefix[0]) - 1)
        got = decode_length(prefix)
        assert got is not None  # the whole prefix was read above
        length = got[0]
        if length == 0:
            return words
        if length > MAX_WORD:
            raise WireError(f"word of {length} bytes is too long")
        words.append(decode_word(_recv_exact(sock, length)))
