"""The simulated router's RADIUS side: subscribers log in, are accounted and are cut.

A `SimulatedNas` belongs to one `SimulatedRouter` (`router.nas`) and behaves as the
router's RADIUS client does, reading only the router's own menus:

* `dial()` logs a subscriber in. Local users (`/ppp/secret`, `/ip/hotspot/user`) are
  checked first, as RouterOS does; otherwise, if the service uses RADIUS
  (`/ppp/aaa use-radius`, `/ip/hotspot/profile use-radius`), a PAP Access-Request goes to
  the `/radius` entries of the service, in list order, each with its own timeout. An
  Access-Accept makes a session: a `/ppp/active` (or `/ip/hotspot/active`) row, a dynamic
  `/queue/simple` for its rate, an address from the reply, a pool or a made-up one, and an
  Accounting Start.
* Time is simulated: `tick(seconds)` moves the clock, grows every session's counters by its
  traffic rate (capped by its rate limit) and sends each interim update that falls due, in
  time order, and a Stop for a session that reaches its Session-Timeout. The interim
  interval is the Accept's Acct-Interim-Interval if non-zero, else `/ppp/aaa
  interim-update` (PPP) if not 0s, else none: the usage then only arrives in the Stop.
* `hangup()` ends a session (Stop, User-Request); `crash()` / `reboot()` lose every
  session with no Stop at all; removing a `/ppp/active` row over the API kicks the
  session (Stop, Admin-Reset) as on a router.
* With `/radius/incoming accept=yes` a daemon thread answers Disconnect-Request and
  CoA-Request (RFC 5176) on loopback, port `/radius/incoming port`, from a sender that is
  the address of a `/radius` entry, signed with that entry's secret.

Everything is sent to loopback addresses only; a `/radius` entry pointing elsewhere is
never contacted. Where RouterOS's exact behaviour is not known the choice is marked
"unverified", as in menus.py.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import itertools
import random
import select
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pyrad.client
import pyrad.packet

from nas_adapters.radius_client import code_name, decode_attributes, load_dictionary

from .menus import Trap, format_time, parse_time_ms

if TYPE_CHECKING:
    from .server import SimulatedRouter

__all__ = [
    "AccountingRecord",
    "DialResult",
    "IncomingRequest",
    "NasSession",
    "SimulatedNas",
    "parse_interval",
    "parse_rate",
]

Service = Literal["ppp", "hotspot"]
Attributes = dict[str, list[str | int]]

# How often the background thread looks at /radius/incoming and at kicked sessions, and
# how long it blocks on the CoA socket: short, so stop() and config changes act quickly.
_POLL_SECONDS = 0.02
_ACCT_RETRIES = 2  # RouterOS keeps retrying accounting; two sends are enough on loopback
_MAX_DATAGRAM = 4096
_REPLY_CACHE = 256  # answered requests kept to answer a retransmission identically

# Error-Cause values (RFC 5176 section 3.5).
MISSING_ATTRIBUTE = 402
NAS_IDENTIFICATION_MISMATCH = 403
SESSION_CONTEXT_NOT_FOUND = 503

_GIGAWORD = 2**32


# ---------------------------------------------------------------------------------------
# Small parsers
# ---------------------------------------------------------------------------------------


def parse_interval(value: str | int | None) -> int:
    """Seconds of a RouterOS duration (`5m`, `300s`, `00:05:00`, `300`, `1h30m`); 0 for
    none, empty or `0s`. Raises ValueError for anything else."""
    if value is None or value == "" or value == "none":
        return 0
    if isinstance(value, int):
        return max(value, 0)
    ms = parse_time_ms(value)
    if ms is None:
        raise ValueError(f"not a RouterOS duration: {value!r}")
    return ms // 1000


_UNITS = {"": 1, "k": 1000, "K": 1000, "M": 1_000_000, "G": 1_000_000_000}


def _bits(token: str) -> int | None:
    digits = token.rstrip("kKMG")
    if not digits.isdigit():
        return None
    return int(digits) * _UNITS[token[len(digits) :]]


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """The (rx, tx) bits per second of a rate-limit (`2M/10M ...`): rx is what the router
    receives, the customer's upload; tx its download. None if absent or unreadable."""
    if not rate:
        return None
    first = rate.split()[0].split("/")
    rx, tx = _bits(first[0]), _bits(first[-1])
    if rx is None or tx is None or len(first) > 2:
        return None
    return rx, tx


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DialResult:
    """What a login attempt came to.

    `accepted` with its `session`; else `reason`: the Reply-Message of an Access-Reject (or
    `authentication failed` without one), `radius timeout`, or why the router refused on
    its own. `reply` holds the attributes of the Access-Accept/Reject (empty without one).
    """

    accepted: bool
    session: NasSession | None = None
    reason: str = ""
    reply: Attributes = field(default_factory=dict)


@dataclass(frozen=True)
class AccountingRecord:
    """One Accounting-Request the NAS sent: `status` is Start / Interim-Update / Stop;
    `answered` is False when no valid Accounting-Response came back (a lost packet)."""

    status: str
    username: str
    session_id: str
    attributes: dict[str, Any]
    answered: bool
    at: float  # the NAS's simulated clock


@dataclass(frozen=True)
class IncomingRequest:
    """A CoA-Request or Disconnect-Request the NAS received and verified, and its answer
    (`Disconnect-ACK`, `CoA-NAK`, ...) with the Error-Cause of a NAK."""

    code: str
    attributes: Attributes
    source: tuple[str, int]
    answer: str
    error_cause: int | None = None


@dataclass(frozen=True)
class _Server:
    """A `/radius` entry as the NAS uses it."""

    address: str
    secret: str
    auth_port: int
    acct_port: int
    timeout: float
    src: str | None
    require_ma: bool


# ---------------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------------


class NasSession:
    """One live subscriber session. Counters are the router's: `bytes_in` is what it
    received from the customer (Acct-Input-Octets, the upload), `bytes_out` what it sent
    to the customer (Acct-Output-Octets, the download)."""

    def __init__(
        self,
        nas: SimulatedNas,
        *,
        username: str,
        service: Service,
        session_id: str,
        nas_port: int,
        address: str,
        mac: str,
        started: float,
        radius: _Server | None,
        rate: str | None,
        session_timeout: int | None,
        interim_interval: int,
        reply: Attributes,
        classes: list[bytes],
    ) -> None:
        self._nas = nas
        self.username = username
        self.service: Service = service
        self.session_id = session_id
        self.nas_port = nas_port
        self.address = address
        self.mac = mac
        self.started = started
        self.radius = radius  # the server that accepted it: accounting goes there too
        self.rate = rate
        self.session_timeout = session_timeout
        self.interim_interval = interim_interval
        self.reply = reply
        self.classes = classes
        self.bytes_in = 0.0
        self.bytes_out = 0.0
        self.traffic: tuple[float, float] = (0.0, 0.0)  # bytes/s wanted, in and out
        self.next_interim: float | None = started + interim_interval if interim_interval else None
        self.timeout_at: float | None = started + session_timeout if session_timeout else None
        self.row_id: str | None = None  # its /ppp/active or /ip/hotspot/active row
        self.queue_id: str | None = None  # its dynamic /queue/simple
        self.pool_used_id: str | None = None  # its /ip/pool/used row
        self.ended: str | None = None  # the Acct-Terminate-Cause once it is over

    def __repr__(self) -> str:
        return f"<NasSession {self.service} {self.username} {self.session_id} {self.address}>"

    @property
    def uptime(self) -> float:
        return self._nas.clock - self.started

    @property
    def input_octets(self) -> int:
        return int(self.bytes_in)

    @property
    def output_octets(self) -> int:
        return int(self.bytes_out)

    def set_traffic(self, bytes_in_per_s: float, bytes_out_per_s: float) -> None:
        """The customer's wish: upload and download in bytes per second. What is counted
        is capped by the session's rate limit, as the router's queue would."""
        with self._nas._lock:
            self.traffic = (float(bytes_in_per_s), float(bytes_out_per_s))

    def add_traffic(self, bytes_in: int, bytes_out: int) -> None:
        """Count bytes now (not capped by the rate): the next accounting packet has them."""
        with self._nas._lock:
            self.bytes_in += bytes_in
            self.bytes_out += bytes_out

    def hangup(self) -> None:
        """The customer hangs up: Stop with Acct-Terminate-Cause User-Request."""
        self._nas.end(self, "User-Request")

    def effective_traffic(self) -> tuple[float, float]:
        limit = parse_rate(self.rate)
        want_in, want_out = self.traffic
        if limit is None:
            return want_in, want_out
        rx, tx = limit
        return (
            want_in if rx == 0 else min(want_in, rx / 8),
            want_out if tx == 0 else min(want_out, tx / 8),
        )


# ---------------------------------------------------------------------------------------
# The NAS
# ---------------------------------------------------------------------------------------


class SimulatedNas:
    """The RADIUS client and CoA server of one `SimulatedRouter` (see the module doc).

    Take it as `router.nas` (one per router, stopped with it). Thread-safe. `start()` runs
    the CoA listener thread (a daemon), `stop()` ends it. `event_timestamp=True` adds
    Event-Timestamp (`epoch` + the simulated clock) to accounting so that FreeRADIUS
    stores simulated times; RouterOS does not send it for PPP (MikroTik's manual lists it
    for telephony only; unverified for v7), hence off by default.
    """

    def __init__(
        self,
        router: SimulatedRouter,
        *,
        event_timestamp: bool = False,
        epoch: float | None = None,
        seed: int | None = None,
    ) -> None:
        self.router = router
        self.event_timestamp = event_timestamp
        self.epoch = time.time() if epoch is None else epoch
        self._lock = threading.RLock()
        self._clock = 0.0
        self._sessions: dict[str, NasSession] = {}
        rng = random.Random(seed)  # seed=None: differs per NAS, so Acct-Session-Ids do
        # RouterOS ids look like `81c00001`; a random high part keeps two simulated routers
        # writing one radacct apart.
        self._id_base = rng.randrange(0x800, 0xF00) << 20
        self._counter = itertools.count(1)
        self._made_up = itertools.count(0)
        self._accounting: list[AccountingRecord] = []
        self._received: list[IncomingRequest] = []
        self._dropped: list[tuple[tuple[str, int], str]] = []
        self._replies: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        # Listener thread state.
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._bound: tuple[str, int] | None = None
        self._bind_error: str | None = None
        self._retry_bind_at = 0.0
        self._loops = 0
        self._loop_cond = threading.Condition()
        self._realtime: float | None = None
        self._last_real = time.monotonic()
        self.dictionary = load_dictionary()

    def __repr__(self) -> str:
        return f"<SimulatedNas of {self.router!r}: {len(self._sessions)} sessions>"

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> SimulatedNas:
        """Run the listener thread (idempotent)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"routeros-sim-nas-{self.router.port}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """End the listener thread and close its socket (idempotent). Sessions stay."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._close_listener()

    def __enter__(self) -> SimulatedNas:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    # -- what tests read ------------------------------------------------------------

    @property
    def clock(self) -> float:
        """Simulated seconds since this NAS was made."""
        return self._clock

    @property
    def sessions(self) -> list[NasSession]:
        """Live sessions, oldest first."""
        with self._lock:
            return list(self._sessions.values())

    def find(self, username: str) -> NasSession | None:
        """The oldest live session of `username`, if any."""
        with self._lock:
            return next((s for s in self._sessions.values() if s.username == username), None)

    @property
    def accounting(self) -> list[AccountingRecord]:
        """Every Accounting-Request sent, in order."""
        with self._lock:
            return list(self._accounting)

    @property
    def received(self) -> list[IncomingRequest]:
        """Every verified CoA-Request / Disconnect-Request received, with its answer."""
        with self._lock:
            return list(self._received)

    @property
    def dropped(self) -> list[tuple[tuple[str, int], str]]:
        """Datagrams dropped on the CoA port (unknown sender, bad signature, ...): source
        and reason."""
        with self._lock:
            return list(self._dropped)

    @property
    def incoming(self) -> tuple[str, int] | None:
        """The (address, port) the CoA listener is bound to, None when not listening."""
        return self._bound

    def clear_records(self) -> None:
        """Forget `accounting`, `received` and `dropped`."""
        with self._lock:
            self._accounting.clear()
            self._received.clear()
            self._dropped.clear()

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until the listener thread has run a full round after this call: the
        listener follows `/radius/incoming`, kicked sessions are stopped, and requests
        already received are answered (and their Stops sent). Without the thread, the
        round runs here."""
        if not self.running:
            with self._lock:
                self._reconcile()
            return
        with self._loop_cond:
            target = self._loops + 2
            deadline = time.monotonic() + timeout
            while self._loops < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    break
                self._loop_cond.wait(left)

    # -- logging in -----------------------------------------------------------------

    def dial(
        self,
        username: str,
        password: str,
        service: Service = "ppp",
        *,
        mac: str | None = None,
        ip: str | None = None,
        traffic: tuple[float, float] = (0.0, 0.0),
    ) -> DialResult:
        """A subscriber logs in (PAP). `mac` is its MAC (Calling-Station-Id; made up when
        None); `ip` is a hotspot client's own address, or for PPP the address to use when
        neither RADIUS nor a profile gives one. `traffic` is its upload/download wish in
        bytes per second (see `NasSession.set_traffic`)."""
        if service not in ("ppp", "hotspot"):
            raise ValueError(f"service must be ppp or hotspot, not {service!r}")
        with self._lock:
            self._reconcile()
            mac = (mac or self._made_up_mac()).replace("-", ":").upper()
            number = next(self._counter)
            session_id = f"{self._id_base + number:08x}"
            local = self._local_user(service, username)
            if local is not None:
                return self._local_login(
                    service, username, password, local, mac, ip, session_id, number, traffic
                )
            if not self._uses_radius(service):
                return DialResult(False, reason="no such user (RADIUS not used)")  # unverified
            servers = self._servers(service)
            if not servers:
                return DialResult(False, reason=f"no RADIUS server for {service}")
            request = self._request_attributes(service, username, session_id, number, mac, ip)
            answered = self._authenticate(servers, username, password, request)
            if answered is None:
                return DialResult(False, reason="radius timeout")
            server, reply = answered
            attrs = decode_attributes(reply)
            if reply.code != pyrad.packet.AccessAccept:
                messages = [str(m) for m in attrs.get("Reply-Message", [])]
                return DialResult(
                    False, reason=" ".join(messages) or "authentication failed", reply=attrs
                )
            return self._open(
                service, username, server, reply, attrs, mac, ip, session_id, number, traffic
            )

    def _open(
        self,
        service: Service,
        username: str,
        server: _Server,
        reply: pyrad.packet.Packet,
        attrs: Attributes,
        mac: str,
        ip: str | None,
        session_id: str,
        number: int,
        traffic: tuple[float, float],
    ) -> DialResult:
        group = _first(attrs, "Mikrotik-Group")
        profile = self._profile(service, str(group) if group is not None else None)
        try:
            address, pool = self._address(service, attrs, profile, ip)
        except _Refused as refused:
            return DialResult(False, reason=str(refused), reply=attrs)
        rate = _first(attrs, "Mikrotik-Rate-Limit")
        rate = str(rate) if rate is not None else profile.get("rate-limit")
        timeout = _first(attrs, "Session-Timeout")
        interim = _first(attrs, "Acct-Interim-Interval")
        interval = int(interim) if isinstance(interim, int) and interim > 0 else 0
        if not interval and service == "ppp":
            # "if 0 uses the one specified in RADIUS client" (MikroTik's RADIUS manual).
            interval = parse_interval(self._aaa().get("interim-update"))
        session = NasSession(
            self,
            username=username,
            service=service,
            session_id=session_id,
            nas_port=number,
            address=address,
            mac=mac,
            started=self._clock,
            radius=server,
            rate=rate,
            session_timeout=timeout if isinstance(timeout, int) and timeout > 0 else None,
            interim_interval=interval,
            reply=attrs,
            classes=list(OrderedDict.get(reply, 25, [])),  # Class is echoed raw
        )
        session.traffic = (float(traffic[0]), float(traffic[1]))
        self._add_rows(session, pool)
        self._sessions[session_id] = session
        if self._accounts(service):
            self._send_accounting(session, "Start")
        return DialResult(True, session=session, reply=attrs)

    def _local_login(
        self,
        service: Service,
        username: str,
        password: str,
        user: dict[str, str],
        mac: str,
        ip: str | None,
        session_id: str,
        number: int,
        traffic: tuple[float, float],
    ) -> DialResult:
        """A local secret / hotspot user: no RADIUS at all (RouterOS looks there first).
        No accounting either (unverified: RouterOS may account local PPP users)."""
        if user.get("disabled") == "true" or user.get("password", "") != password:
            return DialResult(False, reason="authentication failed")
        profile = self._profile(service, user.get("profile"))
        attrs: Attributes = {}
        if service == "ppp" and user.get("remote-address"):
            attrs["Framed-IP-Address"] = [user["remote-address"]]
        try:
            address, pool = self._address(service, attrs, profile, ip)
        except _Refused as refused:
            return DialResult(False, reason=str(refused))
        session = NasSession(
            self,
            username=username,
            service=service,
            session_id=session_id,
            nas_port=number,
            address=address,
            mac=mac,
            started=self._clock,
            radius=None,
            rate=profile.get("rate-limit"),
            session_timeout=None,
            interim_interval=0,
            reply={},
            classes=[],
        )
        session.traffic = (float(traffic[0]), float(traffic[1]))
        self._add_rows(session, pool)
        self._sessions[session_id] = session
        return DialResult(True, session=session)

    # -- time -----------------------------------------------------------------------

    def tick(self, seconds: float) -> int:
        """Move the simulated clock on by `seconds`: counters grow, interim updates and
        Session-Timeout Stops go out at their due times, in order. Returns how many
        accounting packets were sent."""
        if seconds < 0:
            raise ValueError("the clock does not go back")
        with self._lock:
            self._reconcile()
            sent = len(self._accounting)
            end = self._clock + seconds
            while True:
                due = self._next_event()
                if due is None or due > end:
                    break
                self._advance(due)
                for session in list(self._sessions.values()):
                    if session.timeout_at is not None and session.timeout_at <= self._clock:
                        self.end(session, "Session-Timeout")
                    elif session.next_interim is not None and session.next_interim <= self._clock:
                        session.next_interim += session.interim_interval
                        if self._accounts(session.service) and session.radius is not None:
                            self._send_accounting(session, "Interim-Update")
            self._advance(end)
            self._refresh_rows()
            return len(self._accounting) - sent

    def run_clock(self, speed: float | None = 1.0) -> None:
        """Let the listener thread move the clock with real time × `speed` (None: stop).
        Tests should prefer `tick()`, which is deterministic."""
        with self._lock:
            self._realtime = speed
            self._last_real = time.monotonic()

    def _next_event(self) -> float | None:
        times = [
            t
            for s in self._sessions.values()
            for t in (s.next_interim, s.timeout_at)
            if t is not None
        ]
        return min(times, default=None)

    def _advance(self, to: float) -> None:
        dt = to - self._clock
        if dt <= 0:
            return
        for session in self._sessions.values():
            rate_in, rate_out = session.effective_traffic()
            session.bytes_in += rate_in * dt
            session.bytes_out += rate_out * dt
        self._clock = to

    # -- ending ---------------------------------------------------------------------

    def hangup(self, username: str) -> int:
        """Every session of `username` hangs up (Stop, User-Request). Returns how many."""
        with self._lock:
            mine = [s for s in self._sessions.values() if s.username == username]
            for session in mine:
                self.end(session, "User-Request")
            return len(mine)

    def end(self, session: NasSession, cause: str = "User-Request") -> None:
        """End one session with this Acct-Terminate-Cause: rows removed, Stop sent."""
        with self._lock:
            if self._drop(session, cause):
                self._stop_accounting(session)

    def crash(self) -> int:
        """The router loses power: every session vanishes, no Stop is sent (radacct keeps
        them open). Returns how many were lost."""
        with self._lock:
            lost = list(self._sessions.values())
            for session in lost:
                self._drop(session, "Lost")
            return len(lost)

    def reboot(self) -> int:
        """As `crash()` (RouterOS sends no Stop for sessions cut by a reboot; unverified
        whether v7 sends Accounting-On afterwards: not sent here)."""
        return self.crash()

    def _drop(self, session: NasSession, cause: str) -> bool:
        """Forget a session and remove what it had on the router; False if already gone."""
        if self._sessions.pop(session.session_id, None) is None:
            return False
        session.ended = cause
        menu = "/ppp/active" if session.service == "ppp" else "/ip/hotspot/active"
        for path, row_id in (
            (menu, session.row_id),
            ("/queue/simple", session.queue_id),
            ("/ip/pool/used", session.pool_used_id),
        ):
            if row_id is not None:
                with contextlib.suppress(Trap):  # already removed (a kick over the API)
                    self.router.remove_item(path, row_id)
        return True

    def _stop_accounting(self, session: NasSession) -> None:
        if session.radius is not None and self._accounts(session.service):
            self._send_accounting(session, "Stop")

    def _reconcile(self) -> None:
        """Sessions whose row was removed over the API were kicked: Stop, Admin-Reset
        (unverified: the cause RouterOS reports for `/ppp active remove`)."""
        if not self._sessions:
            return
        alive = {
            "ppp": {r[".id"] for r in self.router.items("/ppp/active")},
            "hotspot": {r[".id"] for r in self.router.items("/ip/hotspot/active")},
        }
        for session in list(self._sessions.values()):
            if session.row_id is not None and session.row_id not in alive[session.service]:
                session.row_id = None
                self.end(session, "Admin-Reset")

    # -- router configuration -------------------------------------------------------

    def _singleton(self, menu: str) -> dict[str, str]:
        rows = self.router.items(menu)
        return rows[0] if rows else {}

    def _aaa(self) -> dict[str, str]:
        return self._singleton("/ppp/aaa")

    def _uses_radius(self, service: Service) -> bool:
        if service == "ppp":
            return self._aaa().get("use-radius") == "true"
        # Hotspot servers are not modelled: any server profile with use-radius counts.
        return any(p.get("use-radius") == "true" for p in self.router.items("/ip/hotspot/profile"))

    def _accounts(self, service: Service) -> bool:
        if service == "ppp":
            return self._aaa().get("accounting") != "false"
        return True  # hotspot: radius-accounting on the server profile, not modelled

    def _servers(self, service: Service) -> list[_Server]:
        out = []
        for row in self.router.items("/radius"):
            if row.get("disabled") == "true" or service not in row.get("service", "").split(","):
                continue
            if not row.get("address"):
                continue
            ms = parse_time_ms(row.get("timeout", "300ms")) or 300
            out.append(
                _Server(
                    address=row["address"],
                    secret=row.get("secret", ""),
                    auth_port=int(row.get("authentication-port", "1812")),
                    acct_port=int(row.get("accounting-port", "1813")),
                    timeout=ms / 1000,
                    src=row.get("src-address"),
                    require_ma=row.get("require-message-auth", "yes-for-request-resp") != "no",
                )
            )
        return out

    def _local_user(self, service: Service, username: str) -> dict[str, str] | None:
        if service == "ppp":
            rows = self.router.items("/ppp/secret")
            ok = [r for r in rows if r.get("service", "any") in ("any", "pppoe")]
        else:
            ok = self.router.items("/ip/hotspot/user")
        return next((r for r in ok if r.get("name") == username), None)

    def _profile(self, service: Service, name: str | None) -> dict[str, str]:
        """The profile a session takes defaults from: the named one (Mikrotik-Group or the
        user's), else `default`."""
        menu = "/ppp/profile" if service == "ppp" else "/ip/hotspot/user/profile"
        rows = {r["name"]: r for r in self.router.items(menu)}
        return rows.get(name or "default") or rows.get("default") or {}

    # -- addresses ------------------------------------------------------------------

    def _address(
        self, service: Service, attrs: Attributes, profile: dict[str, str], ip: str | None
    ) -> tuple[str, str | None]:
        """The session's address and the pool it came from."""
        framed = _first(attrs, "Framed-IP-Address")
        if service == "hotspot":
            # A hotspot client already has its address (DHCP); RADIUS may name another.
            return str(framed or ip or self._made_up_address()), None
        if framed is not None:
            return str(framed), None
        pools = {p["name"]: p for p in self.router.items("/ip/pool")}
        wanted = _first(attrs, "Framed-Pool")
        remote = profile.get("remote-address")
        if wanted is None and remote and remote not in pools:
            return remote, None  # the profile's fixed address
        name = str(wanted) if wanted is not None else remote
        if name is not None and name in pools:
            return self._allocate(pools, name), name
        return ip or self._made_up_address(), None

    def _allocate(self, pools: dict[str, dict[str, str]], name: str) -> str:
        taken = {r.get("address") for r in self.router.items("/ip/pool/used")}
        taken |= {s.address for s in self._sessions.values()}
        seen: set[str] = set()
        current: str | None = name
        while current is not None and current in pools and current not in seen:
            seen.add(current)
            for address in _pool_addresses(pools[current]["ranges"]):
                if address not in taken:
                    return address
            nxt = pools[current].get("next-pool", "none")
            current = None if nxt == "none" else nxt
        raise _Refused(f"could not allocate an address from pool {name}")  # unverified

    def _made_up_address(self) -> str:
        taken = {s.address for s in self._sessions.values()}
        while True:
            n = next(self._made_up)
            address = f"100.64.{n // 250 % 256}.{n % 250 + 2}"
            if address not in taken:
                return address

    def _made_up_mac(self) -> str:
        n = self._id_base + next(self._made_up)
        return "02:" + ":".join(f"{(n >> s) & 0xFF:02X}" for s in (32, 24, 16, 8, 0))

    # -- rows on the router ---------------------------------------------------------

    def _add_rows(self, session: NasSession, pool: str | None) -> None:
        owner = "PPP" if session.service == "ppp" else "HotSpot"
        if session.service == "ppp":
            session.row_id = self.router.add_item(
                "/ppp/active",
                **{
                    "name": session.username,
                    "service": "pppoe",
                    "caller-id": session.mac,
                    "address": session.address,
                    "uptime": "0s",
                    "session-id": "0x" + session.session_id.upper(),  # unverified form
                    "radius": session.radius is not None,
                },
            )
        else:
            session.row_id = self.router.add_item(
                "/ip/hotspot/active",
                **{
                    "server": "hotspot1",
                    "user": session.username,
                    "address": session.address,
                    "mac-address": session.mac,
                    "login-by": "http-pap",
                    "uptime": "0s",
                    "bytes-in": "0",
                    "bytes-out": "0",
                    "radius": session.radius is not None,
                },
            )
        if pool is not None:
            session.pool_used_id = self.router.add_item(
                "/ip/pool/used",
                pool=pool,
                address=session.address,
                owner=owner,
                info=session.username,
            )
        self._set_queue(session)

    def _set_queue(self, session: NasSession) -> None:
        """RouterOS makes a dynamic simple queue `<pppoe-user>` for a session's rate.
        Its target here is the address (the real one names the interface)."""
        props = _queue_props(session.rate)
        try:
            if session.queue_id is not None:
                if props:
                    self.router.set_item("/queue/simple", session.queue_id, **props)
                else:
                    self.router.remove_item("/queue/simple", session.queue_id)
                    session.queue_id = None
                return
            if not props:
                return
            kind = "pppoe" if session.service == "ppp" else "hotspot"
            names = {q.get("name") for q in self.router.items("/queue/simple")}
            name = f"<{kind}-{session.username}>"
            for n in itertools.count(1):
                if name not in names:
                    break
                name = f"<{kind}-{session.username}-{n}>"
            session.queue_id = self.router.add_item(
                "/queue/simple",
                name=name,
                target=f"{session.address}/32",
                dynamic=True,
                **props,
            )
        except Trap:
            pass  # a rate the queue menu refuses: the session runs without a queue

    def _refresh_rows(self) -> None:
        for session in self._sessions.values():
            if session.row_id is None:
                continue
            uptime = format_time(int(session.uptime) * 1000)
            try:
                if session.service == "ppp":
                    self.router.set_item("/ppp/active", session.row_id, uptime=uptime)
                else:
                    self.router.set_item(
                        "/ip/hotspot/active",
                        session.row_id,
                        uptime=uptime,
                        **{"bytes-in": session.input_octets, "bytes-out": session.output_octets},
                    )
            except Trap:
                pass  # kicked meanwhile: the next reconcile stops it

    # -- RADIUS requests ------------------------------------------------------------

    def _nas_ip(self, server: _Server | None) -> str:
        return server.src if server is not None and server.src else "127.0.0.1"

    def _request_attributes(
        self,
        service: Service,
        username: str,
        session_id: str,
        number: int,
        mac: str,
        ip: str | None,
    ) -> dict[str, Any]:
        """What an Access-Request carries besides the password (and accounting too), as
        MikroTik's RADIUS client manual lists it."""
        attrs: dict[str, Any] = {"User-Name": username}
        if service == "ppp":
            attrs |= {"Service-Type": "Framed-User", "Framed-Protocol": "PPP"}
        attrs |= {
            "NAS-Port": number,
            "NAS-Port-Type": "Ethernet" if service == "ppp" else "Wireless-802.11",
            "NAS-Port-Id": "ether2" if service == "ppp" else "wlan1",
            "Calling-Station-Id": mac,
            "Called-Station-Id": "service1" if service == "ppp" else "hotspot1",
            "Acct-Session-Id": session_id,
            "NAS-Identifier": self._singleton("/system/identity").get("name", "MikroTik"),
        }
        if service == "hotspot" and ip:
            attrs["Framed-IP-Address"] = ip
        return attrs

    def _client(self, server: _Server) -> pyrad.client.Client:
        client = pyrad.client.Client(
            server=server.address,
            authport=server.auth_port,
            acctport=server.acct_port,
            secret=server.secret.encode("utf-8"),
            dict=self.dictionary,
            retries=1,
            timeout=server.timeout,
            enforce_ma=server.require_ma,
        )
        # Send from the configured src-address when it is a local one, else from
        # 127.0.0.1: FreeRADIUS knows its clients by source address.
        source = server.src if server.src and _is_loopback(server.src) else "127.0.0.1"
        client.bind((source, 0))
        return client

    def _authenticate(
        self, servers: list[_Server], username: str, password: str, request: dict[str, Any]
    ) -> tuple[_Server, pyrad.packet.Packet] | None:
        """Ask each server in turn until one answers; None if none does."""
        for server in servers:
            if not _is_loopback(server.address):
                continue  # the simulator never sends beyond loopback
            client = self._client(server)
            try:
                packet = client.CreateAuthPacket(code=pyrad.packet.AccessRequest)
                for name, value in request.items():
                    packet.AddAttribute(name, value)
                packet.AddAttribute("NAS-IP-Address", self._nas_ip(server))
                packet["User-Password"] = packet.PwCrypt(password)
                return server, client.SendPacket(packet)
            except (pyrad.client.Timeout, OSError):
                continue  # next server, as RouterOS does after its timeout
            finally:
                client._CloseSocket()
        return None

    def _send_accounting(self, session: NasSession, status: str) -> None:
        server = session.radius
        if server is None:
            return
        attrs: dict[str, Any] = self._request_attributes(
            session.service,
            session.username,
            session.session_id,
            session.nas_port,
            session.mac,
            None,
        )
        attrs |= {
            "Acct-Status-Type": status,
            "Acct-Authentic": "RADIUS",
            "NAS-IP-Address": self._nas_ip(server),
            "Framed-IP-Address": session.address,
            "Acct-Delay-Time": 0,
        }
        if status != "Start":
            attrs |= _counters(session)
            attrs["Acct-Session-Time"] = int(session.uptime)
        if status == "Stop":
            attrs["Acct-Terminate-Cause"] = session.ended or "User-Request"
        if self.event_timestamp:
            attrs["Event-Timestamp"] = int(self.epoch + self._clock)
        answered = False
        if _is_loopback(server.address):
            client = self._client(server)
            client.retries = _ACCT_RETRIES
            try:
                packet = client.CreateAcctPacket(code=pyrad.packet.AccountingRequest)
                for name, value in attrs.items():
                    packet.AddAttribute(name, value)
                for raw in session.classes:
                    packet.AddAttribute("Class", raw)
                reply = client.SendPacket(packet)
                answered = reply.code == pyrad.packet.AccountingResponse
            except (pyrad.client.Timeout, OSError):
                answered = False  # lost: RouterOS would keep retrying, the sim gives up
            finally:
                client._CloseSocket()
        self._accounting.append(
            AccountingRecord(
                status, session.username, session.session_id, attrs, answered, self._clock
            )
        )

    # -- CoA / Disconnect listener --------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._round()
            except Exception:  # keep serving, as a router does; the test sees no answer
                time.sleep(_POLL_SECONDS)
            with self._loop_cond:
                self._loops += 1
                self._loop_cond.notify_all()
        self._close_listener()

    def _round(self) -> None:
        self._follow_config()
        sock = self._sock
        if sock is None:
            self._stop.wait(_POLL_SECONDS)
        else:
            readable, _, _ = select.select([sock], [], [], _POLL_SECONDS)
            while readable and not self._stop.is_set():
                try:
                    data, source = sock.recvfrom(_MAX_DATAGRAM)
                except OSError:
                    break
                self._serve(sock, data, source)
                readable, _, _ = select.select([sock], [], [], 0)
        with self._lock:
            if self._realtime:
                now = time.monotonic()
                elapsed, self._last_real = now - self._last_real, now
                self.tick(elapsed * self._realtime)
            self._reconcile()

    def _follow_config(self) -> None:
        """Listen as `/radius/incoming` says, on loopback only."""
        incoming = self._singleton("/radius/incoming")
        want: tuple[str, int] | None = None
        if incoming.get("accept") == "true":
            host = self.router.host if _is_loopback(self.router.host) else "127.0.0.1"
            want = (host, int(incoming.get("port", "3799")))
        if want == self._bound and (want is None or self._sock is not None):
            return
        self._close_listener()
        if want is None or time.monotonic() < self._retry_bind_at:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(want)
        except OSError as exc:
            sock.close()
            self._bind_error = f"cannot listen on {want[0]}:{want[1]}: {exc}"
            self._retry_bind_at = time.monotonic() + 1.0
            return
        sock.settimeout(1.0)
        self._sock, self._bound, self._bind_error = sock, want, None

    def _close_listener(self) -> None:
        sock, self._sock, self._bound = self._sock, None, None
        if sock is not None:
            sock.close()

    @property
    def listen_error(self) -> str | None:
        """Why the CoA listener could not bind, if it could not."""
        return self._bind_error

    def _serve(self, sock: socket.socket, data: bytes, source: tuple[str, int]) -> None:
        after: list[Callable[[], None]] = []
        with self._lock:
            answer = self._answer(data, source, after)
        if answer is not None:
            with contextlib.suppress(OSError):
                sock.sendto(answer, source)
        with self._lock:
            for action in after:  # Stops go out after the ACK, as the cut is done
                action()

    def _answer(
        self, data: bytes, source: tuple[str, int], after: list[Callable[[], None]]
    ) -> bytes | None:
        if len(data) < 20 or data[0] not in (
            pyrad.packet.DisconnectRequest,
            pyrad.packet.CoARequest,
        ):
            self._dropped.append((source, "not a CoA-Request or Disconnect-Request"))
            return None
        key = (source, data[1], data[4:20])
        if key in self._replies:  # a retransmission: the same answer, nothing done again
            return self._replies[key]
        secrets = [
            r.get("secret", "")
            for r in self.router.items("/radius")
            if r.get("address") == source[0] and r.get("disabled") != "true"
        ]
        if not secrets:
            self._dropped.append((source, "sender is no /radius entry"))
            return None
        packet = None
        for secret in secrets:
            try:
                candidate = pyrad.packet.CoAPacket(
                    packet=data, secret=secret.encode("utf-8"), dict=self.dictionary
                )
            except pyrad.packet.PacketError as exc:
                self._dropped.append((source, f"malformed: {exc}"))
                return None
            if candidate.VerifyCoARequest() and (
                not candidate.message_authenticator or candidate.verify_message_authenticator()
            ):
                packet = candidate
                break
        if packet is None:
            self._dropped.append((source, "bad authenticator (wrong secret?)"))
            return None
        attrs = decode_attributes(packet)
        reply = packet.CreateReply()  # an ACK unless changed below
        cause = self._act(packet.code, attrs, after)
        if cause is not None:
            reply.code = (
                pyrad.packet.DisconnectNAK
                if packet.code == pyrad.packet.DisconnectRequest
                else pyrad.packet.CoANAK
            )
            reply.AddAttribute("Error-Cause", cause)
        self._received.append(
            IncomingRequest(code_name(packet.code), attrs, source, code_name(reply.code), cause)
        )
        raw: bytes = reply.ReplyPacket()
        self._replies[key] = raw
        while len(self._replies) > _REPLY_CACHE:
            self._replies.popitem(last=False)
        return raw

    def _act(self, code: int, attrs: Attributes, after: list[Callable[[], None]]) -> int | None:
        """Carry out a Disconnect or CoA; the Error-Cause of a NAK, or None for an ACK."""
        nas_ip = _first(attrs, "NAS-IP-Address")
        if nas_ip is not None and nas_ip not in {
            self._nas_ip(s) for s in self._servers("ppp") + self._servers("hotspot")
        } | {"127.0.0.1"}:
            return NAS_IDENTIFICATION_MISMATCH
        keys = {
            "User-Name": lambda s: s.username,
            "Acct-Session-Id": lambda s: s.session_id,
            "Framed-IP-Address": lambda s: s.address,
        }
        given = {k: str(v[0]) for k, v in attrs.items() if k in keys and v}
        if not given:
            return MISSING_ATTRIBUTE
        # Every session matching all identifying attributes given (unverified: RouterOS
        # may refuse a request matching several with Error-Cause 508).
        self._reconcile()
        matched = [
            s for s in self._sessions.values() if all(keys[k](s) == v for k, v in given.items())
        ]
        if not matched:
            return SESSION_CONTEXT_NOT_FOUND
        if code == pyrad.packet.DisconnectRequest:
            for session in matched:
                self._drop(session, "Admin-Reset")
                after.append(functools.partial(self._stop_accounting, session))
            return None
        for session in matched:
            rate = _first(attrs, "Mikrotik-Rate-Limit")
            if rate is not None:
                session.rate = str(rate)
                self._set_queue(session)
            timeout = _first(attrs, "Session-Timeout")
            if isinstance(timeout, int):  # from now (unverified: or from the login)
                session.session_timeout = timeout or None
                session.timeout_at = self._clock + timeout if timeout else None
        return None


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


class _Refused(Exception):
    """The router refuses a login on its own (after an Accept), e.g. no address left."""


def _first(attrs: Attributes, name: str) -> str | int | None:
    values = attrs.get(name)
    return values[0] if values else None


def _counters(session: NasSession) -> dict[str, int]:
    """Octet counters split into 32-bit values and gigawords, as RADIUS carries them."""
    i, o = session.input_octets, session.output_octets
    return {
        "Acct-Input-Octets": i % _GIGAWORD,
        "Acct-Input-Gigawords": i // _GIGAWORD,
        "Acct-Output-Octets": o % _GIGAWORD,
        "Acct-Output-Gigawords": o // _GIGAWORD,
        # Packets are not simulated: a rough 1,000 bytes each keeps them plausible.
        "Acct-Input-Packets": (i // 1000) % _GIGAWORD,
        "Acct-Output-Packets": (o // 1000) % _GIGAWORD,
    }


def _pool_addresses(ranges: str) -> Iterator[str]:
    for part in ranges.split(","):
        part = part.strip()
        if "-" in part:
            lo, _, hi = part.partition("-")
            a, b = int(ipaddress.IPv4Address(lo.strip())), int(ipaddress.IPv4Address(hi.strip()))
            for n in range(a, b + 1):
                yield str(ipaddress.IPv4Address(n))
        elif "/" in part:
            net = ipaddress.IPv4Network(part, strict=False)
            yield from (str(h) for h in (net.hosts() if net.prefixlen < 31 else net))
        elif part:
            yield str(ipaddress.IPv4Address(part))


def _queue_props(rate: str | None) -> dict[str, str]:
    """A rate-limit (`rx/tx burst threshold time priority min`) as simple-queue fields."""
    if not rate or parse_rate(rate) is None:
        return {}
    fields = ("max-limit", "burst-limit", "burst-threshold", "burst-time", "priority", "limit-at")
    return dict(zip(fields, rate.split(), strict=False))
