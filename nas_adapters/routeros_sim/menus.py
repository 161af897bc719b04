"""The simulated router's configuration: menu schemas, value rules, and state.

Pure: no sockets, no clock, no threads (the caller holds a lock around a `RouterState`).
Every rule here is one the real router enforces that provisioning code can trip over:
unknown properties, references to missing profiles or pools, duplicate names, malformed
rates and addresses, built-in objects that cannot be removed. Values are stored in the
form RouterOS prints them, so `print` only has to fill in defaults.

Texts of traps follow docs/REFERENCE.md §1 and §3; where the real wording is not known
the choice is marked "unverified" next to it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "MENUS",
    "Menu",
    "Prop",
    "Reply",
    "RouterState",
    "Trap",
    "compile_query",
    "format_id",
    "format_time",
    "parse_id",
    "parse_time_ms",
    "split_command",
]

Row = dict[str, str]


class Trap(Exception):
    """A command failed the way RouterOS fails it: a `!trap` with message and category."""

    def __init__(self, message: str, category: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.category = category


def _bad_value(prop: str) -> Trap:
    return Trap(f"invalid value for argument {prop}", 1)  # unverified wording


def _no_match(prop: str) -> Trap:
    return Trap(f"input does not match any value of {prop}", 1)


NO_SUCH_ITEM = "no such item"
TRUE, FALSE = "true", "false"

# ---------------------------------------------------------------------------------------
# Values. A parser takes (property name, raw input, state) and returns the value as
# RouterOS would print it, or None for "unset". It raises Trap when RouterOS would.
# ---------------------------------------------------------------------------------------

Parser = Callable[[str, str, "RouterState"], "str | None"]


def text(prop: str, value: str, state: RouterState) -> str | None:
    return value


def boolean(prop: str, value: str, state: RouterState) -> str | None:
    v = value.lower()
    if v in ("yes", "true"):
        return TRUE
    if v in ("no", "false"):
        return FALSE
    raise _bad_value(prop)


def enum(*options: str) -> Parser:
    def parse(prop: str, value: str, state: RouterState) -> str | None:
        for option in options:  # return the schema's own string so rows share it
            if value == option:
                return option
        raise _no_match(prop)

    return parse


def integer(lo: int, hi: int, *literals: str) -> Parser:
    def parse(prop: str, value: str, state: RouterState) -> str | None:
        if value == "":
            return None
        for literal in literals:
            if value == literal:
                return literal
        if not re.fullmatch(r"\d+", value):
            raise _bad_value(prop)
        n = int(value)
        if not lo <= n <= hi:
            raise Trap(f"value of {prop} out of range ({lo}..{hi})", 1)  # unverified
        return str(n)

    return parse


def _ipv4(value: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        return None


def ipv4(prop: str, value: str, state: RouterState) -> str | None:
    if value == "":
        return None
    ip = _ipv4(value)
    if ip is None:
        raise _bad_value(prop)
    return str(ip)


def ipv4_list(prop: str, value: str, state: RouterState) -> str | None:
    if value == "":
        return None
    ips = [_ipv4(part) for part in value.split(",")]
    if any(ip is None for ip in ips):
        raise _bad_value(prop)
    return ",".join(str(ip) for ip in ips)


def ref(menu: str, *extra: str) -> Parser:
    """A reference by name to an item of `menu` (or one of the `extra` literals)."""

    def parse(prop: str, value: str, state: RouterState) -> str | None:
        for literal in extra:
            if value == literal:
                return literal
        name = state.table(menu).canonical_name(value)
        if name is None:
            raise _no_match(prop)
        return name

    return parse


def ipv4_or_pool(prop: str, value: str, state: RouterState) -> str | None:
    if value == "":
        return None
    ip = _ipv4(value)
    if ip is not None:
        return str(ip)
    name = state.table("/ip/pool").canonical_name(value)
    if name is None:
        raise _no_match(prop)
    return name


def pool_ranges(prop: str, value: str, state: RouterState) -> str | None:
    """`10.0.0.2-10.0.0.254`, `10.1.0.0/24`, `10.2.0.1`, comma-separated; printed as given."""
    for part in value.split(","):
        part = part.strip()
        if "-" in part:
            lo, _, hi = part.partition("-")
            a, b = _ipv4(lo.strip()), _ipv4(hi.strip())
            if a is None or b is None or a > b:
                raise _bad_value(prop)
        elif "/" in part:
            try:
                ipaddress.IPv4Network(part, strict=False)
            except ValueError:
                raise _bad_value(prop) from None
        elif _ipv4(part) is None:
            raise _bad_value(prop)
    return value


def ipv6_prefix(prop: str, value: str, state: RouterState) -> str | None:
    """`2001:db8:100::/40`, printed in its short form (unverified: whether RouterOS
    refuses host bits or masks them off; masked here)."""
    if "/" not in value:
        raise _bad_value(prop)
    try:
        return str(ipaddress.IPv6Network(value.strip(), strict=False))
    except ValueError:
        raise _bad_value(prop) from None


_RATE = re.compile(r"(\d+)([kKMG]?)")
_RATE_UNIT = {"": 1, "k": 1000, "K": 1000, "M": 1_000_000, "G": 1_000_000_000}


def _rate(value: str) -> int | None:
    m = _RATE.fullmatch(value)
    return int(m[1]) * _RATE_UNIT[m[2]] if m else None


def _pair(value: str, one: Callable[[str], int | None]) -> tuple[int, int] | None:
    """`a/b` or `a` (meaning `a/a`)."""
    parts = value.split("/")
    if len(parts) > 2:
        return None
    first = one(parts[0])
    second = one(parts[-1])
    if first is None or second is None:
        return None
    return first, second


_TIME_UNIT_MS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
_TIME_PART = re.compile(r"(\d+)(ms|w|d|h|m|s)")
_TIME_CLOCK = re.compile(r"(?:(\d+)d\s*)?(\d+):(\d{1,2}):(\d{1,2})(?:\.(\d{1,3}))?")


def parse_time_ms(value: str) -> int | None:
    """RouterOS time input (`30`, `1h30m`, `300ms`, `1d 00:30:00`) in ms, or None if malformed."""
    v = value.strip()
    if re.fullmatch(r"\d+", v):
        return int(v) * 1000
    if m := _TIME_CLOCK.fullmatch(v):
        days, h, mi, s, frac = m.groups()
        ms = int((frac or "0").ljust(3, "0"))
        return ((int(days or 0) * 24 + int(h)) * 60 + int(mi)) * 60_000 + int(s) * 1000 + ms
    if v and re.fullmatch(r"(?:\d+(?:ms|w|d|h|m|s))+", v):
        return sum(int(n) * _TIME_UNIT_MS[u] for n, u in _TIME_PART.findall(v))
    return None


def format_time(ms: int) -> str:
    """How RouterOS 7 prints a duration: `0s`, `300ms`, `8s`, `1h30m`, `1w2d`."""
    if ms == 0:
        return "0s"
    out = []
    for unit in ("w", "d", "h", "m", "s", "ms"):
        n, ms = divmod(ms, _TIME_UNIT_MS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def duration(*literals: str) -> Parser:
    def parse(prop: str, value: str, state: RouterState) -> str | None:
        if value == "":
            return None
        for literal in literals:
            if value == literal:
                return literal
        ms = parse_time_ms(value)
        if ms is None:
            raise _bad_value(prop)
        return format_time(ms)

    return parse


def rate_limit(prop: str, value: str, state: RouterState) -> str | None:
    """Validate the rate-limit grammar (REFERENCE §3); store the text as given."""
    if value == "":
        return None
    tokens = value.split()
    if not 1 <= len(tokens) <= 6:
        raise _bad_value(prop)
    rates = _pair(tokens[0], _rate)
    ok = rates is not None
    for token in tokens[1:3]:
        ok = ok and _pair(token, _rate) is not None
    if len(tokens) > 3:
        ok = ok and _pair(tokens[3], parse_time_ms) is not None
    if len(tokens) > 4:
        ok = ok and re.fullmatch(r"[1-8]", tokens[4]) is not None
    if len(tokens) > 5 and ok:
        minimum = _pair(tokens[5], _rate)
        assert rates is not None
        ok = minimum is not None and all(
            rate == 0 or low <= rate for low, rate in zip(minimum, rates, strict=True)
        )
    if not ok:
        raise _bad_value(prop)
    return value


def rate_pair(prop: str, value: str, state: RouterState) -> str | None:
    """Queue rates: `10M/20M` in, `10000000/20000000` out."""
    pair = _pair(value, _rate)
    if pair is None:
        raise _bad_value(prop)
    return f"{pair[0]}/{pair[1]}"


def time_pair(prop: str, value: str, state: RouterState) -> str | None:
    pair = _pair(value, parse_time_ms)
    if pair is None:
        raise _bad_value(prop)
    return f"{format_time(pair[0])}/{format_time(pair[1])}"


def priority_pair(prop: str, value: str, state: RouterState) -> str | None:
    pair = _pair(value, lambda v: int(v) if re.fullmatch(r"[1-8]", v) else None)
    if pair is None:
        raise _bad_value(prop)
    return f"{pair[0]}/{pair[1]}"


def queue_target(prop: str, value: str, state: RouterState) -> str | None:
    """IPv4 addresses or networks; `10.0.0.5` prints as `10.0.0.5/32`.

    Interface targets are not modelled (unverified: RouterOS accepts interface names).
    """
    try:
        nets = [ipaddress.IPv4Network(part.strip(), strict=False) for part in value.split(",")]
    except ValueError:
        raise _no_match(prop) from None
    return ",".join(str(net) for net in nets)


_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9-]+)*")


def list_address(prop: str, value: str, state: RouterState) -> str | None:
    """Address-list entry: address, network, range or DNS name.

    `10.0.0.5/32` prints as `10.0.0.5` and networks print with host bits cleared
    (both unverified).
    """
    v = value.strip()
    if _ipv4(v) is not None:
        return str(_ipv4(v))
    if "/" in v:
        try:
            net = ipaddress.IPv4Network(v, strict=False)
        except ValueError:
            raise _bad_value(prop) from None
        return str(net.network_address) if net.prefixlen == 32 else str(net)
    if "-" in v and all(_ipv4(p.strip()) for p in v.split("-", 1)):
        return v
    if _HOSTNAME.fullmatch(v) and not re.fullmatch(r"[\d.]+", v):
        return v
    raise _bad_value(prop)


def comma_set(*options: str) -> Parser:
    def parse(prop: str, value: str, state: RouterState) -> str | None:
        if value == "":
            return None
        parts = [p.strip() for p in value.split(",")]
        if any(p not in options for p in parts):
            raise _no_match(prop)
        return ",".join(parts)

    return parse


def mac_address(prop: str, value: str, state: RouterState) -> str | None:
    if value == "":
        return None
    if not re.fullmatch(r"[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}", value):
        raise _bad_value(prop)
    return value.replace("-", ":").upper()


def required_text(prop: str, value: str, state: RouterState) -> str | None:
    return value or None  # empty means "unset", which the required check then traps


# ---------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prop:
    """One property of a menu. `default` is printed when the property was never set;
    a property that is unset with no default is left out of `print`. `readonly` ones
    cannot be given over the API (tests may set them with `add_item`)."""

    name: str
    parse: Parser = text
    default: str | None = None
    required: bool = False
    readonly: bool = False


LIST_VERBS = frozenset({"print", "add", "set", "remove", "unset", "enable", "disable"})
SINGLETON_VERBS = frozenset({"print", "set"})
SESSION_VERBS = frozenset({"print", "remove"})
STATUS_VERBS = frozenset({"print"})


@dataclass(frozen=True)
class Menu:
    """A RouterOS menu: its properties, commands, uniqueness rule and built-in items."""

    path: str
    props: tuple[Prop, ...]
    verbs: frozenset[str] = LIST_VERBS
    singleton: bool = False
    unique: tuple[str, ...] = ()  # properties whose values together must be unique
    duplicate: str = "failure: already have such name"
    builtins: tuple[tuple[int, Row], ...] = ()
    auto_name: str | None = None  # prefix of generated names (`queue` → `queue1`)
    by_name: bool = True  # `.id` may be given as the item's name
    ordered: bool = False  # the order of items matters and `move` changes it
    prop_map: dict[str, Prop] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prop_map", {p.name: p for p in self.props})
        verbs = self.verbs if "disabled" in self.prop_map else self.verbs - {"enable", "disable"}
        verbs = verbs | {"move"} if self.ordered else verbs
        object.__setattr__(self, "verbs", verbs)


def _dynamic() -> Prop:
    return Prop("dynamic", boolean, FALSE, readonly=True)


def _menus() -> dict[str, Menu]:
    pool_ref = ref("/ip/pool", "none")
    menus = [
        Menu(
            "/ip/pool",
            (
                Prop("name", required_text, required=True),
                Prop("ranges", pool_ranges, required=True),
                Prop("next-pool", pool_ref, "none"),
                Prop("comment"),
            ),
            unique=("name",),
        ),
        Menu(
            "/ip/pool/used",
            (
                Prop("pool", readonly=True),
                Prop("address", readonly=True),
                Prop("owner", readonly=True),
                Prop("info", readonly=True),
            ),
            verbs=STATUS_VERBS,
            by_name=False,
        ),
        # The CLI reference lists no `comment` for /ipv6/pool (as for hotspot profiles).
        Menu(
            "/ipv6/pool",
            (
                Prop("name", required_text, required=True),
                Prop("prefix", ipv6_prefix, required=True),
                Prop("prefix-length", integer(1, 128), required=True),
            ),
            unique=("name",),
        ),
        Menu(
            "/ppp/profile",
            (
                Prop("name", required_text, required=True),
                Prop("local-address", ipv4_or_pool),
                Prop("remote-address", ipv4_or_pool),
                Prop("remote-ipv6-prefix-pool", ref("/ipv6/pool", "none"), "none"),
                Prop("rate-limit", rate_limit),
                Prop("only-one", enum("default", "yes", "no"), "default"),
                Prop("address-list", text, ""),
                Prop("dns-server", ipv4_list),
                Prop("change-tcp-mss", enum("default", "yes", "no"), "default"),
                Prop("use-encryption", enum("default", "yes", "no", "required"), "default"),
                Prop("comment"),
                Prop("default", boolean, FALSE, readonly=True),
            ),
            unique=("name",),
            builtins=(
                (0, {"name": "default", "change-tcp-mss": "yes", "default": TRUE}),
                (
                    0xFFFFFFFE,
                    {
                        "name": "default-encryption",
                        "change-tcp-mss": "yes",
                        "use-encryption": "yes",
                        "default": TRUE,
                    },
                ),
            ),
        ),
        Menu(
            "/ppp/secret",
            (
                Prop("name", required_text, required=True),
                Prop("password"),
                Prop("service", enum("any", "pppoe", "pptp", "l2tp", "ovpn", "sstp"), "any"),
                Prop("caller-id"),
                Prop("profile", ref("/ppp/profile"), "default"),
                Prop("local-address", ipv4),
                Prop("remote-address", ipv4),
                Prop("routes"),
                Prop("limit-bytes-in", integer(0, 2**64 - 1)),
                Prop("limit-bytes-out", integer(0, 2**64 - 1)),
                Prop("disabled", boolean, FALSE),
                Prop("comment"),
            ),
            unique=("name",),
            duplicate="failure: secret with the same name already exists",
        ),
        Menu(
            "/ppp/active",
            (
                Prop("name", readonly=True),
                Prop("service", readonly=True),
                Prop("caller-id", readonly=True),
                Prop("address", readonly=True),
                Prop("uptime", readonly=True),
                Prop("encoding", readonly=True),
                Prop("session-id", readonly=True),
                Prop("radius", boolean, FALSE, readonly=True),
            ),
            verbs=SESSION_VERBS,
        ),
        Menu(
            "/ip/hotspot/user/profile",
            (  # no `comment`: RouterOS has none here (REFERENCE §3)
                Prop("name", required_text, required=True),
                Prop("address-pool", pool_ref, "none"),
                Prop("rate-limit", rate_limit),
                Prop("shared-users", integer(1, 2**32 - 1, "unlimited"), "1"),
                Prop("session-timeout", duration("none")),
                Prop("idle-timeout", duration("none"), "none"),
                Prop("keepalive-timeout", duration("none"), "2m"),
                Prop("status-autorefresh", duration("none"), "1m"),
                Prop("address-list"),
                Prop("default", boolean, FALSE, readonly=True),
            ),
            unique=("name",),
            builtins=((0, {"name": "default", "default": TRUE}),),
        ),
        Menu(
            "/ip/hotspot/profile",
            (  # no `comment` either
                Prop("name", required_text, required=True),
                Prop("hotspot-address", ipv4),
                Prop("dns-name"),
                Prop("use-radius", boolean, FALSE),
                Prop(
                    "login-by",
                    comma_set(
                        "mac", "http-chap", "http-pap", "https", "cookie", "trial", "mac-cookie"
                    ),
                    "cookie,http-chap",
                ),
                Prop("default", boolean, FALSE, readonly=True),
            ),
            unique=("name",),
            builtins=((0, {"name": "default", "default": TRUE}),),  # id unverified
        ),
        Menu(
            "/ip/hotspot/user",
            (
                Prop("server", text, "all"),  # hotspot servers are not modelled
                Prop("name", required_text, required=True),
                Prop("password"),
                Prop("profile", ref("/ip/hotspot/user/profile"), "default"),
                Prop("limit-bytes-total", integer(0, 2**64 - 1)),
                Prop("limit-uptime", duration()),
                Prop("address", ipv4),
                Prop("mac-address", mac_address),
                Prop("disabled", boolean, FALSE),
                Prop("comment"),
            ),
            unique=("server", "name"),
            duplicate="failure: already have user with this name for this server",
        ),
        Menu(
            "/ip/hotspot/active",
            (
                Prop("server", readonly=True),
                Prop("user", readonly=True),
                Prop("address", readonly=True),
                Prop("mac-address", readonly=True),
                Prop("login-by", readonly=True),
                Prop("uptime", readonly=True),
                Prop("session-time-left", readonly=True),
                Prop("idle-time", readonly=True),
                Prop("bytes-in", readonly=True),
                Prop("bytes-out", readonly=True),
                Prop("radius", boolean, FALSE, readonly=True),
            ),
            verbs=SESSION_VERBS,
            by_name=False,
        ),
        Menu(
            "/queue/simple",
            (
                Prop("name", required_text, required=True),
                Prop("target", queue_target, required=True),
                Prop("parent", ref("/queue/simple", "none"), "none"),
                Prop("priority", priority_pair, "8/8"),
                Prop("limit-at", rate_pair, "0/0"),
                Prop("max-limit", rate_pair, "0/0"),
                Prop("burst-limit", rate_pair, "0/0"),
                Prop("burst-threshold", rate_pair, "0/0"),
                Prop("burst-time", time_pair, "0s/0s"),
                Prop("disabled", boolean, FALSE),
                Prop("comment"),
                _dynamic(),
            ),
            unique=("name",),
            auto_name="queue",
            ordered=True,  # the first matching queue wins
        ),
        Menu(
            "/ip/firewall/address-list",
            (
                Prop("list", required_text, required=True),
                Prop("address", list_address, required=True),
                Prop("timeout", duration()),
                Prop("disabled", boolean, FALSE),
                Prop("comment"),
                _dynamic(),
            ),
            unique=("list", "address"),
            duplicate="failure: already have such entry",
            by_name=False,
        ),
        Menu(
            "/radius",
            (
                Prop("service", comma_set("ppp", "hotspot", "login", "wireless", "dhcp", "ipsec")),
                Prop("address", ipv4),
                Prop("secret"),
                Prop("authentication-port", integer(1, 65535), "1812"),
                Prop("accounting-port", integer(1, 65535), "1813"),
                Prop("timeout", duration(), "300ms"),
                Prop("src-address", ipv4),
                # RouterOS 7.15+: drop replies without a Message-Authenticator (REFERENCE §5).
                Prop(
                    "require-message-auth",
                    enum("no", "yes-for-request-resp"),
                    "yes-for-request-resp",
                ),
                Prop("disabled", boolean, FALSE),
                Prop("comment"),
            ),
            by_name=False,
            ordered=True,  # servers for a service are asked in list order
        ),
        Menu(
            "/radius/incoming",
            (Prop("accept", boolean, FALSE), Prop("port", integer(1, 65535), "3799")),
            verbs=SINGLETON_VERBS,
            singleton=True,
        ),
        Menu(
            "/ppp/aaa",
            (
                Prop("use-radius", boolean, FALSE),
                Prop("accounting", boolean, TRUE),
                Prop("interim-update", duration(), "0s"),
            ),
            verbs=SINGLETON_VERBS,
            singleton=True,
        ),
        Menu(
            "/system/identity",
            (Prop("name", required_text, "MikroTik", required=True),),
            verbs=SINGLETON_VERBS,
            singleton=True,
        ),
    ]
    return {m.path: m for m in menus}


MENUS: Mapping[str, Menu] = _menus()

# Items refer to each other by name; RouterOS keeps the link when the target is renamed.
REFERENCES: tuple[tuple[str, str, str], ...] = (
    ("/ppp/secret", "profile", "/ppp/profile"),
    ("/ip/hotspot/user", "profile", "/ip/hotspot/user/profile"),
    ("/ppp/profile", "local-address", "/ip/pool"),
    ("/ppp/profile", "remote-address", "/ip/pool"),
    ("/ppp/profile", "remote-ipv6-prefix-pool", "/ipv6/pool"),
    ("/ip/hotspot/user/profile", "address-pool", "/ip/pool"),
    ("/ip/pool", "next-pool", "/ip/pool"),
    ("/queue/simple", "parent", "/queue/simple"),
)

_PREFIXES = frozenset(MENUS) | frozenset(
    "/".join(path.split("/")[:i]) for path in MENUS for i in range(2, path.count("/") + 1)
)


def split_command(word: str) -> tuple[str, str]:
    """`/ppp/secret/print` → (`/ppp/secret`, `print`), checked against the known menus.

    Raises Trap `no such command or directory (<word>)` naming the first unknown part.
    """
    parts = word.split("/")
    if len(parts) < 3 or parts[0] != "":
        raise Trap(f"no such command or directory ({word.strip('/') or word})", 0)
    path, verb = "/".join(parts[:-1]), parts[-1]
    menu = MENUS.get(path)
    if menu is not None:
        if verb in menu.verbs:
            return path, verb
        raise Trap(f"no such command or directory ({verb})", 0)
    for i in range(2, len(parts)):
        if "/".join(parts[:i]) not in _PREFIXES:
            raise Trap(f"no such command or directory ({parts[i - 1]})", 0)
    raise Trap(f"no such command or directory ({verb})", 0)


def format_id(n: int) -> str:
    return f"*{n:X}"


def parse_id(token: str) -> int | None:
    if len(token) > 1 and token[0] == "*":
        try:
            return int(token[1:], 16)
        except ValueError:
            return None
    return None


# ---------------------------------------------------------------------------------------
# Queries (`?name=x`, `?#|`, ...): compiled once per print, evaluated per row.
# ---------------------------------------------------------------------------------------

_BOOLS = {"yes": TRUE, "true": TRUE, "no": FALSE, "false": FALSE}
_INT = re.compile(r"-?\d+")
Step = Callable[[list[bool], Row], None]


def _equal(have: str | None, want: str) -> bool:
    if have is None:
        return want == ""  # unverified: an absent property equals the empty string
    return have == want or (have in _BOOLS and want in _BOOLS and _BOOLS[have] == _BOOLS[want])


def _order(op: str, have: str | None, want: str) -> bool:
    if have is None:
        return False
    if _INT.fullmatch(have) and _INT.fullmatch(want):
        a, b = int(have), int(want)
        return a < b if op == "<" else a > b
    return have < want if op == "<" else have > want


def _test(op: str, name: str, want: str) -> Step:
    """A step pushing the outcome of one test on the row."""
    if op == "has":
        return lambda stack, row: stack.append(name in row)
    if op == "hasnot":
        return lambda stack, row: stack.append(name not in row)
    if op == "=":
        return lambda stack, row: stack.append(_equal(row.get(name), want))
    return lambda stack, row: stack.append(_order(op, row.get(name), want))


def _invalid() -> Trap:
    return Trap("invalid query", 1)  # unverified wording


def _stack_op(ops: str) -> Step:
    """A `?#` word: digits copy (or, at the end, keep only) the value that many below the
    top; `!` negates the top; `&` and `|` combine the top two; `.` duplicates the top
    (after an index it does nothing)."""

    def run(stack: list[bool], row: Row) -> None:
        i = 0
        while i < len(ops):
            ch = ops[i]
            if ch.isdigit():
                j = i
                while j < len(ops) and ops[j].isdigit():
                    j += 1
                index = int(ops[i:j])
                if index >= len(stack):
                    raise _invalid()
                value = stack[-1 - index]
                if j == len(ops):
                    stack[:] = [value]
                else:
                    stack.append(value)
                    if ops[j] == ".":
                        j += 1
                i = j
                continue
            if ch == "!" and stack:
                stack[-1] = not stack[-1]
            elif ch in "&|" and len(stack) >= 2:
                b, a = stack.pop(), stack.pop()
                stack.append((a and b) if ch == "&" else (a or b))
            elif ch == "." and stack:
                stack.append(stack[-1])
            else:
                raise _invalid()
            i += 1

    return run


def compile_query(words: Iterable[str]) -> Callable[[Row], bool]:
    """Build a row filter from query words, with RouterOS's stack semantics.

    Words are evaluated left to right: tests (`?name`, `?-name`, `?name=x`, `?=name=x`,
    `?<name=x`, `?>name=x`) push true/false, `?#…` words operate on the stack. A row
    passes when no false is left. Raises Trap for a malformed word here, or for a stack
    underflow when a row is checked.
    """
    steps: list[Step] = []
    for word in words:
        body = word[1:]
        if body.startswith("#"):
            steps.append(_stack_op(body[1:]))
            continue
        if body[:1] in ("<", ">", "="):
            op, body = body[0], body[1:]
            name, sep, want = body.partition("=")
            if not sep:
                raise _invalid()
        elif body.startswith("-"):
            op, name, want = "hasnot", body[1:], ""
        else:
            name, sep, want = body.partition("=")
            op = "=" if sep else "has"
        if not name:
            raise _invalid()
        steps.append(_test(op, name, want))

    def check(row: Row) -> bool:
        stack: list[bool] = []
        for step in steps:
            step(stack, row)
        return all(stack)

    return check


# ---------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------

PRINT_FLAGS = frozenset({".proplist", "count-only", "detail", "without-paging", "terse", "stats"})


@dataclass
class Reply:
    """What a command answers: rows for `!re`, and `ret` for the `!done`."""

    rows: list[Row] = field(default_factory=list)
    ret: str | None = None


class Table:
    """The items of one menu, with the indexes RouterOS keeps (name, uniqueness)."""

    def __init__(self, menu: Menu) -> None:
        self.menu = menu
        self.rows: dict[int, Row] = {}
        self.next_id = 1
        self.builtin_ids: set[int] = set()
        self.unique: dict[tuple[str, ...], int] = {}
        self.names: dict[str, int] = {}
        self._order: list[int] | None = None
        self._moved: list[int] | None = None  # the order once `move` changed it from id order
        self._auto = 0

    def key(self, row: Row) -> tuple[str, ...] | None:
        if not self.menu.unique:
            return None
        props = self.menu.prop_map
        return tuple(row.get(p, props[p].default or "") for p in self.menu.unique)

    def canonical_name(self, name: str) -> str | None:
        row_id = self.names.get(name)
        return None if row_id is None else self.rows[row_id]["name"]

    def order(self) -> list[int]:
        if self._moved is not None:
            return self._moved
        if self._order is None:
            self._order = sorted(self.rows)
        return self._order

    def insert(self, row_id: int, row: Row) -> None:
        self.rows[row_id] = row
        self._index(row_id, row)
        self._order = None
        if self._moved is not None:
            self._moved.append(row_id)  # a new item goes to the end

    def delete(self, row_id: int) -> None:
        self._unindex(row_id, self.rows.pop(row_id))
        self._order = None
        if self._moved is not None:
            self._moved.remove(row_id)

    def move(self, ids: list[int], before: int | None) -> None:
        """Put `ids`, in that order, just before `before` (at the end when None)."""
        rest = [i for i in self.order() if i not in ids]
        at = len(rest) if before is None else rest.index(before)
        self._moved = rest[:at] + ids + rest[at:]

    def replace(self, row_id: int, row: Row) -> None:
        self._unindex(row_id, self.rows[row_id])
        self.rows[row_id] = row
        self._index(row_id, row)

    def _index(self, row_id: int, row: Row) -> None:
        key = self.key(row)
        if key is not None:
            self.unique[key] = row_id
        if self.menu.by_name and "name" in row:
            self.names[row["name"]] = row_id

    def _unindex(self, row_id: int, row: Row) -> None:
        key = self.key(row)
        if key is not None and self.unique.get(key) == row_id:
            del self.unique[key]
        if "name" in row and self.names.get(row["name"]) == row_id:
            del self.names[row["name"]]

    def resolve(self, token: str) -> int:
        """An `.id` word's item: `*1A`, or the item's name where the menu allows it."""
        row_id = parse_id(token)
        if row_id is None and self.menu.by_name:
            row_id = self.names.get(token)
        if row_id is None or row_id not in self.rows:
            raise Trap(NO_SUCH_ITEM, 0)
        return row_id

    def auto_name(self) -> str:
        prefix = self.menu.auto_name or "item"
        while True:
            self._auto += 1
            name = f"{prefix}{self._auto}"
            if name not in self.names:
                return name

    def projected(self, row_id: int, keys: list[str]) -> Row:
        """Like `printed` but only `keys` (a `.proplist`), in that order."""
        row = self.rows[row_id]
        props = self.menu.prop_map
        out: Row = {}
        for key in keys:
            if key == ".id":
                if not self.menu.singleton:
                    out[key] = format_id(row_id)
                continue
            prop = props.get(key)
            if prop is not None:
                value = row.get(key, prop.default)
                if value is not None:
                    out[key] = value
        return out

    def printed(self, row_id: int) -> Row:
        """The row as `print` shows it: `.id` (not for singletons), values, defaults."""
        row = self.rows[row_id]
        out: Row = {} if self.menu.singleton else {".id": format_id(row_id)}
        for prop in self.menu.props:
            value = row.get(prop.name, prop.default)
            if value is not None:
                out[prop.name] = value
        return out


class RouterState:
    """All menus of one simulated router, and the commands that read and change them.

    Not thread-safe: the owner serialises calls. Every method either completes or raises
    Trap having changed nothing.
    """

    def __init__(self, identity: str = "MikroTik") -> None:
        self.tables: dict[str, Table] = {path: Table(menu) for path, menu in MENUS.items()}
        for table in self.tables.values():
            for row_id, row in table.menu.builtins:
                table.insert(row_id, dict(row))
                table.builtin_ids.add(row_id)
            if table.menu.singleton:
                table.insert(0, {})
        self.tables["/system/identity"].rows[0]["name"] = identity

    def table(self, path: str) -> Table:
        try:
            return self.tables[path]
        except KeyError:
            raise Trap(f"no such command or directory ({path})", 0) from None

    # -- commands -------------------------------------------------------------------

    def run(self, path: str, verb: str, attrs: Mapping[str, str], queries: list[str]) -> Reply:
        """Run one API command (`path` and `verb` as `split_command` returns them)."""
        if verb == "print":
            return self.print(path, attrs, queries)
        if verb == "add":
            return Reply(ret=self.add(path, attrs))
        if verb == "set":
            self.set(path, attrs)
        elif verb == "remove":
            self._check_only(attrs, {".id", "numbers"})
            self.remove(path, _target(attrs))
        elif verb == "unset":
            self.unset(path, attrs)
        elif verb == "move":
            self._check_only(attrs, {".id", "numbers", "destination"})
            self.move(path, _target(attrs), attrs.get("destination"))
        elif verb in ("enable", "disable"):
            targets = _target(attrs)
            self._check_only(attrs, {".id", "numbers"})
            self.set(path, {".id": targets, "disabled": "no" if verb == "enable" else "yes"})
        else:  # pragma: no cover - split_command only lets menu verbs through
            raise Trap(f"no such command or directory ({verb})", 0)
        return Reply()

    def print(self, path: str, attrs: Mapping[str, str], queries: list[str]) -> Reply:
        """Rows in id order, filtered by `queries`, cut to `.proplist` if given."""
        self._check_only(attrs, PRINT_FLAGS)
        table = self.table(path)
        check = compile_query(queries) if queries and not table.menu.singleton else None
        proplist = attrs[".proplist"].split(",") if ".proplist" in attrs else None
        order = table.order()
        if check is None:
            # The common bulk read: project straight from storage, no full rows built.
            if proplist is None:
                rows = [table.printed(row_id) for row_id in order]
            else:
                rows = [table.projected(row_id, proplist) for row_id in order]
        else:
            rows = []
            for row_id in order:
                row = table.printed(row_id)
                if check(row):
                    rows.append(row if proplist is None else _project(row, proplist))
        if "count-only" in attrs:
            return Reply(ret=str(len(rows)))
        return Reply(rows=rows)

    def add(self, path: str, attrs: Mapping[str, str], *, api: bool = True) -> str:
        """Create an item; returns its `.id`. `api=False` (tests) also allows read-only
        properties and menus the API cannot add to."""
        table = self.table(path)
        menu = table.menu
        if menu.singleton:
            raise Trap("no such command or directory (add)", 0)
        values = self._parse(table, attrs, api)
        row = {k: v for k, v in values.items() if v is not None}
        if menu.auto_name and "name" not in row:
            row["name"] = table.auto_name()
        self._check_row(table, row, None)
        row_id = table.next_id
        table.next_id += 1
        table.insert(row_id, row)
        return format_id(row_id)

    def set(self, path: str, attrs: Mapping[str, str], *, api: bool = True) -> None:
        """Change properties of the items named by `.id` (comma list), or of a singleton."""
        table = self.table(path)
        changes = dict(attrs)
        if table.menu.singleton:
            changes.pop(".id", None)
            changes.pop("numbers", None)
            targets = [0]
        else:
            targets = [table.resolve(t) for t in _target(attrs).split(",")]
            changes.pop(".id", None)
            changes.pop("numbers", None)
        values = self._parse(table, changes, api)
        new_rows = []
        seen: set[tuple[str, ...]] = set()
        for row_id in targets:
            old = table.rows[row_id]
            if api:
                self._check_editable(table, row_id)
            row = dict(old)
            for k, v in values.items():
                if v is None:
                    row.pop(k, None)
                else:
                    row[k] = v
            if row_id in table.builtin_ids and row.get("name") != old.get("name"):
                raise Trap("failure: can not rename default profile")  # unverified wording
            self._check_row(table, row, row_id)
            key = table.key(row)
            if key is not None and key in seen:  # several items set to one unique value
                raise Trap(table.menu.duplicate)
            if key is not None:
                seen.add(key)
            new_rows.append((row_id, old, row))
        for row_id, old, row in new_rows:
            table.replace(row_id, row)
            if "name" in old and old["name"] != row.get("name"):
                self._rename_refs(path, old["name"], row["name"])

    def remove(self, path: str, ids: str, *, api: bool = True) -> None:
        """Remove the items named in `ids` (comma list); all or none."""
        table = self.table(path)
        targets = [table.resolve(t) for t in ids.split(",")]
        for row_id in targets:
            if row_id in table.builtin_ids:
                raise Trap("failure: can not remove default profile")  # unverified wording
            if api:
                self._check_editable(table, row_id)
        for row_id in dict.fromkeys(targets):
            table.delete(row_id)

    def move(self, path: str, ids: str, destination: str | None = None) -> None:
        """`move =numbers=*3,*4 =destination=*1`: the items (comma list, in that order) just
        before `destination`, or to the end of the list without one. Moving an item before
        itself changes nothing (unverified, like the traps' wording here)."""
        table = self.table(path)
        targets = list(dict.fromkeys(table.resolve(t) for t in ids.split(",")))
        before = table.resolve(destination) if destination else None
        if before not in targets:
            table.move(targets, before)

    def unset(self, path: str, attrs: Mapping[str, str]) -> None:
        """`unset =.id=… =value-name=prop`: back to the default (or absent)."""
        table = self.table(path)
        self._check_only(attrs, {".id", "numbers", "value-name"})
        name = attrs.get("value-name", "")
        prop = table.menu.prop_map.get(name)
        if prop is None or prop.readonly:
            raise Trap(f"unknown parameter {name}")
        if prop.required:
            raise Trap(f"failure: can not unset {name}", 1)  # unverified wording
        targets = (
            [0] if table.menu.singleton else [table.resolve(t) for t in _target(attrs).split(",")]
        )
        for row_id in targets:
            self._check_editable(table, row_id)
        for row_id in targets:
            row = dict(table.rows[row_id])
            row.pop(name, None)
            table.replace(row_id, row)

    # -- test access ----------------------------------------------------------------

    def items(self, path: str) -> list[Row]:
        """Every row of `path` as `print` shows it."""
        table = self.table(path)
        return [table.printed(row_id) for row_id in table.order()]

    # -- helpers --------------------------------------------------------------------

    @staticmethod
    def _check_only(attrs: Mapping[str, str], allowed: Iterable[str]) -> None:
        allowed = set(allowed)
        for key in attrs:
            if key not in allowed:
                raise Trap(f"unknown parameter {key}")

    def _parse(self, table: Table, attrs: Mapping[str, str], api: bool) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        props = table.menu.prop_map
        for key, raw in attrs.items():
            prop = props.get(key)
            if prop is None or (api and prop.readonly):
                raise Trap(f"unknown parameter {key}")
            values[prop.name] = prop.parse(prop.name, raw, self)
        return values

    def _check_row(self, table: Table, row: Row, row_id: int | None) -> None:
        for prop in table.menu.props:
            if prop.required and not row.get(prop.name, prop.default):
                raise Trap(f"failure: {prop.name} must be set")  # unverified wording
        key = table.key(row)
        if key is not None and table.unique.get(key, row_id) != row_id:
            raise Trap(table.menu.duplicate)

    @staticmethod
    def _check_editable(table: Table, row_id: int) -> None:
        if table.rows[row_id].get("dynamic") == TRUE:
            raise Trap("failure: can not change dynamic entry")  # unverified wording

    def _rename_refs(self, path: str, old: str, new: str) -> None:
        for src, prop, dst in REFERENCES:
            if dst != path:
                continue
            src_table = self.tables[src]
            for row_id in list(src_table.rows):
                row = src_table.rows[row_id]
                if row.get(prop) == old:
                    src_table.replace(row_id, {**row, prop: new})


def _project(row: Row, keys: list[str]) -> Row:
    return {k: row[k] for k in keys if k in row}


def _target(attrs: Mapping[str, str]) -> str:
    target = attrs.get(".id", attrs.get("numbers"))
    if not target:
        raise Trap(NO_SUCH_ITEM, 0)  # unverified: RouterOS may say "missing =.id="
    return target
