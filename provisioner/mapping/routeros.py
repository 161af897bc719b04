"""Registry snapshots → the RouterOS objects a router should carry (pure).

A ``DesiredObject`` names its menu, its key (how it is matched on the router) and the
properties this daemon manages; properties not listed are left as the router has them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from provisioner.mapping.marker import marker
from provisioner.mapping.menus import (
    ADDRESS_LIST,
    HOTSPOT_ACTIVE,
    HOTSPOT_PROFILE,
    HOTSPOT_USER,
    IPV6_POOL,
    MENU_ORDER,
    POOL,
    PPP_AAA,
    PPP_ACTIVE,
    PPP_PROFILE,
    PPP_SECRET,
    QUEUE,
    RADIUS,
    RADIUS_INCOMING,
)
from provisioner.rates import RateLimit, format_rate
from provisioner.snapshots import CustomerSpec, MappingOptions, MasterSpec, RouterSpec


def menus_to_read(
    router: RouterSpec,
    options: MappingOptions,
    masters: Iterable[MasterSpec] = (),
    owned: Collection[str] = (),
) -> list[str]:
    """The menus a sync of this router reads (and may change); others are never touched.

    ``/ipv6/pool`` is read only while a PPPoE package has an IPv6 pool, or while the
    router still holds one of ours (``owned``: menus with objects of ours) to remove: a
    router without IPv6 is never asked about it.
    """
    menus: list[str] = []
    types = router.customer_types
    if types & {"pppoe", "hotspot"}:
        menus.append(POOL)
    if "pppoe" in types:
        if IPV6_POOL in owned or any(m.ipv6_prefix and m.customer_type == "pppoe" for m in masters):
            menus.append(IPV6_POOL)
        menus.append(PPP_PROFILE)
        if router.mode == "local":
            menus += [PPP_SECRET, PPP_ACTIVE]
    if "hotspot" in types:
        menus.append(HOTSPOT_PROFILE)
        if router.mode == "local":
            menus += [HOTSPOT_USER, HOTSPOT_ACTIVE]
    if "static" in types:
        menus.append(QUEUE)
    if options.expired_address_list:
        menus.append(ADDRESS_LIST)
    return menus


@dataclass(frozen=True)
class DesiredObject:
    menu: str
    key: str
    props: dict[str, str] = field(hash=False)


def _pair(a: int | None, b: int | None) -> str:
    return f"{format_rate(a or 0)}/{format_rate(b or 0)}"


def queue_props(rate: RateLimit) -> dict[str, str]:
    """A simple queue's limits; target-side upload/download, like the rate-limit order."""
    t = rate.burst_time or 0
    prio = rate.priority or 8
    return {
        "max-limit": _pair(rate.up, rate.down),
        "limit-at": _pair(rate.min_up, rate.min_down),
        "burst-limit": _pair(rate.burst_up, rate.burst_down),
        "burst-threshold": _pair(rate.threshold_up, rate.threshold_down),
        "burst-time": f"{t}s/{t}s",
        "priority": f"{prio}/{prio}",
    }


def _share(out: dict[tuple[str, str], DesiredObject], obj: DesiredObject) -> None:
    """Put a profile: one that several master packages share is one object, and a
    property they disagree on (each one's rate, which RADIUS gives each customer) is left
    as the router has it."""
    have = out.get((obj.menu, obj.key))
    if have is None:
        out[(obj.menu, obj.key)] = obj
        return
    props = {k: v for k, v in have.props.items() if k == "comment" or obj.props.get(k) == v}
    out[(obj.menu, obj.key)] = DesiredObject(obj.menu, obj.key, props)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def desired_objects(
    router: RouterSpec,
    masters: Iterable[MasterSpec],
    customers: Iterable[CustomerSpec],
    options: MappingOptions = MappingOptions(),
    *,
    ipv6_owned: bool = False,
) -> list[DesiredObject]:
    """Everything this router should carry for the packages and customers it serves.

    While a PPPoE package has IPv6 (or ``ipv6_owned``: an ``/ipv6/pool`` of ours is still
    on the router), a PPP profile without it gets ``remote-ipv6-prefix-pool=none``, so a
    pool taken off a package is not left named by its profile."""
    masters = list(masters)
    ipv6 = ipv6_owned or any(m.ipv6_prefix and m.customer_type == "pppoe" for m in masters)
    by_id = {m.id: m for m in masters}
    out: dict[tuple[str, str], DesiredObject] = {}

    def put(obj: DesiredObject) -> None:
        out.setdefault((obj.menu, obj.key), obj)

    for m in masters:
        if m.customer_type not in ("pppoe", "hotspot") or not router.serves(m.customer_type):
            continue
        if m.pool_name and m.pool_ranges:
            put(
                DesiredObject(
                    POOL,
                    m.pool_name,
                    {"name": m.pool_name, "ranges": m.pool_ranges, "comment": marker("pool", m.id)},
                )
            )
        if m.customer_type == "pppoe" and m.ipv6_pool_name and m.ipv6_prefix:
            put(
                DesiredObject(
                    IPV6_POOL,
                    m.ipv6_pool_name,
                    {
                        "name": m.ipv6_pool_name,
                        "prefix": m.ipv6_prefix,
                        "prefix-length": str(m.ipv6_prefix_length),
                    },
                )
            )
        if m.customer_type == "pppoe":
            props = {
                "name": m.profile,
                "rate-limit": m.rate.render(),
                "only-one": _yes(m.shared_users <= 1),
                "comment": marker("master", m.id),
            }
            if m.pool_name:
                props["remote-address"] = m.pool_name
            if m.local_address:
                props["local-address"] = m.local_address
            if m.ipv6_pool_name and m.ipv6_prefix:
                props["remote-ipv6-prefix-pool"] = m.ipv6_pool_name
            elif ipv6:
                props["remote-ipv6-prefix-pool"] = "none"
            _share(out, DesiredObject(PPP_PROFILE, m.profile, props))
        else:
            _share(
                out,
                DesiredObject(
                    HOTSPOT_PROFILE,
                    m.profile,
                    {
                        "name": m.profile,
                        "rate-limit": m.rate.render(),
                        "address-pool": m.pool_name or "none",
                        "shared-users": str(m.shared_users),
                    },
                ),
            )

    for c in customers:
        if c.router_id != router.id or not router.serves(c.customer_type):
            continue
        cm = by_id.get(c.master_id) if c.master_id is not None else None
        if c.customer_type == "static" and c.static_ip and cm is not None:
            put(
                DesiredObject(
                    QUEUE,
                    c.username,
                    {
                        "name": c.username,
                        "target": f"{c.static_ip}/32",
                        **queue_props(cm.rate),
                        "comment": marker("customer", c.id),
                    },
                )
            )
        if router.mode == "local" and cm is not None:
            if c.customer_type == "pppoe":
                props = {
                    "name": c.username,
                    "password": c.password,
                    "service": "pppoe",
                    "profile": cm.profile,
                    "disabled": _yes(c.cut_off),
                    "comment": marker("customer", c.id),
                }
                if c.static_ip:
                    props["remote-address"] = c.static_ip
                put(DesiredObject(PPP_SECRET, c.username, props))
            elif c.customer_type == "hotspot":
                props = {
                    "name": c.username,
                    "password": c.password,
                    "profile": cm.profile,
                    "limit-bytes-total": str(cm.volume_cap or 0),
                    "disabled": _yes(c.cut_off),
                    "comment": marker("customer", c.id),
                }
                if c.mac_address:
                    props["mac-address"] = c.mac_address
                put(DesiredObject(HOTSPOT_USER, c.username, props))
        # A known address of a cut-off customer joins the list a captive redirect uses.
        if c.cut_off and c.static_ip and options.expired_address_list and c.status != "new":
            obj = DesiredObject(
                ADDRESS_LIST,
                f"{options.expired_address_list}|{c.static_ip}",
                {
                    "list": options.expired_address_list,
                    "address": c.static_ip,
                    "comment": marker("customer", c.id),
                },
            )
            put(obj)
    rank = {m: i for i, m in enumerate(MENU_ORDER)}
    return sorted(out.values(), key=lambda o: (rank[o.menu], o.key))


def bootstrap_objects(
    router: RouterSpec,
    *,
    radius_address: str,
    auth_port: int,
    acct_port: int,
    timeout: str,
    interim: int = 0,
) -> list[DesiredObject]:
    """The router's side of RADIUS: a /radius entry, CoA listener, PPP AAA via RADIUS with
    accounting and (``interim`` seconds) interim updates of live sessions."""
    services = [s for s, t in (("ppp", "pppoe"), ("hotspot", "hotspot")) if router.serves(t)]
    return [
        DesiredObject(
            RADIUS,
            radius_address,
            {
                "address": radius_address,
                "secret": router.radius_secret,
                "service": ",".join(services or ["ppp"]),
                "authentication-port": str(auth_port),
                "accounting-port": str(acct_port),
                "timeout": timeout,
                "comment": marker("router", router.id),
            },
        ),
        DesiredObject(RADIUS_INCOMING, "", {"accept": "yes", "port": str(router.coa_port)}),
        DesiredObject(
            PPP_AAA, "",
            {"use-radius": "yes", "accounting": "yes"}
            | ({"interim-update": f"{interim}s"} if interim else {}),
        ),  # fmt: skip
    ]
