"""The ownership marker: written by one function, read by one, as a table."""

from __future__ import annotations

import pytest

from provisioner.mapping.marker import marker, parse_marker


@pytest.mark.parametrize(
    ("kind", "id_", "text"),
    [
        ("router", 7, "provisioner:router:7"),
        ("master", 1, "provisioner:master:1"),
        ("customer", 12345, "provisioner:customer:12345"),
        ("pool", 3, "provisioner:pool:3"),
    ],
)
def test_marker_round_trips(kind: str, id_: int, text: str) -> None:
    assert marker(kind, id_) == text
    assert parse_marker(text) == (kind, str(id_))


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("provisioner:", ("", "")),  # ours, but names nothing
        ("provisioner:router", ("", "")),
        ("provisioner:router:", ("router", "")),
        ("provisioner:x:1:2", ("x", "1:2")),
        ("", None),
        ("made by hand", None),
        ("Provisioner:router:1", None),
        (" provisioner:router:1", None),
    ],
)
def test_parse_marker_edges(text: str, parsed: tuple[str, str] | None) -> None:
    assert parse_marker(text) == parsed
