"""RouterOS spellings reduced to one essence, so a converged router plans zero changes.

``10M`` and ``10000000``, ``yes`` and ``true``, ``8`` and ``8s`` and ``00:00:08`` are the same.
"""

from __future__ import annotations

from collections.abc import Callable

from provisioner.rates import RateError, canonical_rate_limit, parse_rate, parse_seconds


def _bool(v: str) -> str:
    low = v.strip().lower()
    if low in ("yes", "true"):
        return "true"
    if low in ("no", "false"):
        return "false"
    return low


def _pair(conv: Callable[[str], int]) -> Callable[[str], str]:
    def norm(v: str) -> str:
        try:
            a, _, b = v.partition("/")
            x = conv(a)
            return f"{x}/{conv(b) if b else x}"
        except (RateError, ValueError):
            return v

    return norm


def _target(v: str) -> str:
    parts = [p if "/" in p else f"{p}/32" for p in v.split(",") if p]
    return ",".join(parts)


def _int(v: str) -> str:
    try:
        return str(int(v))
    except ValueError:
        return v


def _time(v: str) -> str:
    try:
        return str(parse_seconds(v))
    except (RateError, ValueError):
        return v


_NORMALISERS: dict[str, Callable[[str], str]] = {
    "rate-limit": canonical_rate_limit,
    "max-limit": _pair(parse_rate),
    "limit-at": _pair(parse_rate),
    "burst-limit": _pair(parse_rate),
    "burst-threshold": _pair(parse_rate),
    "burst-time": _pair(parse_seconds),
    "priority": _pair(int),
    "disabled": _bool,
    "accept": _bool,
    "use-radius": _bool,
    "accounting": _bool,
    "only-one": _bool,
    "target": _target,
    "ranges": lambda v: ",".join(p.strip() for p in v.split(",")),
    "limit-bytes-total": _int,
    "shared-users": _int,
    "port": _int,
    "authentication-port": _int,
    "accounting-port": _int,
    "timeout": _time,
    "interim-update": _time,
    "service": lambda v: ",".join(sorted(p.strip() for p in v.split(",") if p.strip())),
    "mac-address": lambda v: v.upper(),
}


def to_text(value: object) -> str:
    """librouteros casts replies (``'10'`` → 10, ``'yes'`` → True): turn them back to text."""
    if type(value) is str:  # what the adapter reads: most calls
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# Normalised spellings already seen, per property with a normaliser: a fleet's values
# repeat (every secret's ``disabled``, a profile's rate), so each is parsed once. Bounded:
# the values are the registry's and the routers', not unbounded input, but clear past it.
_SEEN: dict[tuple[str, str], str] = {}
_SEEN_MAX = 100_000


def essence(prop: str, value: object) -> str:
    text = to_text(value)
    norm = _NORMALISERS.get(prop)
    if norm is None:
        return text
    found = _SEEN.get((prop, text))
    if found is None:
        if len(_SEEN) >= _SEEN_MAX:
            _SEEN.clear()
        found = _SEEN[(prop, text)] = norm(text)
    return found


def same(prop: str, a: object, b: object) -> bool:
    # Equal as given is equal in essence (the usual case on a converged router).
    return (a == b and type(a) is type(b)) or essence(prop, a) == essence(prop, b)
