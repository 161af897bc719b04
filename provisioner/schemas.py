"""What a client may send: the fields of each write, declared once for every face.

Rates, sizes and money are strings ("10M", "50G", "500.00"). The API takes these models as
request bodies, the registry takes its field lists from them (``MASTER_FIELDS`` …), and
the CLI's options follow the same names. The rules live in the registry, so a refusal
reads the same from the API as from the CLI.
That is why unknown fields are let through (``extra="allow"``) rather than refused here:
the service names them (e.g. ``customer_type`` on a package: "is inherited from the
master package"). Routes pass ``model_dump(exclude_unset=True)``: only what the client sent.

What is checked here is only what no rule needs a database for: every string has a
maximum length (the column's, or a sane bound for what is stored encrypted) and no NUL
character, every number a range. ``MAX_LENGTH`` gives the registry the same lengths, so
the CLI and the web panels are held to them too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from provisioner.errors import ValidationError
from provisioner.validation import (
    MAX_BIGINT,
    MAX_CARDS,
    MAX_DAYS,
    MAX_SECONDS,
    NUL_REASON,
    ROUTEROS_NAME,
    moment,
)

# Lengths, from the columns in ``models`` (names are String(64), a contact String(200)).
NAME = 64  # a name, or a reference to a row: its name or id:N
ACCOUNT = 80  # reseller:NAME / customer:USERNAME
SECRET = 128  # passwords and secrets: stored encrypted in a String(1024)
CONTACT = 200
AMOUNT = 32  # a rate, a volume, a time, a price: "10M", "50G", "1m30s", "500.00"
ADDRESS = 45  # an IP address
PREFIX = 49  # an IPv6 prefix: 2001:db8:100::/40
HOST = 255
RANGES = 512
MAC = 32  # AA:BB:CC:DD:EE:FF and the other usual spellings
DATETIME = 64
KEY = 128  # an idempotency key
CARD = 32  # a card's serial or PIN


def _no_nul(value: str) -> str:
    # PostgreSQL refuses NUL in text (a 500) and SQLite stores it: neither is a name.
    if "\0" in value:
        raise PydanticCustomError("string_nul", NUL_REASON)
    return value


def _moment(value: str) -> str:
    if not value.strip():
        return value  # clears the field
    try:
        moment("", value)
    except ValidationError as exc:
        raise PydanticCustomError("datetime_range", exc.reason) from None
    return value


def text(max_length: int, min_length: int | None = None) -> Any:
    """A string of at most ``max_length`` characters without NUL: every string a client
    sends (bodies, paths, query strings, headers) is one of these."""
    bounds = StringConstraints(max_length=max_length, min_length=min_length)
    return Annotated[str, bounds, AfterValidator(_no_nul)]


def choice(*values: str) -> Any:
    """One of ``values``, exactly: documented as an enum in the OpenAPI schema, and
    refused in the registry's own words ("must be one of a, b"), so the API, the panels
    and the CSV import say what the CLI says."""
    reason = f"must be one of {', '.join(values)}"

    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValueError:  # pydantic's ValidationError: not one of them
            raise PydanticCustomError("enum", reason) from None

    return Annotated[Literal[values], WrapValidator(check)]  # type: ignore[valid-type]


# The choices, as the registry's enums (``models``) spell them.
CustomerTypeIn = choice("pppoe", "hotspot", "static", "other")
RouterCustomerType = choice("pppoe", "hotspot", "static")
BillingIn = choice("daily", "monthly")
VisibilityIn = choice("public", "private")
OperatorBillingIn = choice("prepaid", "postpaid")
RouterModeIn = choice("radius", "local")
CustomerStatusIn = choice("new", "active", "expired", "suspended")
ActivationStatus = choice("pending", "applied", "failed")
InvoiceStatus = choice("open", "paid", "void")
Role = choice("admin", "reseller", "customer")
Payer = choice("auto", "admin", "reseller", "customer", "card")


Name = text(NAME)
# The name of a router, a master package (its profile's) or a customer (its login), as
# RouterOS takes it (``validation.name``; spaces around it are dropped): documented here,
# refused by the registry in its own words.
RosName = Annotated[
    text(NAME),
    WithJsonSchema(
        {"type": "string", "maxLength": NAME, "pattern": rf"^\s*{ROUTEROS_NAME.pattern}\s*$"}
    ),
]
Ref = text(NAME)
Amount = text(AMOUNT)
Secret = text(SECRET)
Contact = text(CONTACT)
Address = text(ADDRESS)
Prefix = text(PREFIX)
Host = text(HOST)
Ranges = text(RANGES)
Mac = text(MAC)
DateTime = Annotated[text(DATETIME), AfterValidator(_moment)]  # ISO, before LAST_YEAR
Key = text(KEY)
Card = text(CARD)
AccountRef = text(ACCOUNT)
Seconds = Annotated[int, Field(ge=0, le=MAX_SECONDS)]
Bytes = Annotated[int, Field(ge=0, le=MAX_BIGINT)]


class Body(BaseModel):
    """A registry write's body: a field it does not have is refused (by the registry, in
    its words), as the schema says (``additionalProperties: false``)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})

    def given(self) -> dict[str, object]:
        """The fields the client sent, and nothing else (``null`` clears a field)."""
        return self.model_dump(exclude_unset=True)


class MasterPackageUpdate(Body):
    """A master package's fields, declared once: the API's body, the registry's field list
    and the CLI's options (``cli.masters``) all come from here."""

    name: RosName | None = None
    customer_type: CustomerTypeIn | None = None
    billing: BillingIn | None = None
    duration_days: int | None = Field(
        None, ge=1, le=MAX_DAYS, description="days a daily package lasts"
    )
    rate_down: Amount | None = Field(None, description="download rate, e.g. 10M", examples=["10M"])
    rate_up: Amount | None = Field(None, description="upload rate, e.g. 5M", examples=["5M"])
    burst_down: Amount | None = Field(None, description="burst download rate")
    burst_up: Amount | None = Field(None, description="burst upload rate")
    burst_threshold_down: Amount | None = Field(None, description="burst threshold, download")
    burst_threshold_up: Amount | None = Field(None, description="burst threshold, upload")
    burst_time: Amount | Seconds | None = Field(None, description="burst time, seconds")
    priority: int | None = Field(None, ge=1, le=8, description="1 (highest) to 8")
    min_down: Amount | None = Field(None, description="guaranteed download")
    min_up: Amount | None = Field(None, description="guaranteed upload")
    volume_cap: Amount | Bytes | None = Field(None, description="bytes, or e.g. 50G")
    fup_threshold: Amount | Bytes | None = Field(
        None, description="fair usage: bytes per billing cycle at full rate, e.g. 100G"
    )
    fup_down: Amount | None = Field(None, description="fair usage: download rate past it")
    fup_up: Amount | None = Field(None, description="fair usage: upload rate past it")
    pool_name: Name | None = Field(None, description="IP pool name")
    pool_ranges: Ranges | None = Field(
        None, description="10.0.0.2-10.0.0.254 or CIDR", examples=["10.10.0.2-10.10.0.254"]
    )
    profile_name: Name | None = Field(
        None, description="RADIUS group (and router profile unless router_profile); default: name"
    )
    router_profile: Name | None = Field(
        None, description="a PPP/hotspot profile on the router shared by several master packages"
    )
    local_address: Address | None = Field(None, description="the router's side of PPP sessions")
    shared_users: int | None = Field(None, ge=1, le=1000, description="simultaneous sessions")
    ipv6_pool_name: Name | None = Field(None, description="IPv6 pool name (delegated prefixes)")
    ipv6_prefix: Prefix | None = Field(
        None, description="the IPv6 pool, e.g. 2001:db8:100::/40", examples=["2001:db8:100::/40"]
    )
    ipv6_prefix_length: int | None = Field(
        None, ge=1, le=64, description="each customer's prefix length, e.g. 56", examples=[56]
    )
    framed_ipv6_prefix: StrictBool | None = Field(
        None, description="also send the prefix as Framed-IPv6-Prefix"
    )


class MasterPackageCreate(MasterPackageUpdate):
    name: RosName
    customer_type: CustomerTypeIn
    rate_down: Amount = Field(examples=["10M"])
    rate_up: Amount = Field(examples=["5M"])


class PackageUpdate(Body):
    name: Name | None = None
    master_package: Ref | None = None
    customer_price: Amount | None = Field(None, examples=["500.00"])
    operator_price: Amount | None = Field(None, examples=["400.00"])
    visibility: VisibilityIn | None = None


class PackageCreate(PackageUpdate):
    name: Name
    master_package: Ref
    customer_price: Amount = Field(examples=["500.00"])
    operator_price: Amount = Field(examples=["400.00"])


class ResellerUpdate(Body):
    name: Name | None = None
    contact: Contact | None = None
    parent: Ref | None = Field(None, description="the reseller it is under; none: the admin")
    may_have_subresellers: StrictBool | None = None
    billing: OperatorBillingIn | None = None
    credit_limit: Amount | None = Field(None, description="how much a postpaid one may owe")


class ResellerCreate(ResellerUpdate):
    name: Name


class Assignment(BaseModel):
    """Let a reseller sell a package, optionally at its own operator price."""

    model_config = ConfigDict(extra="forbid")

    package: Ref
    price: Amount | None = Field(None, description="what this reseller pays its parent")
    customer_price: Amount | None = Field(None, description="the customer's price recommended")


class Settlement(BaseModel):
    """A payment from an operator to its parent: it reduces what a postpaid one owes."""

    model_config = ConfigDict(extra="forbid")

    amount: Amount
    reference: Contact = Field("", description="e.g. a receipt number")


class RouterUpdate(Body):
    name: RosName | None = None
    host: Host | None = Field(None, description="IP address (the nas table and CoA need it)")
    api_port: int | None = Field(None, ge=1, le=65535)
    api_tls: StrictBool | None = None
    username: Name | None = None
    password: Secret | None = Field(None, description="write-only; stored encrypted")
    radius_secret: Secret | None = Field(None, description="write-only; stored encrypted")
    customer_types: Name | Annotated[list[RouterCustomerType], Field(max_length=8)] | None = Field(
        None, examples=["pppoe,hotspot,static"]
    )
    mode: RouterModeIn | None = None
    coa_port: int | None = Field(None, ge=1, le=65535)
    enabled: StrictBool | None = None


class RouterCreate(RouterUpdate):
    name: RosName
    host: Host
    username: Name
    radius_secret: Secret


class CustomerUpdate(Body):
    username: RosName | None = None
    password: Secret | None = Field(None, description="write-only")
    customer_type: CustomerTypeIn | None = None
    router: Ref | None = None
    package: Ref | None = None
    reseller: Ref | None = Field(None, description="admins only; a reseller's own customers")
    static_ip: Address | None = None
    mac_address: Mac | None = None
    status: CustomerStatusIn | None = None
    expires_at: DateTime | None = Field(None, description="ISO date/time")


class CustomerCreate(CustomerUpdate):
    username: RosName
    password: Secret
    customer_type: CustomerTypeIn


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routers: list[Ref] = Field(
        default_factory=list, max_length=1000, description="router names; empty: all"
    )
    adopt: StrictBool = Field(False, description="take over unmarked objects with names we want")


class ActivationCreate(BaseModel):
    """Activate, extend or upgrade. The same key again returns the first activation."""

    customer: Ref
    package: Ref
    idempotency_key: text(KEY, min_length=1) = Field(  # type: ignore[valid-type]
        description="the client's name for this request: a retry with the same key "
        "returns the first activation and charges nothing"
    )
    payer: Payer = Field("auto", description="admin only: who pays (card: a recharge card)")
    card_serial: Card | None = None
    card_pin: Card | None = None


class TopUp(BaseModel):
    account: AccountRef = Field(
        description="reseller:NAME, customer:USERNAME, reseller:ID or customer:ID"
    )
    amount: Amount
    refund: StrictBool = False


class CardBatch(BaseModel):
    count: int = Field(ge=1, le=MAX_CARDS)
    value: Amount
    days: int = Field(365, ge=1, le=MAX_DAYS)
    batch: Name = "batch"


class CardRedeem(BaseModel):
    serial: Card
    pin: Card
    customer: Ref | None = Field(None, description="admin only: whose balance to credit")


def choices_of(annotation: Any) -> list[str]:
    """The values a ``choice`` field takes (none for any other field): the CLI's help."""
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    for arg in get_args(annotation):
        if found := choices_of(arg):
            return found
    return []


def fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _max_length(annotation: Any) -> int | None:
    """The longest string a field's type allows (None: no string in it)."""
    found = [
        m.max_length for m in getattr(annotation, "__metadata__", ()) if hasattr(m, "max_length")
    ]
    found += [n for arg in get_args(annotation) if (n := _max_length(arg)) is not None]
    return max((n for n in found if n is not None), default=None)


def _lengths(*models: type[BaseModel]) -> dict[str, int]:
    out: dict[str, int] = {}
    for model in models:
        for name, f in model.model_fields.items():
            n = _max_length(f.annotation)
            if n is not None:
                out[name] = min(n, out.get(name, n))
    return out


MASTER_FIELDS = fields(MasterPackageUpdate)
PACKAGE_FIELDS = fields(PackageUpdate)
RESELLER_FIELDS = fields(ResellerUpdate)
ROUTER_FIELDS = fields(RouterUpdate)
CUSTOMER_FIELDS = fields(CustomerUpdate)
# The longest value of each field of the registry's writes: ``registry`` holds the CLI and
# the web panels to the same lengths as the API.
MAX_LENGTH = _lengths(
    MasterPackageUpdate, PackageUpdate, ResellerUpdate, RouterUpdate, CustomerUpdate
)
