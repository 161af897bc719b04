"""The ownership marker this daemon writes on what it creates (pure).

A RouterOS ``comment`` or a ``nas`` row's ``description`` reads
``provisioner:<kind>:<registry id>``. ``marker`` writes it and ``parse_marker`` reads
it; nothing else spells the format.
"""

from __future__ import annotations

MARKER = "provisioner"
_PREFIX = f"{MARKER}:"


def marker(kind: str, id_: int) -> str:
    """The marker of the registry object ``kind`` number ``id_`` (``provisioner:master:3``)."""
    return f"{_PREFIX}{kind}:{id_}"


def parse_marker(text: str) -> tuple[str, str] | None:
    """``(kind, id)`` from a marker; ``None`` when ``text`` is not ours.

    Any text starting ``provisioner:`` is ours; when it names no ``kind:`` (a malformed
    marker), the result is ``("", "")``.
    """
    if not text.startswith(_PREFIX):
        return None
    kind, sep, id_ = text[len(_PREFIX) :].partition(":")
    return (kind, id_) if sep else ("", "")
