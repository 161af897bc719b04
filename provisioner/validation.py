"""Input rules (pure): every refusal names the field and the reason."""

from __future__ import annotations

import enum
import ipaddress
import re
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from provisioner.errors import ValidationError
from provisioner.rates import RateError, RateLimit, parse_rate, parse_seconds

# Names the daemon writes to RouterOS (profiles, pools, users, queues) and to RADIUS.
# A RouterOS object's name (the API's schema documents it as its pattern).
ROUTEROS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
Range = tuple[int, int]

# The largest numbers the columns hold: BigInteger (rates, caps) and Integer (days, seconds,
# counts; 32 bits on PostgreSQL). A larger value is a field error, never an overflow.
MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1
MAX_SECONDS = MAX_INT
NUL_REASON = "must not contain NUL characters"
MAX_DAYS = 3650  # ten years: a card's life, a package's period (and no date past 9999)
MAX_CARDS = 10_000  # one request, one transaction: a batch, not a flood


def text(field: str, value: Any, max_length: int | None) -> None:
    """A string (or each string of a list) a client sent: no NUL, at most ``max_length``."""
    for item in value if isinstance(value, list | tuple) else [value]:
        if not isinstance(item, str):
            continue
        if "\0" in item:
            raise ValidationError(NUL_REASON, field=field)
        if max_length is not None and len(item) > max_length:
            raise ValidationError(f"must be at most {max_length} characters", field=field)


_REFERENCE = re.compile(r"id:.*", re.IGNORECASE)  # ``refs.id_of``'s syntax, any tail
# Path words of the API (``/customers/me``): a name equal to one could not be addressed.
RESERVED = {"me"}


def name(field: str, value: Any) -> str:
    text = str(value or "").strip()
    if not text:
        raise ValidationError("must not be empty", field=field)
    if text.lower() in RESERVED:
        raise ValidationError(f"{text!r} is reserved", field=field)
    if not ROUTEROS_NAME.fullmatch(text):
        raise ValidationError(
            f"{text!r} is not a valid RouterOS name: use 1-64 letters, digits and . _ @ + - "
            "(starting with a letter or digit)",
            field=field,
        )
    return text


def skeleton(text: str) -> str:
    """What ``text`` looks like (UTS #39's skeleton, for the Latin script these names are
    written in): NFKC, each letter that Unicode lists as confusable with a Latin one
    replaced by it (Cyrillic "о" by "o", Greek "Α" by "A"), case folded. Two names with
    one skeleton are one name to a person reading them."""
    from confusable_homoglyphs import confusables  # its tables load on first use

    out = []
    for c in unicodedata.normalize("NFKC", text):
        if not c.isascii():
            found = confusables.is_confusable(c, greedy=False, preferred_aliases=["latin"])
            glyphs = [h["c"] for h in found[0]["homoglyphs"]] if found else []
            c = next((g for g in glyphs if g.isascii()), c)
        out.append(c)
    return unicodedata.normalize("NFKC", "".join(out)).casefold()


def display_name(field: str, value: Any, *, digits: bool = True) -> str:
    """A name people read (packages, resellers); never written to a router. NFKC: the
    fullwidth "Ｎｏｒｔｈ", the ligature "ﬁ" and "e" + a combining accent are stored as the
    letters they show, so one name is one spelling."""
    text = " ".join(unicodedata.normalize("NFKC", str(value or "")).split())
    if not text:
        raise ValidationError("must not be empty", field=field)
    if text.lower() in RESERVED:
        raise ValidationError(f"{text!r} is reserved", field=field)
    if _REFERENCE.fullmatch(text) or (not digits and text.isdigit()):
        raise ValidationError(
            f"{text!r} reads as a reference (id:N, or the id in reseller:N): choose a name "
            "with a letter in it",
            field=field,
        )
    if len(text) > 64 or not text.isprintable():
        raise ValidationError("must be at most 64 printable characters", field=field)
    return text


def rate(field: str, value: Any, *, required: bool = True) -> int | None:
    if value is None or value == "":
        if required:
            raise ValidationError("is required (e.g. 10M)", field=field)
        return None
    try:
        n = parse_rate(value)
    except RateError as exc:
        raise ValidationError(str(exc), field=field) from exc
    if n > MAX_BIGINT:
        raise ValidationError(f"is too large (at most {MAX_BIGINT} bit/s)", field=field)
    return n


def rate_limit(spec: dict[str, Any]) -> RateLimit:
    """Check a master package's speed fields together and build its RateLimit."""
    down = rate("rate_down", spec.get("rate_down"))
    up = rate("rate_up", spec.get("rate_up"))
    assert down is not None and up is not None
    if down == 0 or up == 0:
        raise ValidationError(
            "must be greater than 0", field="rate_down" if down == 0 else "rate_up"
        )
    b_down = rate("burst_down", spec.get("burst_down"), required=False)
    b_up = rate("burst_up", spec.get("burst_up"), required=False)
    t_down = rate("burst_threshold_down", spec.get("burst_threshold_down"), required=False)
    t_up = rate("burst_threshold_up", spec.get("burst_threshold_up"), required=False)
    b_time_raw = spec.get("burst_time")
    b_time: int | None = None
    if b_time_raw not in (None, ""):
        try:
            b_time = parse_seconds(b_time_raw)
        except RateError as exc:
            raise ValidationError(str(exc), field="burst_time") from exc
        if b_time > MAX_SECONDS:
            raise ValidationError(f"is too large (at most {MAX_SECONDS} s)", field="burst_time")
    if b_down or b_up:
        if not (t_down or t_up):
            raise ValidationError(
                "burst needs a burst threshold (burst_threshold_down/up)", field="burst_down"
            )
        if not b_time:
            raise ValidationError("burst needs a burst time in seconds", field="burst_time")
        for f, b, base in (("burst_down", b_down, down), ("burst_up", b_up, up)):
            if b is not None and b <= base:
                raise ValidationError(f"burst rate must exceed the rate ({base} bit/s)", field=f)
        for f, t, b in (
            ("burst_threshold_down", t_down, b_down),
            ("burst_threshold_up", t_up, b_up),
        ):
            if t is not None and b is not None and t > b:
                raise ValidationError("burst threshold must not exceed the burst rate", field=f)
    elif t_down or t_up or b_time:
        raise ValidationError(
            "threshold and burst time only apply with a burst rate", field="burst_down"
        )
    prio = spec.get("priority")
    if prio not in (None, ""):
        try:
            prio = int(prio)
        except (TypeError, ValueError):
            prio = -1
        if not 1 <= prio <= 8:
            raise ValidationError("must be an integer from 1 (highest) to 8", field="priority")
    else:
        prio = None
    m_down = rate("min_down", spec.get("min_down"), required=False)
    m_up = rate("min_up", spec.get("min_up"), required=False)
    for f, m, base in (("min_down", m_down, down), ("min_up", m_up, up)):
        if m is not None and m > base:
            raise ValidationError(
                f"guaranteed minimum must not exceed the rate ({base} bit/s)", field=f
            )
    return RateLimit(
        up=up,
        down=down,
        burst_up=b_up,
        burst_down=b_down,
        threshold_up=t_up,
        threshold_down=t_down,
        burst_time=b_time if (b_down or b_up) else None,
        priority=prio,
        min_up=m_up,
        min_down=m_down,
    )


def ranges(field: str, value: Any) -> list[Range]:
    """``10.0.0.2-10.0.0.254``, ``10.1.0.0/24``, a single address, or a comma list of them."""
    text = str(value or "").strip()
    if not text:
        raise ValidationError("must not be empty", field=field)
    out: list[Range] = []
    for part in (p.strip() for p in text.split(",")):
        try:
            if "-" in part:
                a, b = (ipaddress.IPv4Address(x.strip()) for x in part.split("-", 1))
                if int(a) > int(b):
                    raise ValidationError(f"range {part!r} ends before it starts", field=field)
                out.append((int(a), int(b)))
            elif "/" in part:
                net = ipaddress.IPv4Network(part, strict=False)
                hosts = (int(net.network_address) + 1, int(net.broadcast_address) - 1)
                out.append(hosts if net.prefixlen < 31 else (int(net[0]), int(net[-1])))
            else:
                a = ipaddress.IPv4Address(part)
                out.append((int(a), int(a)))
        except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(
                f"{part!r} is not an IPv4 range, network or address "
                "(e.g. 10.0.0.2-10.0.0.254 or 10.0.0.0/24)",
                field=field,
            ) from exc
    return sorted(out)


def overlap(a: list[Range], b: list[Range]) -> bool:
    return any(x0 <= y1 and y0 <= x1 for x0, x1 in a for y0, y1 in b)


def addresses(rs: list[Range]) -> int:
    return sum(b - a + 1 for a, b in rs)


def ipv4(field: str, value: Any) -> str:
    try:
        return str(ipaddress.IPv4Address(str(value).strip()))
    except ipaddress.AddressValueError as exc:
        raise ValidationError(f"{value!r} is not an IPv4 address", field=field) from exc


def host_address(field: str, value: Any) -> str:
    """An IPv4 address a customer can be given: not 0.0.0.0, loopback, multicast or
    reserved space."""
    ip = ipaddress.IPv4Address(ipv4(field, value))
    if ip.is_unspecified or ip.is_loopback or ip.is_multicast or ip.is_reserved:
        raise ValidationError(f"{ip} cannot be a customer's address", field=field)
    return str(ip)


_MAC = re.compile(r"[0-9A-F]{12}")


def mac(field: str, value: Any) -> str:
    """A MAC address as RouterOS prints it (AA:BB:CC:DD:EE:FF), from the usual spellings
    (colons, dashes, Cisco dots or none)."""
    digits = re.sub(r"[:.\-]", "", str(value).strip()).upper()
    if not _MAC.fullmatch(digits):
        raise ValidationError(
            f"{value!r} is not a MAC address (like AA:BB:CC:DD:EE:FF)", field=field
        )
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


# Money as people write it on an invoice, ASCII only: "500", "500.5", "500.00". Not
# "1_000", "1E2", ".5", "+5", fullwidth or Arabic-Indic digits (Python's Decimal takes
# them all, and an operator would not see what was stored).
_MONEY = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def price(field: str, value: Any) -> Decimal:
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, str) and not _MONEY.fullmatch(value.strip()):
        raise ValidationError(
            f"{value!r} is not an amount: plain digits, with a point before the decimals",
            field=field,
        )
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError(f"{value!r} is not a number", field=field) from exc
    if not d.is_finite():
        raise ValidationError("must be a finite number", field=field)
    if d < 0:
        raise ValidationError("must not be negative", field=field)
    d = abs(d)  # "-0" is 0.00, never shown as -0.00
    # Before quantizing: cents of a huge number exceed decimal's precision (InvalidOperation).
    if d >= Decimal("10000000000"):
        raise ValidationError("is too large", field=field)
    if d != d.quantize(Decimal("0.01")):
        raise ValidationError("has more than 2 decimal places", field=field)
    return d.quantize(Decimal("0.01"))


def positive_int(field: str, value: Any, *, minimum: int = 1, maximum: int = MAX_INT) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(f"{value!r} is not a whole number", field=field) from exc
    if n < minimum:
        raise ValidationError(f"must be at least {minimum}", field=field)
    if n > maximum:
        raise ValidationError(f"must be at most {maximum}", field=field)
    return n


LAST_YEAR = 9000  # a date/time after it is refused: a period added to it must still fit


def moment(field: str, value: Any) -> datetime:
    """An ISO date/time (UTC if it names no zone) that is one in UTC too, before
    ``LAST_YEAR``: 9999-12-31T23:00-05:00 is past the last date Python and the database
    hold, and so is anything a billing period is then added to."""
    if isinstance(value, datetime):
        d = value
    else:
        try:
            d = datetime.fromisoformat(str(value).strip())
        except ValueError as exc:
            raise ValidationError(f"{value!r} is not an ISO date/time", field=field) from exc
    try:
        d = d.astimezone(UTC) if d.tzinfo else d.replace(tzinfo=UTC)
    except OverflowError as exc:
        raise ValidationError("is out of range", field=field) from exc
    if d.year >= LAST_YEAR:
        raise ValidationError(f"must be before the year {LAST_YEAR}", field=field)
    return d


def choice(field: str, value: Any, allowed: type[enum.StrEnum]) -> Any:
    """One of an enum's values (checked before anything is looked up)."""
    try:
        return allowed(value)
    except ValueError as exc:
        raise ValidationError(
            f"must be one of {', '.join(a.value for a in allowed)}", field=field
        ) from exc


def volume(field: str, value: Any) -> int | None:
    """A cap in bytes: plain bytes or with k/M/G/T (powers of 1024, as RouterOS shows them)."""
    if value in (None, "", 0, "0"):
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgGtT]?)i?[bB]?\s*", str(value))
    if not m:
        raise ValidationError(f"{value!r} is not a volume (e.g. 50G or 53687091200)", field=field)
    n, unit = int(m.group(1)), m.group(2).upper()
    n *= {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}[unit]
    if n > MAX_BIGINT:
        raise ValidationError(f"is too large (at most {MAX_BIGINT} bytes)", field=field)
    return n


def ipv6_prefix(field: str, value: Any) -> ipaddress.IPv6Network:
    """An IPv6 network written as ``prefix/length`` with no host bits set: a typo such as
    ``2001:db8:100::1/40`` is refused, naming the network that was probably meant."""
    text = str(value or "").strip()
    if "/" not in text:
        raise ValidationError(
            f"{text!r} is not an IPv6 prefix (e.g. 2001:db8:100::/40)", field=field
        )
    try:
        return ipaddress.IPv6Network(text)
    except ValueError as exc:
        try:
            net = ipaddress.IPv6Network(text, strict=False)
        except ValueError:
            raise ValidationError(
                f"{text!r} is not an IPv6 prefix (e.g. 2001:db8:100::/40)", field=field
            ) from exc
        raise ValidationError(
            f"{text!r} has host bits set; the network is {net}", field=field
        ) from exc


def flag(field: str, value: Any) -> bool:
    """A yes/no: a JSON boolean, or yes/no, true/false, 1/0 as the CLI passes it."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("yes", "true", "1", "on"):
        return True
    if text in ("no", "false", "0", "off", ""):
        return False
    raise ValidationError(f"{value!r} is not yes or no", field=field)
