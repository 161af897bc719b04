"""What every face shows: typed output models for the API's responses, the CLI's ``--json``
and the web panels. Money is a decimal string ("500.00"), times are ISO 8601 strings,
rates are MikroTik strings ("10M"); no model carries a credential."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


T = TypeVar("T")


class ErrorOut(Out):
    """Every refusal (``api.errors``): ``error`` is "field: reason", or the reason alone."""

    error: str
    field: str | None
    reason: str


class ValidationErrorDetail(Out):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(ErrorOut):
    """A request that does not fit the schema: the first field at fault, and every error
    (``detail``) when the request's shape was checked (a service-layer refusal has none)."""

    detail: list[ValidationErrorDetail] | None = None


class Page(Out, Generic[T]):
    """One page of a list: ``items`` from ``offset`` (at most ``limit`` of them) of the
    ``total`` that match. Every list the API answers with has this shape."""

    items: list[T]
    total: int
    limit: int
    offset: int

    @property
    def rows(self) -> list[T]:
        """``items``, by the name the customer search's page used for them."""
        return self.items


class MasterOut(Out):
    id: int
    name: str
    customer_type: Literal["pppoe", "hotspot", "static", "other"]
    billing: Literal["daily", "monthly"]
    duration_days: int
    rate_down: str
    rate_up: str
    rate_limit: str
    burst_down: str | None
    burst_up: str | None
    burst_threshold_down: str | None
    burst_threshold_up: str | None
    burst_time: int | None
    priority: int | None
    min_down: str | None
    min_up: str | None
    volume_cap: int | None
    fup_threshold: int | None = None
    fup_down: str | None = None
    fup_up: str | None = None
    router_profile: str | None = None
    pool_name: str | None
    pool_ranges: str | None
    profile_name: str
    local_address: str | None
    shared_users: int
    ipv6_pool_name: str | None = None
    ipv6_prefix: str | None = None
    ipv6_prefix_length: int | None = None
    framed_ipv6_prefix: bool = False


class PackageOut(Out):
    """A package as an admin or a reseller sees it (a reseller: at its own price)."""

    id: int
    name: str
    master_package: str
    customer_price: str
    operator_price: str
    type: Literal["pppoe", "hotspot", "static", "other"]
    billing: Literal["daily", "monthly"]
    visibility: Literal["public", "private"]
    duration_days: int | None
    rate_limit: str


class PublicPackageOut(Out):
    """A package as a customer sees it: its price, no operator price."""

    id: int
    name: str
    price: str
    type: Literal["pppoe", "hotspot", "static", "other"]
    billing: Literal["daily", "monthly"]
    duration_days: int | None
    download: str
    upload: str


class PackageWritten(Out):
    package: PackageOut
    warnings: list[str]


class AssignmentOut(Out):
    package: str
    price: str | None
    effective_price: str
    customer_price: str | None = None  # recommended by the parent; None: the package's


class ResellerOut(Out):
    """An operator: its place in the tree, how it pays, its balance and its packages."""

    id: int
    name: str
    contact: str
    packages: list[AssignmentOut]
    parent: str | None = None  # None: under the admin
    may_have_subresellers: bool = False
    billing: Literal["prepaid", "postpaid"] = "prepaid"
    credit_limit: str = "0.00"
    balance: str = "0.00"


class RouterOut(Out):
    id: int
    name: str
    host: str
    api_port: int
    api_tls: bool
    username: str
    customer_types: str
    mode: str
    coa_port: int
    enabled: bool


class RouterStatusOut(RouterOut):
    last_sync: str | None
    last_status: str
    last_applied: int | None
    last_error: str | None


class SyncRunOut(Out):
    id: int
    started_at: str
    finished_at: str | None
    trigger: str
    status: str
    planned: int
    applied: int
    error: str | None
    changes: list[Any]


class CustomerOut(Out):
    id: int
    username: str
    customer_type: Literal["pppoe", "hotspot", "static", "other"]
    router: str | None
    package: str | None
    reseller: str | None
    static_ip: str | None
    mac_address: str | None
    status: Literal["new", "active", "expired", "suspended"]
    expires_at: str | None
    billing_day: int | None


class UsageOut(Out):
    """A customer's usage in its current billing cycle (fair usage)."""

    customer: str
    cycle_start: str | None
    cycle_end: str | None
    used_bytes: int
    threshold_bytes: int | None
    throttled: bool
    throttled_until: str | None
    rate_limit: str | None  # what its sessions get now


class WorkOut(Out):
    kind: str
    status: str
    attempts: int
    error: str | None


class ActivationOut(Out):
    id: int
    idempotency_key: str
    customer: str | None
    package: str | None
    payer: str
    price: str | None  # None: an operator price, hidden from the customer
    starts_at: str
    expires_at: str
    status: Literal["pending", "applied", "failed"]
    error: str | None
    work: list[WorkOut]


class ActivationRow(ActivationOut):
    at: str


class LedgerEntryOut(Out):
    at: str
    amount: str
    kind: str
    reference: str


class BalanceOut(Out):
    """An account's balance and one page of its ledger, newest first."""

    account: str
    balance: str
    entries: Page[LedgerEntryOut]


class TopUpOut(Out):
    account: str
    balance: str


class CardOut(Out):
    serial: str
    pin: str


class CardBatchOut(Out):
    batch: str
    cards: list[CardOut]


class RedeemOut(Out):
    customer: str
    balance: str


class PropChangeOut(Out):
    name: str
    old: str | None
    new: str | None


class ChangeOut(Out):
    """``Change.to_dict()``: the optional keys are left out when unset, as there."""

    menu: str
    key: str
    action: str
    id: str | None = None
    props: list[PropChangeOut] | None = None
    reason: str | None = None
    adopt: bool | None = None

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


class PlanOut(Out):
    """``Plan.to_dict()``: one target's changes, redacted."""

    target: str
    kind: str
    error: str | None
    summary: dict[str, int]
    changes: list[ChangeOut]


class PlansOut(Out):
    plans: list[PlanOut]
    summary: str
    text: str


class RadiusSyncOut(PlansOut):
    written: int


class SyncResultOut(Out):
    router: str
    status: str
    planned: int
    applied: int
    conflicts: int
    error: str | None
    changes: list[Any]


class SyncOut(Out):
    results: list[SyncResultOut]
    summary: str


class AuditOut(Out):
    at: str
    actor: str
    action: str
    entity: str
    id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class HealthOut(Out):
    status: str


class TokenOut(Out):
    """An API token as an admin sees it; never its hash. ``status``: active | expired |
    revoked (of the token itself; a suspended customer's token is active but read-only)."""

    id: int
    role: Literal["admin", "reseller", "customer"]
    owner: str | None  # the reseller's name or the customer's username; None for admins
    name: str
    created_at: str
    expires_at: str | None  # None: never expires
    last_used_at: str | None  # recorded at most once a minute
    revoked_at: str | None
    status: str


class TokenCreatedOut(TokenOut):
    """A new token: ``token`` is shown this once; only its hash is stored."""

    token: str


class WebUserOut(Out):
    """A web login as an admin sees it; never its password hash."""

    id: int
    username: str
    role: str
    reseller: str | None
    created_at: str
    last_login_at: str | None
    disabled: bool = False


class QuoteOut(Out):
    """What buying a package costs the caller (a reseller or a customer) from its own
    balance: the price it pays, its balance now, and what is left after."""

    package: str
    price: str
    balance: str
    balance_after: str
    enough: bool


class MasterPreviewOut(Out):
    """What saving a master package's change would set off: the routers that sync, and
    the online customers who get the new speed by CoA (or are disconnected)."""

    master_package: str
    rate_before: str
    rate_after: str
    routers: list[str]
    coa: list[str]
    disconnect: list[str]


class CardBatchSummaryOut(Out):
    batch: str
    value: str
    cards: int
    redeemed: int
    expires_at: str


class ImportErrorOut(Out):
    """One refusal of a CSV import: the file's line (the header is line 1), the column."""

    line: int
    field: str | None
    error: str


class ImportOut(Out):
    """A CSV import's outcome: ``created`` is 0 unless every row was good (all or
    nothing) and it was not a dry run."""

    dry_run: bool
    rows: int
    created: int
    errors: list[ImportErrorOut]


class PaymentOut(Out):
    amount: str
    method: Literal["balance", "admin", "reseller"]
    actor: str
    reference: str
    at: str


class InvoiceOut(Out):
    """One billing period of a monthly customer: open (due at the period's start), paid,
    or void; with the payments made against it."""

    id: int
    customer: str
    reseller: str | None
    package: str | None
    amount: str
    currency: str
    period_start: str
    period_end: str
    due_at: str
    status: Literal["open", "paid", "void"]
    paid_at: str | None
    issued_at: str
    activation_id: int | None
    # An operator's own (never a customer's): what it pays for the period, and its margin.
    your_price: str | None = None
    margin: str | None = None
    payments: list[PaymentOut]
