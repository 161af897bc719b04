"""The contract every NAS adapter keeps (one small interface per device kind).

read → (core diffs) → apply: a diff always precedes a change, and ``apply`` does exactly
what the plan says, in its order; a refused change is reported and skipped, a lost
device ends the run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from provisioner.planning.plan import Change, ObservedObject


@dataclass(frozen=True)
class Applied:
    """One change done, or refused by the device (``error``: its message, with menu and
    object), or ``held_back`` unsent (``error``: why: a change it needs was not done);
    ``ros_id`` is the device's id of the object (new for an add)."""

    change: Change
    ros_id: str | None
    error: str | None = None
    held_back: bool = False


class NasAdapter(Protocol):
    name: str

    def read(
        self,
        menus: Mapping[str, Sequence[str]],
        where: Mapping[str, Mapping[str, str]] | None = None,
    ) -> dict[str, list[ObservedObject]]:
        """One print per menu, limited to the given properties; ``.id`` always included.

        ``where`` narrows a menu to rows whose properties equal the given values (e.g. one
        address list, not a 100k-entry blocklist).

        Raises ``TemporaryNasError`` when the device cannot be reached or drops the link,
        ``PermanentNasError`` when it refuses (bad credentials, unknown menu).
        """
        ...

    def apply(self, changes: Sequence[Change]) -> Iterator[Applied]:
        """Apply changes in order, yielding each as soon as the device answered it.

        A change the device refuses (a RouterOS ``!trap``) is yielded with its ``error``
        and the next change is tried: one refused object must not hold up the others.
        A change whose ``needs`` were not done (refused or held back) is never sent: it
        is yielded ``held_back`` with the reason (``Change.held_back``). Several changes
        may be in flight at once, but each is sent once, in order, and only after every
        change it needs was answered. Losing the device stops the run by raising
        ``TemporaryNasError``; what was yielded before it stands, and what was in flight
        is unknown (the next read shows it).
        """
        ...

    def close(self) -> None: ...
