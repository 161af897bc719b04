"""Run the real Debian FreeRADIUS 3.2 against the application's database, for tests.

``FreeRadius`` installs nothing (see ``scripts/install-freeradius.sh``). It copies the
stock ``/etc/freeradius/3.0`` into a private directory, rewrites the few files that
matter (REFERENCE.md section 5 explains each pitfall) and runs ``freeradius -X`` in the
foreground as a subprocess. Promises:

* FreeRADIUS reads the SAME database as the application: the stock ``rlm_sql`` queries
  on the stock table names (``radcheck``, ``radgroupreply``, ``radusergroup``, ``nas``,
  ``radacct``, ``radpostauth``, ...). The tables must exist before ``start()``; this
  fixture never creates or alters them.
* RADIUS clients come only from the ``nas`` table, read once at start-up; so insert the
  ``nas`` rows first (or restart). Everything else is read per request.
* It listens on 127.0.0.1 only, on two free UDP ports (``auth_port``, ``acct_port``);
  nothing on 1812/1813/18120.
* ``start()`` returns once the server logged "Ready to process requests", or raises
  ``FreeRadiusError`` with the tail of its log. ``stop()`` is idempotent.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Literal

STOCK_RADDB = Path("/etc/freeradius/3.0")
LIBDIR = Path("/usr/lib/freeradius")  # Debian's; also `libdir` in our radiusd.conf
READY_LINE = "Ready to process requests"
# Another process took one of our ports between picking and binding: pick again.
PORT_TAKEN_MARKERS = ("Address already in use", "Failed binding to")

# Milliseconds FreeRADIUS waits for a SQLite lock held by the application (which writes
# the same file concurrently) before the query fails and the login is rejected.
SQLITE_BUSY_TIMEOUT_MS = 5000

# Stock modules the site below needs (symlinked from mods-available). `expr` is needed
# by the sql accounting query expansions; `always` provides ok/reject/fail/noop;
# `attr_filter` filters Access-Reject and Accounting-Response replies.
STOCK_MODULES = (
    "always", "attr_filter", "chap", "expiration", "expr", "mschap", "pap", "preprocess",
)  # fmt: skip


class FreeRadiusError(RuntimeError):
    """FreeRADIUS failed to start or is not installed."""


def freeradius_available() -> bool:
    """True if the FreeRADIUS binary and the stock config to copy are both present."""
    return shutil.which("freeradius") is not None and (STOCK_RADDB / "radiusd.conf").is_file()


def postgresql_driver_available() -> bool:
    """True if ``freeradius-postgresql`` (the rlm_sql_postgresql driver) is installed."""
    return (LIBDIR / "rlm_sql_postgresql.so").exists()


class FreeRadius:
    """One private FreeRADIUS server process. Use as a context manager or start()/stop()."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        dialect: Literal["sqlite", "postgresql"],
        sqlite_path: str | None = None,
        pg: dict | None = None,
        workdir: Path,
    ) -> None:
        if dialect == "sqlite" and not sqlite_path:
            raise ValueError("dialect 'sqlite' needs sqlite_path")
        if dialect == "postgresql" and not pg:
            raise ValueError("dialect 'postgresql' needs pg={host, port, user, password, dbname}")
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported dialect {dialect!r}")
        self.dialect = dialect
        self.sqlite_path = str(Path(sqlite_path).resolve()) if sqlite_path else None
        self.pg = dict(pg) if pg else None
        self.workdir = Path(workdir).resolve()
        self.raddb = self.workdir / "raddb"
        self.log_path = self.workdir / "radiusd.log"
        self.auth_port, self.acct_port = _free_udp_ports(2)
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 15) -> FreeRadius:
        """Write the config, start ``freeradius -X`` and wait until it is ready."""
        if self._proc is not None:
            raise FreeRadiusError("FreeRADIUS already started")
        if not freeradius_available():
            raise FreeRadiusError("FreeRADIUS is not installed (scripts/install-freeradius.sh)")
        if self.sqlite_path and not Path(self.sqlite_path).is_file():
            # rlm_sql_sqlite would silently create an empty file and reject everyone.
            raise FreeRadiusError(f"SQLite database {self.sqlite_path} does not exist")
        for attempt in range(3):
            try:
                return self._start_once(timeout)
            except FreeRadiusError as exc:
                log = self._read_log()
                if attempt == 2 or not any(m in log for m in PORT_TAKEN_MARKERS):
                    raise exc
                self.auth_port, self.acct_port = _free_udp_ports(2)
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> FreeRadius:
        self.write_config()
        began = time.monotonic()
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                ["freeradius", "-X", "-d", str(self.raddb)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise FreeRadiusError(f"FreeRADIUS exited with {code}:\n{self.log_tail()}")
            if READY_LINE in self._read_log():
                self.startup_seconds = time.monotonic() - began
                return self
            time.sleep(0.02)
        self.stop()
        raise FreeRadiusError(f"FreeRADIUS not ready after {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 5 s). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, n: int = 80) -> str:
        """The last ``n`` lines of the server's output (it logs everything under -X)."""
        return "\n".join(self._read_log().splitlines()[-n:])

    def _read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> FreeRadius:
        return self.start() if self._proc is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ configuration

    def write_config(self) -> None:
        """(Re)create ``workdir/raddb`` from the stock config plus our changes."""
        if self.raddb.exists():
            shutil.rmtree(self.raddb)
        self.workdir.mkdir(parents=True, exist_ok=True)
        for sub in ("log", "run"):
            (self.workdir / sub).mkdir(exist_ok=True)
        # symlinks=True keeps mods-enabled -> ../mods-available links relative.
        shutil.copytree(STOCK_RADDB, self.raddb, symlinks=True)
        # radiusd refuses a world-writable config dir; keep it private.
        os.chmod(self.raddb, 0o750)

        # Only our site and our modules: the stock `eap` needs certificates and the
        # stock `inner-tunnel` site listens on 127.0.0.1:18120.
        for sub in ("sites-enabled", "mods-enabled"):
            for entry in (self.raddb / sub).iterdir():
                entry.unlink()
        for name in STOCK_MODULES:
            (self.raddb / "mods-enabled" / name).symlink_to(Path("..", "mods-available", name))

        (self.raddb / "radiusd.conf").write_text(self._radiusd_conf())
        (self.raddb / "clients.conf").write_text(_CLIENTS_CONF)
        (self.raddb / "mods-enabled" / "sql").write_text(self._sql_conf())
        (self.raddb / "sites-enabled" / "provisioner").write_text(self._site_conf())
        if self.dialect == "sqlite":
            _fix_sqlite_simul_verify(
                self.raddb / "mods-config" / "sql" / "main" / "sqlite" / "queries.conf"
            )

    def _radiusd_conf(self) -> str:
        return _RADIUSD_CONF.format(
            raddb=_q(str(self.raddb)),
            logdir=_q(str(self.workdir / "log")),
            run_dir=_q(str(self.workdir / "run")),
            libdir=_q(str(LIBDIR)),
        )

    def _site_conf(self) -> str:
        return _SITE_CONF.format(auth_port=self.auth_port, acct_port=self.acct_port)

    def _sql_conf(self) -> str:
        if self.dialect == "sqlite":
            assert self.sqlite_path is not None
            connection = (
                f"\tsqlite {{\n"
                f"\t\tfilename = {_q(self.sqlite_path)}\n"
                f"\t\tbusy_timeout = {SQLITE_BUSY_TIMEOUT_MS}\n"
                f"\t}}\n"
            )
        else:
            assert self.pg is not None
            # rlm_sql_postgresql passes a radius_db containing "=" to libpq as the
            # conninfo string itself, so quoting and an empty password stay in our hands.
            connection = (
                f"\tradius_db = {_q(_pg_conninfo(self.pg))}\n"
                f"\tpostgresql {{\n\t\tsend_application_name = yes\n\t}}\n"
            )
        return _SQL_CONF.format(dialect=self.dialect, connection=connection)


# ---------------------------------------------------------------------------- helpers


def _free_udp_ports(count: int) -> list[int]:
    """Ports the kernel reports free on 127.0.0.1 (all held open together, so distinct)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


try:
    # Loaded here, in the parent: only async-signal-safe work may run between fork and
    # exec when other threads (e.g. a CoaServer) exist.
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the test process dies, even by
    SIGKILL, so no stray server keeps running (Linux prctl PR_SET_PDEATHSIG)."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG; best effort


def _q(value: str) -> str:
    """A double-quoted FreeRADIUS config string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pg_conninfo(pg: dict) -> str:
    def quote(v: object) -> str:
        return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"

    parts = [
        f"host={quote(pg.get('host', '127.0.0.1'))}",
        f"port={quote(pg.get('port', 5432))}",
        f"user={quote(pg.get('user', 'postgres'))}",
        f"dbname={quote(pg['dbname'])}",
    ]
    if pg.get("password"):
        parts.append(f"password={quote(pg['password'])}")
    return " ".join(parts)


def _fix_sqlite_simul_verify(path: Path) -> None:
    """Debian 3.2.1's SQLite simul_verify_query filters on the group attribute instead
    of the user name, so Simultaneous-Use never rejects (REFERENCE.md section 5)."""
    text = path.read_text()
    bad = "WHERE username = '%{${group_attribute}}'"
    if bad in text:
        path.write_text(text.replace(bad, "WHERE username = '%{SQL-User-Name}'"))


# Our own radiusd.conf instead of the stock one: everything under workdir, no
# user/group (runs as root, so it can write a root-owned SQLite file; as `freerad` a
# failing radpostauth insert turns Accepts into Rejects), no proxy.conf, no checkrad
# (Simultaneous-Use would probe the NAS by SNMP/telnet; /bin/false = "still online",
# i.e. trust radacct), no reject delay (default 1 s per reject).
_RADIUSD_CONF = """\
# Generated by tests/support/freeradius.py - private test server.
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = ${{exec_prefix}}/sbin
logdir = {logdir}
raddbdir = {raddb}
radacctdir = ${{logdir}}/radacct
name = freeradius
confdir = ${{raddbdir}}
modconfdir = ${{confdir}}/mods-config
certdir = ${{confdir}}/certs
cadir = ${{confdir}}/certs
run_dir = {run_dir}
db_dir = ${{raddbdir}}
libdir = {libdir}
pidfile = ${{run_dir}}/${{name}}.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no

log {{
	destination = files
	colourise = no
	file = ${{logdir}}/radius.log
	stripped_names = no
	auth = yes
	auth_badpass = no
	auth_goodpass = no
}}

checkrad = /bin/false

security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}}

proxy_requests = no
$INCLUDE clients.conf

thread pool {{
	start_servers = 1
	max_servers = 4
	min_spare_servers = 1
	max_spare_servers = 2
	max_requests_per_server = 0
	auto_limit_acct = no
}}

modules {{
	$INCLUDE mods-enabled/
}}

instantiate {{
}}

policy {{
	$INCLUDE policy.d/
}}

$INCLUDE sites-enabled/
"""

# No clients here on purpose: a clients.conf entry for 127.0.0.1 would shadow the
# `nas` row for the same address (FreeRADIUS ignores the SQL one with a log line).
_CLIENTS_CONF = """\
# Generated by tests/support/freeradius.py - clients come from the SQL `nas` table.
"""

_SQL_CONF = """\
# Generated by tests/support/freeradius.py.
sql {{
	dialect = "{dialect}"
	# The stock value is rlm_sql_null, which silently returns nothing.
	driver = "rlm_sql_${{dialect}}"
{connection}
	# no `bootstrap`: it would create a database when the path is missing.

	acct_table1 = "radacct"
	acct_table2 = "radacct"
	postauth_table = "radpostauth"
	authcheck_table = "radcheck"
	groupcheck_table = "radgroupcheck"
	authreply_table = "radreply"
	groupreply_table = "radgroupreply"
	usergroup_table = "radusergroup"
	delete_stale_sessions = yes

	pool {{
		start = 1
		min = 1
		max = 4
		spare = 1
		uses = 0
		retry_delay = 1
		lifetime = 0
		idle_timeout = 60
	}}

	# RADIUS clients (routers) come from the `nas` table, read at start-up only.
	read_clients = yes
	client_table = "nas"

	group_attribute = "SQL-Group"

	$INCLUDE ${{modconfdir}}/${{.:name}}/main/${{dialect}}/queries.conf
}}
"""

_SITE_CONF = """\
# Generated by tests/support/freeradius.py.
server provisioner {{
	listen {{
		type = auth
		ipaddr = 127.0.0.1
		port = {auth_port}
	}}
	listen {{
		type = acct
		ipaddr = 127.0.0.1
		port = {acct_port}
	}}

	authorize {{
		preprocess
		sql
		expiration
		# PPPoE clients log in with CHAP or MS-CHAPv2 as often as PAP (RouterOS offers all
		# of them); each module claims its own requests, with Cleartext-Password from SQL.
		chap
		mschap
		pap
	}}

	authenticate {{
		Auth-Type PAP {{
			pap
		}}
		Auth-Type CHAP {{
			chap
		}}
		Auth-Type MS-CHAP {{
			mschap
		}}
	}}

	preacct {{
		preprocess
		# radacct.acctuniqueid is UNIQUE NOT NULL: the stock accounting queries need it.
		acct_unique
	}}

	accounting {{
		sql
		attr_filter.accounting_response
	}}

	# Simultaneous-Use counts open sessions in radacct.
	session {{
		sql
	}}

	post-auth {{
		# radpostauth log. `fail = 1` makes a failed insert non-fatal: by default a
		# failing module here turns the Access-Accept into an Access-Reject.
		sql {{
			fail = 1
		}}
		if (fail) {{
			ok
		}}
		# Debian's 3.2.1 sends no Message-Authenticator in replies; RouterOS 7.15+
		# drops such replies. A 0x00 placeholder makes FreeRADIUS sign the reply.
		update reply {{
			&Message-Authenticator := 0x00
		}}

		Post-Auth-Type REJECT {{
			sql {{
				fail = 1
			}}
			attr_filter.access_reject
			update reply {{
				&Message-Authenticator := 0x00
			}}
		}}
	}}
}}
"""
