"""What a client may send: the fields of each write, declared once for every face.

Rates, sizes and money are strings ("10M", "50G", "500.00"). The API takes these models as
request bodies, the registry takes its field lists from them (``MASTER_FIELDS`` …), and
the CLI's options follow the same names. The rules live in the registry, so a refusal
reads the same from the API as from the CLI.
That is why unknown fields are let through (``extra="allow"``) rather than refused here:
the service names them (e.g. ``customer_type`` on a package: "is inherited from the
master package"). Routes pass ``model_dump(exclude_unset=True)``: only what the client sent.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    def given(self) -> dict[str, object]:
        """The fields the client sent, and nothing else (``null`` clears a field)."""
        return self.model_dump(exclude_unset=True)


class MasterPackageUpdate(Body):
    """A master package's fields, declared once: the API's body, the registry's field list
    and the CLI's options (``cli.masters``) all come from here."""

    name: str | None = None
    customer_type: str | None = Field(None, description="pppoe | hotspot | static | other")
    billing: str | None = Field(None, description="daily | monthly")
    duration_days: int | None = Field(None, description="days a daily package lasts")
    rate_down: str | None = Field(None, description="download rate, e.g. 10M", examples=["10M"])
    rate_up: str | None = Field(None, description="upload rate, e.g. 5M", examples=["5M"])
    burst_down: str | None = Field(None, description="burst download rate")
    burst_up: str | None = Field(None, description="burst upload rate")
    burst_threshold_down: str | None = Field(None, description="burst threshold, download")
    burst_threshold_up: str | None = Field(None, description="burst threshold, upload")
    burst_time: str | int | None = Field(None, description="burst time, seconds")
    priority: int | None = Field(None, description="1 (highest) to 8")
    min_down: str | None = Field(None, description="guaranteed download")
    min_up: str | None = Field(None, description="guaranteed upload")
    volume_cap: str | int | None = Field(None, description="bytes, or e.g. 50G")
    pool_name: str | None = Field(None, description="IP pool name")
    pool_ranges: str | None = Field(
        None, description="10.0.0.2-10.0.0.254 or CIDR", examples=["10.10.0.2-10.10.0.254"]
    )
    profile_name: str | None = Field(
        None, description="PPP/hotspot profile and RADIUS group; default: name"
    )
    local_address: str | None = Field(None, description="the router's side of PPP sessions")
    shared_users: int | None = Field(None, description="simultaneous sessions")


class MasterPackageCreate(MasterPackageUpdate):
    name: str
    customer_type: str = Field(description="pppoe | hotspot | static | other")
    rate_down: str = Field(examples=["10M"])
    rate_up: str = Field(examples=["5M"])


class PackageUpdate(Body):
    name: str | None = None
    master_package: str | None = None
    customer_price: str | None = Field(None, examples=["500.00"])
    operator_price: str | None = Field(None, examples=["400.00"])
    visibility: str | None = Field(None, description="public | private")


class PackageCreate(PackageUpdate):
    name: str
    master_package: str
    customer_price: str = Field(examples=["500.00"])
    operator_price: str = Field(examples=["400.00"])


class ResellerUpdate(Body):
    name: str | None = None
    contact: str | None = None


class ResellerCreate(ResellerUpdate):
    name: str


class Assignment(BaseModel):
    """Let a reseller sell a package, optionally at its own operator price."""

    model_config = ConfigDict(extra="forbid")

    package: str
    price: str | None = Field(None, description="this reseller's operator price")


class RouterUpdate(Body):
    name: str | None = None
    host: str | None = Field(None, description="IP address (the nas table and CoA need it)")
    api_port: int | None = None
    api_tls: bool | None = None
    username: str | None = None
    password: str | None = Field(None, description="write-only; stored encrypted")
    radius_secret: str | None = Field(None, description="write-only; stored encrypted")
    customer_types: str | list[str] | None = Field(None, examples=["pppoe,hotspot,static"])
    mode: str | None = Field(None, description="radius | local")
    coa_port: int | None = None
    enabled: bool | None = None


class RouterCreate(RouterUpdate):
    name: str
    host: str
    username: str
    radius_secret: str


class CustomerUpdate(Body):
    username: str | None = None
    password: str | None = Field(None, description="write-only")
    customer_type: str | None = Field(None, description="pppoe | hotspot | static | other")
    router: str | None = None
    package: str | None = None
    reseller: str | None = Field(None, description="admins only; a reseller's own customers")
    static_ip: str | None = None
    mac_address: str | None = None
    status: str | None = Field(None, description="new | active | expired | suspended")
    expires_at: str | None = Field(None, description="ISO date/time")


class CustomerCreate(CustomerUpdate):
    username: str
    password: str
    customer_type: str = Field(description="pppoe | hotspot | static | other")


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routers: list[str] = Field(default_factory=list, description="router names; empty: all")
    adopt: bool = Field(False, description="take over unmarked objects with names we want")


class ActivationCreate(BaseModel):
    """Activate, extend or upgrade. The key may also come as an ``Idempotency-Key`` header."""

    customer: str
    package: str
    idempotency_key: str | None = None
    payer: str = Field("auto", description="admin only: admin | reseller | customer | card")
    card_serial: str | None = None
    card_pin: str | None = None


class TopUp(BaseModel):
    account: str = Field(description="reseller:NAME, customer:USERNAME, reseller:ID or customer:ID")
    amount: str
    refund: bool = False


class CardBatch(BaseModel):
    count: int
    value: str
    days: int = 365
    batch: str = "batch"


class CardRedeem(BaseModel):
    serial: str
    pin: str
    customer: str | None = Field(None, description="admin only: whose balance to credit")


def fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


MASTER_FIELDS = fields(MasterPackageUpdate)
PACKAGE_FIELDS = fields(PackageUpdate)
RESELLER_FIELDS = fields(ResellerUpdate)
ROUTER_FIELDS = fields(RouterUpdate)
CUSTOMER_FIELDS = fields(CustomerUpdate)
