"""Settings: one TOML file under ``config/`` plus ``PROVISIONER_*`` environment overrides.

Precedence (highest first): keyword arguments, environment, the TOML file, defaults.
The defaults run the daemon embedded: a SQLite file under ``var/`` and a simulated router.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """Where ``var/`` (the SQLite file, the generated key) and ``config/`` live:
    ``PROVISIONER_HOME``; else the source checkout; else the working directory. An
    installed package never writes into site-packages."""
    if os.environ.get("PROVISIONER_HOME"):
        return Path(os.environ["PROVISIONER_HOME"])
    if (ROOT / "pyproject.toml").exists():
        return ROOT
    return Path.cwd()


HOME = home()
# The packaged default: config/provisioner.toml, linked into the package (pyproject.toml).
DEFAULT_CONFIG_FILE = Path(__file__).resolve().parent / "defaults" / "provisioner.toml"


def _config_file() -> Path:
    """``PROVISIONER_CONFIG``; else ``config/provisioner.toml`` under the home; else the
    packaged default."""
    if os.environ.get("PROVISIONER_CONFIG"):
        return Path(os.environ["PROVISIONER_CONFIG"])
    local = HOME / "config" / "provisioner.toml"
    return local if local.exists() else DEFAULT_CONFIG_FILE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROVISIONER_", extra="ignore")

    database_url: str = f"sqlite:///{HOME / 'var' / 'provisioner.sqlite3'}"
    # Fernet key for router credentials at rest. Empty: generated once into key_file.
    secret_key: str = ""
    key_file: Path = HOME / "var" / "secret.key"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # API worker processes, which share nothing but the database: unset, one per core on
    # PostgreSQL and one on SQLite (its single writer gains nothing from more); 0, one per
    # core. With several, every process counts into shared files, so /metrics of any of
    # them adds up all of them (the scheduler's parent process included).
    api_workers: int | None = Field(default=None, ge=0)
    # Threads of each API worker for the other routes (``http_threads``): the quick ones,
    # and apart from them those that wait on routers or run long. 3 quick ones, not 4:
    # fewer threads waiting for Python's lock between their round trips. At 500
    # activations/s offered, back to back, the paced runs' p99 was 77 and 106 ms against
    # 87 and 131 ms with 4, as many a second in a closed loop (bench/README.md, "fifth
    # pass"; the machine's own noise is of that size too).
    api_threads: int = Field(default=3, ge=1, le=1000)
    api_slow_threads: int = Field(default=16, ge=1, le=1000)
    # Database connections (README, "Connections"; ``serve`` prints the instance's budget).
    # A process keeps db_pool_size open and opens up to db_max_overflow more at a peak; the
    # one that runs the scheduler has 2 x sync_concurrency more (a sync holds two), and its
    # fleet syncs' processes one per sync and one each. Several
    # API worker processes share db_api_connections, an equal part each (at least 2). A
    # request waits for a connection in the event loop, holding nothing; a connection
    # itself is waited for at most db_pool_timeout_seconds.
    db_pool_size: int = Field(default=4, ge=1, le=1000)
    db_max_overflow: int = Field(default=4, ge=0, le=1000)
    db_api_connections: int = Field(default=16, ge=1, le=10_000)
    db_pool_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)

    reconcile_interval_seconds: float = 300.0
    sync_debounce_seconds: float = 1.0
    outbox_interval_seconds: float = 2.0
    expiry_interval_seconds: float = 60.0
    # Fair usage: how often usage is summed from radacct (throttle past the threshold).
    fup_interval_seconds: float = Field(default=60.0, gt=0)
    sync_concurrency: int = Field(default=4, ge=1, le=256)
    # Processes a fleet-wide sync (``provisioner sync``, the periodic repair) spreads over
    # on PostgreSQL, sharing sync_concurrency: unset or 0, one per core (at most
    # sync_concurrency); 1 syncs in the calling process. SQLite always syncs in process.
    sync_processes: int | None = Field(default=None, ge=0, le=256)
    router_timeout_seconds: float = 10.0
    # Writes in flight at once on a router's connection (RouterOS answers in order, by
    # tag): a burst costs one round trip, not one per write. 1 sends one at a time.
    router_pipeline: int = Field(default=64, ge=1, le=1024)

    # Several daemons on one PostgreSQL. An instance is named by ``instance_name`` (empty:
    # "<hostname>:<API port>", unique while it listens and the same after a restart, so a
    # restarted instance takes its own unfinished work back at once). Each beats every
    # ``heartbeat_seconds``; one silent for ``instance_stale_seconds`` is dead, and the
    # others take over its outbox work and close its sync runs as interrupted.
    instance_name: str = ""
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    instance_stale_seconds: float = Field(default=20.0, gt=0)
    # Routers whose outbox work (syncs, CoA, Disconnect) runs at once; one router's work
    # runs in order, and a router that does not answer never holds up the others.
    outbox_concurrency: int = Field(default=8, ge=1)
    # CoA tries (an unanswered one counts) before the session is ended with a Disconnect
    # instead; each try waits this long per send (two sends).
    coa_max_attempts: int = Field(default=3, ge=1)
    coa_timeout_seconds: float = Field(default=2.0, gt=0)

    # What routers are told about our FreeRADIUS (router bootstrap).
    radius_server_address: str = "127.0.0.1"
    radius_auth_port: int = 1812
    radius_acct_port: int = 1813
    radius_timeout: str = "2s"
    # Interim accounting: the router's interim update and every session's
    # Acct-Interim-Interval (0: usage only at logout; fair usage cannot act on a live one).
    acct_interim_interval_seconds: int = Field(default=300, ge=0, le=86_400)
    # The RADIUS group expired or suspended customers are moved to (Auth-Type := Reject).
    expired_group: str = "provisioner-expired"
    # Address list an expired customer's address joins, for a captive redirect ("" = none).
    expired_address_list: str = "provisioner-expired"

    currency: str = "BDT"
    # How the panels and the portal show money and times (storage stays UTC and plain
    # decimals): "1,234.50 BDT" by default. ``timezone``: the ISP's local time zone, an IANA
    # name (Asia/Dhaka), for the panels' times and the reminders' quiet hours.
    money_decimals: int = Field(default=2, ge=0, le=6)
    money_thousands: str = Field(default=",", max_length=1)
    money_decimal_mark: str = Field(default=".", min_length=1, max_length=1)
    currency_before: bool = False
    timezone: str = "UTC"
    # Monthly invoices: the next period's invoice is issued this many days before the
    # period starts (it is due then); unpaid this many days after, the customer is
    # suspended. The invoice job runs every ``invoice_interval_seconds``.
    invoice_days_ahead: int = Field(default=5, ge=0, le=28)
    invoice_grace_days: int = Field(default=3, ge=0, le=365)
    invoice_interval_seconds: float = Field(default=300.0, gt=0)
    # The scheduled proof that every balance equals the sum of its ledger rows (one
    # grouped scan of the ledger; its outcome is on /metrics).
    ledger_check_interval_seconds: float = Field(default=3600.0, gt=0)
    demo: bool = Field(default=False, description="start a simulated router and seed demo data")

    # Lifetime of a new API token, in days, by its role (0: never expires). A token made
    # with an explicit --days keeps that; changing these does not touch existing tokens.
    token_days_admin: int = Field(default=90, ge=0)
    token_days_reseller: int = Field(default=365, ge=0)
    token_days_customer: int = Field(default=30, ge=0)
    # A verified API token is trusted this long without a query (0: never cached). A
    # revocation in the serving process applies at once; one made elsewhere (the CLI,
    # another worker) applies within this many seconds.
    token_cache_seconds: float = Field(default=2.0, ge=0, le=300)

    # Events out (README, "Events and webhooks"). Sends at once across all endpoints (each
    # also bounded by its own concurrency, so a hanging receiver holds only its own);
    # how often new events and due retries are looked for.
    webhook_workers: int = Field(default=16, ge=1, le=256)
    webhook_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    # An operator's endpoints may reach only public addresses (checked when set and again
    # before each send); true: an admin's too (by default an admin may name a private
    # address: an ISP's own accounting system often sits on its internal network).
    webhook_restrict_admins: bool = False
    # The sending threads' niceness (Linux, per thread; 0: as the daemon): under load
    # deliveries wait, activations and the scheduler don't.
    webhook_nice: int = Field(default=10, ge=0, le=19)
    # Events, delivered (or failed) deliveries and their attempts, and sent reminders older
    # than this many days are removed every retention_interval_seconds, in batches.
    event_retention_days: int = Field(default=30, ge=1, le=36_500)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    # A failed delivery is tried again after webhook_backoff_seconds, doubling up to
    # webhook_backoff_max_seconds, for webhook_retry_seconds (a day); an endpoint that
    # failed for that long without a success is disabled (event webhook.disabled).
    webhook_backoff_seconds: float = Field(default=5.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_retry_seconds: float = Field(default=86_400.0, gt=0)
    # Reminders to customers (apprise): one URL per channel, {email} / {phone} filled in
    # from the customer's contact, e.g. email = "mailtos://user:pw@smtp.example.net?to={email}",
    # sms = "json://sms-gateway.example.net/send?:to={phone}". None: no reminders.
    reminder_urls: dict[str, str] = Field(default_factory=dict)
    reminder_days_ahead: int = Field(default=3, ge=0, le=60)  # customer.expiring
    reminder_language: str = "en"  # for customers whose contact names none
    # No reminder is sent in these local hours ("HH:MM-HH:MM", "" none): held till the end.
    reminder_quiet_hours: str = "21:00-08:00"

    # Webhook or command the "other" adapter runs for non-RouterOS customers.
    other_action_url: str = ""
    other_action_command: str = ""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name: Asia/Dhaka)") from None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _config_file()
        toml = TomlConfigSettingsSource(settings_cls, toml_file=path if path.exists() else None)
        return (init_settings, env_settings, toml)


_current: Settings | None = None


@lru_cache(maxsize=1)
def _from_environment() -> Settings:
    return Settings()


def get_settings() -> Settings:
    """The settings in force: those given to ``use`` (daemon, tests), else file + env."""
    return _current if _current is not None else _from_environment()


def use(settings: Settings | None) -> None:
    global _current
    _current = settings
