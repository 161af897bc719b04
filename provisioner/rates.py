"""Rates and the MikroTik rate-limit grammar (pure).

Rates are integers in bits/s. RouterOS orders pairs ``rx/tx`` from the router's side,
which is the customer's ``upload/download``: ``2M/10M`` = 2 Mbit/s up, 10 Mbit/s down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal

_UNITS = {"": 1, "k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000, "G": 1_000_000_000}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMG]?)\s*$")


class RateError(ValueError):
    pass


def parse_rate(text: str | int) -> int:
    """``'512k'`` → 512000, ``'10M'`` → 10000000, ``'1G'``, plain bits/s. Refuses junk."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise RateError(f"rate must not be negative: {text}")
        return text
    m = _RATE.match(str(text))
    if not m:
        raise RateError(
            f"invalid rate {text!r}: expected a number of bits/s with an optional k, M or G "
            "suffix, e.g. 512k, 10M, 1G"
        )
    number, unit = m.groups()
    value = Decimal(number) * _UNITS[unit]  # not float: 1.001M is 1001000 exactly
    if value != value.to_integral_value():
        raise RateError(f"invalid rate {text!r}: not a whole number of bits/s")
    return int(value)


def format_rate(bps: int) -> str:
    """The shortest exact RouterOS spelling: 10000000 → ``10M``, 512000 → ``512k``."""
    if bps == 0:
        return "0"
    for unit, factor in (("G", 1_000_000_000), ("M", 1_000_000), ("k", 1_000)):
        if bps % factor == 0:
            return f"{bps // factor}{unit}"
    return str(bps)


def parse_seconds(text: str | int) -> int:
    """``8``, ``'8s'``, ``'1m'``, ``'00:00:08'`` → seconds."""
    if isinstance(text, int):
        return text
    t = str(text).strip()
    if re.fullmatch(r"\d+:\d{2}:\d{2}", t):
        h, m, s = (int(x) for x in t.split(":"))
        return h * 3600 + m * 60 + s
    total = 0
    parts = re.findall(r"(\d+)([wdhms]?)", t)
    if not parts or "".join(a + b for a, b in parts) != t:
        raise RateError(f"invalid time {text!r}: expected seconds such as 8, 8s or 1m30s")
    mult = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}
    for num, unit in parts:
        total += int(num) * mult[unit]
    return total


@dataclass(frozen=True)
class RateLimit:
    """One rate-limit: pairs are (upload, download), i.e. RouterOS (rx, tx)."""

    up: int
    down: int
    burst_up: int | None = None
    burst_down: int | None = None
    threshold_up: int | None = None
    threshold_down: int | None = None
    burst_time: int | None = None  # seconds, both directions
    priority: int | None = None
    min_up: int | None = None
    min_down: int | None = None

    @property
    def has_burst(self) -> bool:
        return bool(self.burst_up or self.burst_down)

    def render(self) -> str:
        """The canonical ``rx/tx [burst] [threshold] [time] [priority] [min]`` string."""

        def pair(a: int | None, b: int | None) -> str:
            return f"{format_rate(a or 0)}/{format_rate(b or 0)}"

        parts = [pair(self.up, self.down)]
        tail_needed = self.priority is not None or self.min_up or self.min_down
        if self.has_burst or tail_needed:
            t = self.burst_time or 0
            parts += [
                pair(self.burst_up, self.burst_down),
                pair(self.threshold_up, self.threshold_down),
                f"{t}/{t}" if self.has_burst else "0/0",
            ]
        if tail_needed:
            parts.append(str(self.priority if self.priority is not None else 8))
            if self.min_up or self.min_down:
                parts.append(pair(self.min_up, self.min_down))
        return " ".join(parts)


def parse_rate_limit(text: str) -> RateLimit:
    """Parse RouterOS's rate-limit grammar; omitted tx = rx (as RouterOS does)."""
    fields = str(text).split()
    if not fields or len(fields) > 6:
        raise RateError(f"invalid rate-limit {text!r}")

    def pair(s: str, conv=parse_rate) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        a, _, b = s.partition("/")
        x = conv(a)
        return x, (conv(b) if b else x)

    up, down = pair(fields[0])
    kw: dict[str, int | None] = {}
    if len(fields) > 1:
        kw["burst_up"], kw["burst_down"] = pair(fields[1])
    if len(fields) > 2:
        kw["threshold_up"], kw["threshold_down"] = pair(fields[2])
    if len(fields) > 3:
        t_up, t_down = pair(fields[3], parse_seconds)
        kw["burst_time"] = max(t_up, t_down)
    if len(fields) > 4:
        kw["priority"] = int(fields[4])
    if len(fields) > 5:
        kw["min_up"], kw["min_down"] = pair(fields[5])
    rl = RateLimit(up=up, down=down, **kw)
    if not rl.has_burst and rl.burst_time == 0:
        rl = replace(rl, burst_time=None)
    if not rl.has_burst:
        rl = replace(rl, burst_up=None, burst_down=None)
        if not rl.threshold_up and not rl.threshold_down:
            rl = replace(rl, threshold_up=None, threshold_down=None)
    if rl.priority == 8 and not (rl.min_up or rl.min_down):
        rl = replace(rl, priority=None)
    return rl


def canonical_rate_limit(text: str) -> str:
    """Two spellings of the same limit give the same string (``10M`` == ``10000000``)."""
    if not str(text).strip():
        return ""
    try:
        return parse_rate_limit(text).render()
    except (RateError, ValueError):
        return str(text)
