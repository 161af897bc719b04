"""What this daemon knows about RouterOS menus, in one place (pure data).

The mapping, the planner, the sync and the RouterOS adapter all read their menu facts
here: the paths, the order to write them in, which properties are ours, how an object is
matched, which menus have no ``comment`` (so no ownership marker) and which are
singletons. The RouterOS simulator keeps its own model of the router on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping

POOL = "/ip/pool"
IPV6_POOL = "/ipv6/pool"
PPP_PROFILE = "/ppp/profile"
PPP_SECRET = "/ppp/secret"
HOTSPOT_PROFILE = "/ip/hotspot/user/profile"
HOTSPOT_USER = "/ip/hotspot/user"
PPP_ACTIVE = "/ppp/active"
HOTSPOT_ACTIVE = "/ip/hotspot/active"
QUEUE = "/queue/simple"
ADDRESS_LIST = "/ip/firewall/address-list"
RADIUS = "/radius"
RADIUS_INCOMING = "/radius/incoming"
PPP_AAA = "/ppp/aaa"
SYSTEM_IDENTITY = "/system/identity"

# Dependency order: a pool before the profile that uses it, a profile before its users.
MENU_ORDER = [
    POOL,
    IPV6_POOL,
    PPP_PROFILE,
    HOTSPOT_PROFILE,
    PPP_SECRET,
    HOTSPOT_USER,
    PPP_ACTIVE,
    HOTSPOT_ACTIVE,
    QUEUE,
    ADDRESS_LIST,
    RADIUS,
    RADIUS_INCOMING,
    PPP_AAA,
]
# The properties this daemon may write, per menu: what a sync reads back to compare.
MANAGED_PROPS: dict[str, list[str]] = {
    POOL: ["ranges"],
    IPV6_POOL: ["prefix", "prefix-length"],
    PPP_PROFILE: [
        "rate-limit",
        "only-one",
        "remote-address",
        "local-address",
        "remote-ipv6-prefix-pool",
    ],
    HOTSPOT_PROFILE: ["rate-limit", "address-pool", "shared-users"],
    PPP_SECRET: ["password", "service", "profile", "disabled", "remote-address"],
    HOTSPOT_USER: ["password", "profile", "limit-bytes-total", "disabled", "mac-address"],
    PPP_ACTIVE: [],
    HOTSPOT_ACTIVE: ["user"],
    QUEUE: [
        "target",
        "max-limit",
        "limit-at",
        "burst-limit",
        "burst-threshold",
        "burst-time",
        "priority",
    ],
    ADDRESS_LIST: ["list", "address"],
    RADIUS: ["address", "secret", "service", "authentication-port", "accounting-port", "timeout"],
    RADIUS_INCOMING: ["accept", "port"],
    PPP_AAA: ["use-radius", "accounting", "interim-update"],
}
# Read on every menu besides the managed properties: identity and ownership evidence.
ALWAYS_READ = (".id", "name", "comment", "dynamic", "default")

# Menus without a ``comment`` property: ownership there rests on the registry record alone.
NO_COMMENT = {HOTSPOT_PROFILE, IPV6_POOL}
# Live sessions of local-mode users, keyed by the user's name: the menu of the user
# each belongs to, and the property holding its name. They are never added or set,
# only removed (which ends the session) when their user is cut off.
SESSIONS = {PPP_ACTIVE: (PPP_SECRET, "name"), HOTSPOT_ACTIVE: (HOTSPOT_USER, "user")}
# Singletons: one row, no .id, set only.
SINGLETONS = {RADIUS_INCOMING, PPP_AAA, SYSTEM_IDENTITY}
# Built-ins that are never ours and never removed.
DEFAULT_NAMES = {"default", "default-encryption"}
# Menus whose objects are known by an address, not a name: a "default" there is no built-in.
ADDRESS_KEYED = {ADDRESS_LIST, RADIUS}


# Properties naming another object by its name: (menu, property, the menu it names).
# RouterOS keeps such a link by ``.id``: after a rename by hand the referrer prints the new
# name. The named object must exist before a referrer naming it is written.
REFERENCES: tuple[tuple[str, str, str], ...] = (
    (PPP_PROFILE, "remote-address", POOL),
    (PPP_PROFILE, "local-address", POOL),
    (PPP_PROFILE, "remote-ipv6-prefix-pool", IPV6_POOL),
    (HOTSPOT_PROFILE, "address-pool", POOL),
    (PPP_SECRET, "profile", PPP_PROFILE),
    (HOTSPOT_USER, "profile", HOTSPOT_PROFILE),
)
# What an admin calls an object of a menu ("its profile 'home' was refused").
NOUN = {
    POOL: "pool",
    IPV6_POOL: "IPv6 pool",
    PPP_PROFILE: "profile",
    HOTSPOT_PROFILE: "profile",
    PPP_SECRET: "user",
    HOTSPOT_USER: "user",
    RADIUS: "RADIUS server",
}
# Ordered lists where our entry must come before a foreign one sharing a value of this
# comma-separated property: RouterOS asks /radius entries for a service in list order, so
# a foreign server first makes every login wait out its timeout.
FIRST_AMONG = {RADIUS: "service"}


def key_of(menu: str, props: Mapping[str, str]) -> str:
    """How an object is matched on the router: its name, or list|address, or address."""
    if menu == ADDRESS_LIST:
        return f"{props.get('list', '')}|{props.get('address', '')}"
    if menu == RADIUS:
        return props.get("address", "")
    if menu == HOTSPOT_ACTIVE:
        return props.get("user", "")
    if menu in SINGLETONS:
        return ""
    return props.get("name", "")
