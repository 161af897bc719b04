"""Registry commands: master-package, package, reseller, router, customer."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select

from provisioner import registry, views
from provisioner.cli.app import ACTOR, JSON, app, emit, given, handled, session, warn
from provisioner.models import Customer, MasterPackage, Package, Reseller, Router

Opt = typer.Option

mp = typer.Typer(no_args_is_help=True, help="Master packages: the technical spec.")
pk = typer.Typer(no_args_is_help=True, help="Packages: name, prices and visibility.")
rs = typer.Typer(no_args_is_help=True, help="Resellers and their packages.")
rt = typer.Typer(no_args_is_help=True, help="Routers (NAS).")
cu = typer.Typer(no_args_is_help=True, help="Customers.")
app.add_typer(mp, name="master-package")
app.add_typer(pk, name="package")
app.add_typer(rs, name="reseller")
app.add_typer(rt, name="router")
app.add_typer(cu, name="customer")

MASTER_COLUMNS = [
    "name",
    "customer_type",
    "billing",
    "rate_limit",
    "volume_cap",
    "pool_name",
    "profile_name",
]
PACKAGE_COLUMNS = [
    "name",
    "master_package",
    "customer_price",
    "operator_price",
    "type",
    "billing",
    "visibility",
]


def _master_opts(
    name: str | None, customer_type: str | None, billing: str | None, duration_days: int | None,
    rate_down: str | None, rate_up: str | None, burst_down: str | None, burst_up: str | None,
    burst_threshold_down: str | None, burst_threshold_up: str | None, burst_time: str | None,
    priority: int | None, min_down: str | None, min_up: str | None, volume_cap: str | None,
    pool_name: str | None, pool_ranges: str | None, profile_name: str | None,
    local_address: str | None, shared_users: int | None,
) -> dict[str, object]:  # fmt: skip
    return given(
        name=name, customer_type=customer_type, billing=billing, duration_days=duration_days,
        rate_down=rate_down, rate_up=rate_up, burst_down=burst_down, burst_up=burst_up,
        burst_threshold_down=burst_threshold_down, burst_threshold_up=burst_threshold_up,
        burst_time=burst_time, priority=priority, min_down=min_down, min_up=min_up,
        volume_cap=volume_cap, pool_name=pool_name, pool_ranges=pool_ranges,
        profile_name=profile_name, local_address=local_address, shared_users=shared_users,
    )  # fmt: skip


@mp.command("add")
@handled
def mp_add(
    name: str,
    customer_type: Annotated[str, Opt("--type", help="pppoe | hotspot | static | other")],
    rate_down: Annotated[str, Opt("--down", help="download rate, e.g. 10M")],
    rate_up: Annotated[str, Opt("--up", help="upload rate, e.g. 5M")],
    billing: Annotated[str, Opt(help="daily | monthly")] = "monthly",
    duration_days: Annotated[int, Opt("--days", help="days a daily package lasts")] = 30,
    burst_down: Annotated[str | None, Opt()] = None,
    burst_up: Annotated[str | None, Opt()] = None,
    burst_threshold_down: Annotated[str | None, Opt()] = None,
    burst_threshold_up: Annotated[str | None, Opt()] = None,
    burst_time: Annotated[str | None, Opt(help="seconds")] = None,
    priority: Annotated[int | None, Opt(help="1 (highest) to 8")] = None,
    min_down: Annotated[str | None, Opt(help="guaranteed download")] = None,
    min_up: Annotated[str | None, Opt(help="guaranteed upload")] = None,
    volume_cap: Annotated[str | None, Opt("--cap", help="bytes, or 50G")] = None,
    pool_name: Annotated[str | None, Opt("--pool")] = None,
    pool_ranges: Annotated[str | None, Opt("--ranges", help="10.0.0.2-10.0.0.254 or CIDR")] = None,
    profile_name: Annotated[
        str | None, Opt("--profile", help="PPP/hotspot profile and RADIUS group; default: name")
    ] = None,
    local_address: Annotated[str | None, Opt()] = None,
    shared_users: Annotated[int, Opt(help="simultaneous sessions")] = 1,
) -> None:
    """Add a master package (its RADIUS group is written; routers serving its type sync)."""
    data = _master_opts(
        name,
        customer_type,
        billing,
        duration_days,
        rate_down,
        rate_up,
        burst_down,
        burst_up,
        burst_threshold_down,
        burst_threshold_up,
        burst_time,
        priority,
        min_down,
        min_up,
        volume_cap,
        pool_name,
        pool_ranges,
        profile_name,
        local_address,
        shared_users,
    )
    with session() as s:
        m = registry.create_master_package(s, ACTOR, data)
        emit(views.master(m), False, title=f"master package {m.name} added")


@mp.command("edit")
@handled
def mp_edit(
    ref: str,
    name: Annotated[str | None, Opt()] = None,
    customer_type: Annotated[str | None, Opt("--type")] = None,
    rate_down: Annotated[str | None, Opt("--down")] = None,
    rate_up: Annotated[str | None, Opt("--up")] = None,
    billing: Annotated[str | None, Opt()] = None,
    duration_days: Annotated[int | None, Opt("--days")] = None,
    burst_down: Annotated[str | None, Opt()] = None,
    burst_up: Annotated[str | None, Opt()] = None,
    burst_threshold_down: Annotated[str | None, Opt()] = None,
    burst_threshold_up: Annotated[str | None, Opt()] = None,
    burst_time: Annotated[str | None, Opt()] = None,
    priority: Annotated[int | None, Opt()] = None,
    min_down: Annotated[str | None, Opt()] = None,
    min_up: Annotated[str | None, Opt()] = None,
    volume_cap: Annotated[str | None, Opt("--cap")] = None,
    pool_name: Annotated[str | None, Opt("--pool")] = None,
    pool_ranges: Annotated[str | None, Opt("--ranges")] = None,
    profile_name: Annotated[str | None, Opt("--profile")] = None,
    local_address: Annotated[str | None, Opt()] = None,
    shared_users: Annotated[int | None, Opt()] = None,
) -> None:
    """Change a master package (routers and RADIUS follow)."""
    data = _master_opts(
        name,
        customer_type,
        billing,
        duration_days,
        rate_down,
        rate_up,
        burst_down,
        burst_up,
        burst_threshold_down,
        burst_threshold_up,
        burst_time,
        priority,
        min_down,
        min_up,
        volume_cap,
        pool_name,
        pool_ranges,
        profile_name,
        local_address,
        shared_users,
    )
    with session() as s:
        m = registry.update_master_package(s, ACTOR, ref, data)
        emit(views.master(m), False, title=f"master package {m.name} changed")


@mp.command("list")
@handled
def mp_list(as_json: JSON = False) -> None:
    """List master packages: type, billing, rate limit, cap, pool and profile."""
    with session() as s:
        rows = [
            views.master(m) for m in s.scalars(select(MasterPackage).order_by(MasterPackage.name))
        ]
    emit(rows, as_json, MASTER_COLUMNS)


@mp.command("show")
@handled
def mp_show(ref: str, as_json: JSON = False) -> None:
    """Show one master package (by name or id) with every field."""
    with session() as s:
        emit(views.master(registry.get_by_name(s, MasterPackage, ref)), as_json)


@mp.command("remove")
@handled
def mp_remove(ref: str) -> None:
    """Remove a master package (refused while packages use it)."""
    with session() as s:
        registry.delete_master_package(s, ACTOR, ref)
    typer.echo(f"master package {ref} removed")


# ---- packages --------------------------------------------------------------------------


@pk.command("add")
@handled
def pk_add(
    name: str,
    master_package: Annotated[str, Opt("--master")],
    customer_price: Annotated[str, Opt("--customer-price")],
    operator_price: Annotated[str, Opt("--operator-price")],
    visibility: Annotated[str, Opt(help="public | private")] = "private",
) -> None:
    """Add a package (type and billing come from its master package)."""
    with session() as s:
        p, warnings = registry.create_package(
            s,
            ACTOR,
            {
                "name": name,
                "master_package": master_package,
                "customer_price": customer_price,
                "operator_price": operator_price,
                "visibility": visibility,
            },
        )
        emit(views.package(p), False, title=f"package {p.name} added")
    warn(warnings)


@pk.command("edit")
@handled
def pk_edit(
    ref: str,
    name: Annotated[str | None, Opt()] = None,
    master_package: Annotated[str | None, Opt("--master")] = None,
    customer_price: Annotated[str | None, Opt("--customer-price")] = None,
    operator_price: Annotated[str | None, Opt("--operator-price")] = None,
    visibility: Annotated[str | None, Opt(help="public | private")] = None,
) -> None:
    """Change a package; a new master package re-provisions its customers (RADIUS, routers)."""
    with session() as s:
        p, warnings = registry.update_package(
            s,
            ACTOR,
            ref,
            given(
                name=name,
                master_package=master_package,
                customer_price=customer_price,
                operator_price=operator_price,
                visibility=visibility,
            ),
        )
        emit(views.package(p), False, title=f"package {p.name} changed")
    warn(warnings)


@pk.command("list")
@handled
def pk_list(
    as_json: JSON = False,
    reseller: Annotated[str | None, Opt(help="as this reseller sees them, at its prices")] = None,
) -> None:
    """List packages: master package, prices, type, billing, visibility."""
    with session() as s:
        if reseller:
            r = registry.get_by_name(s, Reseller, reseller)
            rows = [
                views.package(a.package, price=registry.reseller_price(a)) for a in r.assignments
            ]
        else:
            rows = [views.package(p) for p in s.scalars(select(Package).order_by(Package.name))]
    emit(rows, as_json, PACKAGE_COLUMNS)


@pk.command("show")
@handled
def pk_show(ref: str, as_json: JSON = False) -> None:
    """Show one package (by name or id)."""
    with session() as s:
        emit(views.package(registry.get_by_name(s, Package, ref)), as_json)


@pk.command("remove")
@handled
def pk_remove(ref: str) -> None:
    """Remove a package and its reseller assignments (refused while customers use it)."""
    with session() as s:
        registry.delete_package(s, ACTOR, ref)
    typer.echo(f"package {ref} removed")


# ---- resellers -------------------------------------------------------------------------


@rs.command("add")
@handled
def rs_add(name: str, contact: Annotated[str, Opt(help="free text: phone, e-mail")] = "") -> None:
    """Add a reseller (assign it packages with 'reseller assign')."""
    with session() as s:
        r = registry.create_reseller(s, ACTOR, {"name": name, "contact": contact})
        typer.echo(f"reseller {r.name} added")


@rs.command("edit")
@handled
def rs_edit(
    ref: str,
    name: Annotated[str | None, Opt()] = None,
    contact: Annotated[str | None, Opt()] = None,
) -> None:
    """Rename a reseller or change its contact."""
    with session() as s:
        r = registry.update_reseller(s, ACTOR, ref, given(name=name, contact=contact))
        typer.echo(f"reseller {r.name} changed")


@rs.command("list")
@handled
def rs_list(as_json: JSON = False) -> None:
    """List resellers with the packages they may sell."""
    with session() as s:
        rows = [views.reseller(r) for r in s.scalars(select(Reseller).order_by(Reseller.name))]
    if not as_json:
        rows = [{**r, "packages": ", ".join(a["package"] for a in r["packages"])} for r in rows]
    emit(rows, as_json, ["name", "contact", "packages"])


@rs.command("show")
@handled
def rs_show(ref: str, as_json: JSON = False) -> None:
    """Show one reseller with its packages and prices."""
    with session() as s:
        emit(views.reseller(registry.get_by_name(s, Reseller, ref)), as_json)


@rs.command("remove")
@handled
def rs_remove(ref: str) -> None:
    """Remove a reseller (refused while it has customers)."""
    with session() as s:
        registry.delete_reseller(s, ACTOR, ref)
    typer.echo(f"reseller {ref} removed")


@rs.command("assign")
@handled
def rs_assign(
    reseller: str,
    package: str,
    price: Annotated[str | None, Opt(help="this reseller's operator price")] = None,
) -> None:
    """Let a reseller sell a package, optionally at its own operator price."""
    with session() as s:
        a = registry.assign_package(s, ACTOR, reseller, package, price)
        typer.echo(
            f"package {a.package.name} assigned to {a.reseller.name} "
            f"at {registry.reseller_price(a)}"
        )


@rs.command("unassign")
@handled
def rs_unassign(reseller: str, package: str) -> None:
    """Stop a reseller selling a package (its existing customers keep it)."""
    with session() as s:
        registry.unassign_package(s, ACTOR, reseller, package)
    typer.echo(f"package {package} unassigned from {reseller}")


# ---- routers ---------------------------------------------------------------------------

TYPES_HELP = "customer types it serves, comma-separated, of pppoe,hotspot,static"
RELOAD = (
    "FreeRADIUS reads its clients (the nas table) only at start-up: restart it so it "
    "answers {host} with the new secret (docker compose restart freeradius)"
)
MODE_HELP = "radius (customers authenticate via FreeRADIUS) | local (secrets on the router)"
ENABLED_HELP = "a disabled router is left out of drift repair and of diff/sync without names"


@rt.command("add")
@handled
def rt_add(
    name: str,
    host: Annotated[str, Opt(help="IP address (IPv4 or IPv6) of the API and the RADIUS client")],
    username: Annotated[str, Opt(help="API user")],
    radius_secret: Annotated[str, Opt("--radius-secret", help="shared RADIUS/CoA secret")],
    password: Annotated[
        str, Opt(prompt=True, hide_input=True, help="API password (prompted if not given)")
    ] = "",
    api_port: Annotated[int, Opt(help="RouterOS API port: 8728, or 8729 with --tls")] = 8728,
    api_tls: Annotated[
        bool, Opt("--tls/--no-tls", help="API-SSL (then use --api-port 8729)")
    ] = False,
    customer_types: Annotated[str, Opt("--types", help=TYPES_HELP)] = "pppoe,hotspot,static",
    mode: Annotated[str, Opt(help=MODE_HELP)] = "radius",
    coa_port: Annotated[int, Opt(help="CoA/Disconnect port on the router")] = 3799,
) -> None:
    """Register a router: its RADIUS client row now, a sync soon (credentials never printed)."""
    with session() as s:
        r = registry.create_router(
            s,
            ACTOR,
            {
                "name": name,
                "host": host,
                "username": username,
                "password": password,
                "radius_secret": radius_secret,
                "api_port": api_port,
                "api_tls": api_tls,
                "customer_types": customer_types,
                "mode": mode,
                "coa_port": coa_port,
            },
        )
        typer.echo(f"router {r.name} added")
        warn([RELOAD.format(host=r.host)])


@rt.command("edit")
@handled
def rt_edit(
    ref: str,
    name: Annotated[str | None, Opt(help="new name")] = None,
    host: Annotated[str | None, Opt(help="IP address (IPv4 or IPv6)")] = None,
    username: Annotated[str | None, Opt(help="API user")] = None,
    password: Annotated[str | None, Opt(help="API password")] = None,
    radius_secret: Annotated[
        str | None, Opt("--radius-secret", help="shared RADIUS/CoA secret")
    ] = None,
    api_port: Annotated[int | None, Opt(help="RouterOS API port")] = None,
    api_tls: Annotated[bool | None, Opt("--tls/--no-tls", help="API-SSL or plain API")] = None,
    customer_types: Annotated[str | None, Opt("--types", help=TYPES_HELP)] = None,
    mode: Annotated[str | None, Opt(help=MODE_HELP)] = None,
    coa_port: Annotated[int | None, Opt(help="CoA/Disconnect port on the router")] = None,
    enabled: Annotated[bool | None, Opt("--enabled/--disabled", help=ENABLED_HELP)] = None,
) -> None:
    """Change a router (its RADIUS client row follows at once; it is synced soon)."""
    with session() as s:
        r = registry.update_router(
            s,
            ACTOR,
            ref,
            given(
                name=name,
                host=host,
                username=username,
                password=password,
                radius_secret=radius_secret,
                api_port=api_port,
                api_tls=api_tls,
                customer_types=customer_types,
                mode=mode,
                coa_port=coa_port,
                enabled=enabled,
            ),
        )
        typer.echo(f"router {r.name} changed")
        if host is not None or radius_secret is not None:
            warn([RELOAD.format(host=r.host)])


@rt.command("list")
@handled
def rt_list(as_json: JSON = False) -> None:
    """List routers with their last sync: time, status, error."""
    from provisioner.status import router_rows

    with session() as s:
        rows = router_rows(s)
    emit(
        rows,
        as_json,
        [
            "name",
            "host",
            "api_port",
            "customer_types",
            "mode",
            "last_sync",
            "last_status",
            "last_error",
        ],
    )


@rt.command("runs")
@handled
def rt_runs(
    ref: str,
    limit: Annotated[int, Opt(help="at most this many, newest first")] = 20,
    as_json: Annotated[
        bool, Opt("--json", help="print JSON, with the changes each run applied")
    ] = False,
) -> None:
    """A router's sync history, newest first: trigger, outcome, changes, error."""
    from provisioner.status import sync_runs

    with session() as s:
        rows = sync_runs(s, registry.get_by_name(s, Router, ref), limit)
    emit(rows, as_json, ["started_at", "trigger", "status", "planned", "applied", "error"])


@rt.command("show")
@handled
def rt_show(ref: str, as_json: JSON = False) -> None:
    """Show one router (no credentials)."""
    with session() as s:
        emit(views.router(registry.get_by_name(s, Router, ref)), as_json)


@rt.command("remove")
@handled
def rt_remove(ref: str) -> None:
    """Remove a router and its RADIUS client row (refused while it serves customers)."""
    with session() as s:
        registry.delete_router(s, ACTOR, ref)
    typer.echo(f"router {ref} removed")


# ---- customers -------------------------------------------------------------------------

TYPE_HELP = "pppoe | hotspot | static | other"
ROUTER_HELP = "the router (NAS) it connects through; not needed for type other"
PACKAGE_HELP = "its package (activations set it too)"
IP_HELP = "static IPv4 address; static customers get one from the package's pool if not given"
MAC_HELP = "MAC address, e.g. AA:BB:CC:DD:EE:FF (binds a local-mode hotspot user)"
STATUS_HELP = "new | active | expired | suspended; only active customers get service"
EXPIRES_HELP = "when the subscription ends: ISO date/time, e.g. 2025-12-31T23:59 (UTC if no zone)"
CLEAR = '; "" clears it'


@cu.command("add")
@handled
def cu_add(
    username: str,
    password: Annotated[str, Opt(help="the PPPoE/hotspot login password")],
    customer_type: Annotated[str, Opt("--type", help=TYPE_HELP)],
    router: Annotated[str | None, Opt(help=ROUTER_HELP)] = None,
    package: Annotated[str | None, Opt(help=PACKAGE_HELP)] = None,
    reseller: Annotated[str | None, Opt(help="the reseller it belongs to")] = None,
    static_ip: Annotated[str | None, Opt("--ip", help=IP_HELP)] = None,
    mac_address: Annotated[str | None, Opt("--mac", help=MAC_HELP)] = None,
    status: Annotated[str | None, Opt(help=STATUS_HELP + "; default new")] = None,
    expires_at: Annotated[str | None, Opt("--expires", help=EXPIRES_HELP)] = None,
) -> None:
    """Add a customer: RADIUS rows now; a router holding it (local mode, static) syncs soon."""
    with session() as s:
        c = registry.create_customer(
            s,
            ACTOR,
            given(
                username=username,
                password=password,
                customer_type=customer_type,
                router=router,
                package=package,
                reseller=reseller,
                static_ip=static_ip,
                mac_address=mac_address,
                status=status,
                expires_at=expires_at,
            ),
        )
        emit(views.customer(c), False, title=f"customer {c.username} added")


@cu.command("edit")
@handled
def cu_edit(
    ref: str,
    username: Annotated[str | None, Opt(help="new username")] = None,
    password: Annotated[str | None, Opt(help="new password")] = None,
    router: Annotated[str | None, Opt(help=ROUTER_HELP + CLEAR)] = None,
    package: Annotated[str | None, Opt(help=PACKAGE_HELP + CLEAR)] = None,
    reseller: Annotated[str | None, Opt(help="the reseller it belongs to" + CLEAR)] = None,
    static_ip: Annotated[str | None, Opt("--ip", help=IP_HELP + CLEAR)] = None,
    mac_address: Annotated[str | None, Opt("--mac", help=MAC_HELP + CLEAR)] = None,
    status: Annotated[str | None, Opt(help=STATUS_HELP)] = None,
    expires_at: Annotated[str | None, Opt("--expires", help=EXPIRES_HELP + CLEAR)] = None,
) -> None:
    """Change a customer: RADIUS rows now; a router holding it (local mode, static) syncs soon."""
    with session() as s:
        c = registry.update_customer(
            s,
            ACTOR,
            ref,
            given(
                username=username,
                password=password,
                router=router,
                package=package,
                reseller=reseller,
                static_ip=static_ip,
                mac_address=mac_address,
                status=status,
                expires_at=expires_at,
            ),
        )
        emit(views.customer(c), False, title=f"customer {c.username} changed")


@cu.command("list")
@handled
def cu_list(
    as_json: JSON = False,
    reseller: Annotated[str | None, Opt(help="only this reseller's customers")] = None,
) -> None:
    """List customers: type, package, router, reseller, status, expiry, static IP."""
    with session() as s:
        q = select(Customer).order_by(Customer.username)
        if reseller:
            q = q.where(Customer.reseller_id == registry.get_by_name(s, Reseller, reseller).id)
        rows = [views.customer(c) for c in s.scalars(q)]
    emit(
        rows,
        as_json,
        [
            "username",
            "customer_type",
            "package",
            "router",
            "reseller",
            "status",
            "expires_at",
            "static_ip",
        ],
    )


@cu.command("show")
@handled
def cu_show(ref: str, as_json: JSON = False) -> None:
    """Show one customer (by username or id; no password)."""
    with session() as s:
        emit(views.customer(registry.get_by_name(s, Customer, ref, "username")), as_json)


@cu.command("remove")
@handled
def cu_remove(ref: str) -> None:
    """Remove a customer and its RADIUS rows (refused once it has activations: suspend it)."""
    with session() as s:
        registry.delete_customer(s, ACTOR, ref)
    typer.echo(f"customer {ref} removed")
