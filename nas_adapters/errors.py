"""The project's own NAS errors.

Every vendor exception (librouteros, pyrad, sockets) is translated into one of these at
the adapter boundary, so the core decides by type alone: a ``TemporaryNasError`` is
retried later with backoff, a ``PermanentNasError`` is reported and stops work on that
NAS until something changes.
"""

from __future__ import annotations


class NasError(Exception):
    """A NAS refused or failed an operation. Carries where and what the device said."""

    def __init__(
        self,
        message: str,
        *,
        nas: str = "",
        menu: str = "",
        key: str = "",
        category: int | None = None,
    ) -> None:
        self.message = message
        self.nas = nas
        self.menu = menu
        self.key = key
        self.category = category
        super().__init__(str(self))

    def __str__(self) -> str:
        where = " ".join(p for p in (self.nas, self.menu, self.key) if p)
        return f"{where}: {self.message}" if where else self.message


class TemporaryNasError(NasError):
    """Unreachable, timed out, connection dropped: the same call may succeed later."""


class PermanentNasError(NasError):
    """The device understood and refused (a RouterOS !trap, a CoA-NAK): retrying won't help."""
