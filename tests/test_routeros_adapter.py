"""The RouterOS adapter's own plumbing, below librouteros."""

from __future__ import annotations

import random
import socket
import threading

import pytest
from librouteros.exceptions import ConnectionClosed
from librouteros.protocol import encode_sentence

from nas_adapters.routeros import _ReadAhead


def test_read_ahead_hands_out_exactly_the_bytes_sent_in_any_sizes() -> None:
    a, b = socket.socketpair()
    data = random.Random(7).randbytes(300_000)  # several 64 KiB reads, cut mid-word
    sender = threading.Thread(target=lambda: (a.sendall(data), a.close()))
    sender.start()
    reader = _ReadAhead(b)
    rng = random.Random(8)
    got = bytearray()
    while chunk := reader.recv(rng.choice([1, 2, 3, 4, 5, 200, 70_000])):
        got += chunk
    sender.join(timeout=10)
    assert bytes(got) == data  # and b"" once the peer closed: librouteros's end of stream
    reader.settimeout(1.0)  # anything else is the socket's own
    assert reader.gettimeout() == 1.0
    reader.close()


def test_sentences_read_from_the_buffer_come_out_as_librouteros_encoded_them() -> None:
    """Words of every length form (1 to 3 length bytes), cut across the 64 KiB reads,
    ASCII or not, come out whole; a close mid-sentence is librouteros's ConnectionClosed."""
    rng = random.Random(9)
    lengths = [0, 1, 100, 127, 128, 300, 20_000]
    sentences = [
        ["!re", *(f"=k{i}=" + "v" * rng.choice(lengths) for i in range(5))] for _ in range(40)
    ] + [["!done", "=ret=*1A", ".tag=7"], ["!re", "=comment=Zürich – café"]]
    # Buffers of ASCII (decoded whole) and not (word by word) in turn.
    sentences[20:20] = [["!re", "=name=naïve", "=x=" + "é" * 200]]
    data = b"".join(encode_sentence(*s, encoding="utf-8") for s in sentences)
    a, b = socket.socketpair()
    sender = threading.Thread(target=lambda: (a.sendall(data + b"\x05!don"), a.close()))
    sender.start()
    ahead = _ReadAhead(b)
    assert [ahead.sentence("utf-8") for _ in sentences] == sentences
    with pytest.raises(ConnectionClosed):
        ahead.sentence("utf-8")
    sender.join(timeout=10)
    b.close()
