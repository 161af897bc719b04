"""The RouterOS adapter's own plumbing, below librouteros."""

from __future__ import annotations

import random
import socket
import threading

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
