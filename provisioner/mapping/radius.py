"""Registry snapshots → rows in the stock FreeRADIUS tables (pure).

Ownership is by (table, owner, attribute): this daemon manages the attributes listed in
``MANAGED`` for its own users and groups, and leaves any other row an admin added alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from provisioner.mapping.marker import marker
from provisioner.snapshots import CustomerSpec, MappingOptions, MasterSpec, RouterSpec

GIGAWORD = 2**32

MANAGED: dict[str, frozenset[str]] = {
    "radcheck": frozenset({"Cleartext-Password", "Expiration"}),
    "radreply": frozenset({"Framed-IP-Address", "Delegated-IPv6-Prefix", "Framed-IPv6-Prefix"}),
    "radgroupreply": frozenset(
        {
            "Mikrotik-Rate-Limit",
            "Framed-Pool",
            "Mikrotik-Group",
            "Mikrotik-Total-Limit",
            "Mikrotik-Total-Limit-Gigawords",
            "Acct-Interim-Interval",
        }
    ),
    "radgroupcheck": frozenset({"Simultaneous-Use", "Auth-Type"}),
}
# A throttled customer's reduced rate (fair usage): its own reply row, which wins over its
# group's because the group's rate is ``=`` (added only when the user has none).
MANAGED["radreply"] = MANAGED["radreply"] | {"Mikrotik-Rate-Limit"}


@dataclass(frozen=True, order=True)
class RadiusRow:
    """One row of radcheck/radreply/radgroupcheck/radgroupreply, or radusergroup.

    For radusergroup ``attribute`` holds the group name and ``value`` the priority.
    """

    table: str
    owner: str  # username or groupname
    attribute: str
    op: str
    value: str

    @property
    def key(self) -> str:
        return f"{self.owner}|{self.attribute}"


@dataclass(frozen=True)
class NasRow:
    nasname: str
    shortname: str
    secret: str
    type: str = "other"
    description: str = ""


def expiration(at: datetime) -> str:
    """FreeRADIUS's Expiration format. The daemon and FreeRADIUS are expected to run in UTC."""
    return at.astimezone(UTC).strftime("%b %d %Y %H:%M:%S")


def group_rows(m: MasterSpec, options: MappingOptions = MappingOptions()) -> list[RadiusRow]:
    """A master package's RADIUS group (``profile_name``); its Mikrotik-Group names the
    router profile, which several master packages may share (``MasterSpec.profile``).

    The rate is ``=``, not ``:=``: a user's own Mikrotik-Rate-Limit (a fair usage
    throttle) is kept rather than replaced by the group's.
    """
    g = m.profile_name
    if m.customer_type == "other":
        return []
    rows = [RadiusRow("radgroupreply", g, "Mikrotik-Rate-Limit", "=", m.rate.render())]
    if m.customer_type in ("pppoe", "hotspot"):
        if m.pool_name:
            rows.append(RadiusRow("radgroupreply", g, "Framed-Pool", ":=", m.pool_name))
        rows.append(RadiusRow("radgroupreply", g, "Mikrotik-Group", ":=", m.profile))
        rows.append(RadiusRow("radgroupcheck", g, "Simultaneous-Use", ":=", str(m.shared_users)))
        if options.interim_interval:  # usage of a live session, not only at logout
            rows.append(
                RadiusRow(
                    "radgroupreply", g, "Acct-Interim-Interval", ":=", str(options.interim_interval)
                )
            )
    if m.volume_cap:
        rows.append(
            RadiusRow(
                "radgroupreply", g, "Mikrotik-Total-Limit", ":=", str(m.volume_cap % GIGAWORD)
            )
        )
        if m.volume_cap >= GIGAWORD:
            rows.append(
                RadiusRow(
                    "radgroupreply",
                    g,
                    "Mikrotik-Total-Limit-Gigawords",
                    ":=",
                    str(m.volume_cap // GIGAWORD),
                )
            )
    return sorted(rows)


def expired_group_rows(options: MappingOptions) -> list[RadiusRow]:
    """The group cut-off customers are moved to: every request is rejected."""
    return [RadiusRow("radgroupcheck", options.expired_group, "Auth-Type", ":=", "Reject")]


def customer_rows(
    c: CustomerSpec, m: MasterSpec | None, options: MappingOptions = MappingOptions()
) -> list[RadiusRow]:
    """A customer's radcheck, radreply and radusergroup rows."""
    if c.customer_type == "other":
        return []
    u = c.username
    rows = [RadiusRow("radcheck", u, "Cleartext-Password", ":=", c.password)]
    if c.expires_at is not None:
        rows.append(RadiusRow("radcheck", u, "Expiration", ":=", expiration(c.expires_at)))
    if c.static_ip:
        rows.append(RadiusRow("radreply", u, "Framed-IP-Address", ":=", c.static_ip))
    if c.delegated_prefix and m is not None and m.ipv6_prefix:
        rows.append(RadiusRow("radreply", u, "Delegated-IPv6-Prefix", ":=", c.delegated_prefix))
        if m.framed_ipv6_prefix:
            rows.append(RadiusRow("radreply", u, "Framed-IPv6-Prefix", ":=", c.delegated_prefix))
    if c.cut_off or m is None:
        rows.append(RadiusRow("radusergroup", u, options.expired_group, "", "0"))
    else:
        rows.append(RadiusRow("radusergroup", u, m.profile_name, "", "1"))
        if c.throttled and m.fup_rate is not None:
            rows.append(RadiusRow("radreply", u, "Mikrotik-Rate-Limit", ":=", m.fup_rate.render()))
    return sorted(rows)


def nas_row(r: RouterSpec) -> NasRow:
    """A router as a FreeRADIUS client (``nas`` table, read by ``read_clients = yes``)."""
    return NasRow(
        nasname=r.host,
        shortname=r.name[:32],
        secret=r.radius_secret,
        description=marker("router", r.id),
    )
