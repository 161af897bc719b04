"""RouterOS over its API (librouteros): the only module that talks to real routers.

One connection per router per sync, one ``print`` per menu with ``.proplist``, one
command per change; vendor exceptions become the project's own NAS errors here.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import librouteros
from librouteros.exceptions import (
    ConnectionClosed,
    FatalError,
    LibRouterosError,
    MultiTrapError,
    TrapError,
)

from nas_adapters.base import Applied
from nas_adapters.errors import NasError, PermanentNasError, TemporaryNasError
from provisioner.mapping.menus import ALWAYS_READ, SINGLETONS
from provisioner.planning.plan import Action, Change, ObservedObject


class _ReadAhead:
    """The router's socket, read 64 KiB at a time. librouteros asks for every length
    byte and every word separately: without this a 2,000-row print is some 35,000
    ``recv`` calls. Everything else goes to the socket itself."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        if self._pos >= len(self._buf):
            self._buf, self._pos = self._sock.recv(max(size, 65536)), 0
        chunk = self._buf[self._pos : self._pos + size]
        self._pos += len(chunk)
        return chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _trap_text(exc: TrapError | MultiTrapError) -> tuple[str, int | None]:
    if isinstance(exc, MultiTrapError):
        return "; ".join(t.message for t in exc.traps), exc.traps[0].category
    return exc.message, exc.category


class RouterOSAdapter:
    """A router reached with librouteros. Credentials are used, never logged."""

    def __init__(
        self,
        name: str,
        host: str,
        username: str,
        password: str,
        *,
        port: int = 8728,
        tls: bool = False,
        tls_verify: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._tls = tls
        self._tls_verify = tls_verify
        self._timeout = timeout
        self._api: Any = None

    def __repr__(self) -> str:
        return f"RouterOSAdapter({self.name!r}, {self._host}:{self._port})"

    def _connect(self) -> Any:
        if self._api is not None:
            return self._api
        kw: dict[str, Any] = {"port": self._port, "timeout": self._timeout}
        wrap: Any = None
        if self._tls:
            ctx = ssl.create_default_context()
            if not self._tls_verify:
                # Routers ship self-signed certificates; verification is opt-in per config.
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            wrap = ctx.wrap_socket
        # librouteros's one hook on its socket (meant for TLS) also lets us buffer reads.
        kw["ssl_wrapper"] = lambda sock: _ReadAhead(wrap(sock) if wrap else sock)
        try:
            self._api = librouteros.connect(
                self._host, self._username, self._password, encoding="utf-8", **kw
            )
        except TrapError as exc:
            msg, cat = _trap_text(exc)
            raise PermanentNasError(f"login refused: {msg}", nas=self.name, category=cat) from exc
        except (OSError, ConnectionClosed, FatalError, LibRouterosError) as exc:
            raise TemporaryNasError(
                f"cannot connect to {self._host}:{self._port}: {exc or type(exc).__name__}",
                nas=self.name,
            ) from exc
        return self._api

    def _translate(self, exc: Exception, menu: str, key: str, doing: str) -> NasError:
        if isinstance(exc, TrapError | MultiTrapError):
            msg, cat = _trap_text(exc)
            return PermanentNasError(
                f"{doing}: {msg}", nas=self.name, menu=menu, key=key, category=cat
            )
        self.close()
        text = str(exc) or type(exc).__name__
        return TemporaryNasError(
            f"{doing}: connection lost: {text}", nas=self.name, menu=menu, key=key
        )

    def read(
        self,
        menus: Mapping[str, Sequence[str]],
        where: Mapping[str, Mapping[str, str]] | None = None,
    ) -> dict[str, list[ObservedObject]]:
        api = self._connect()
        out: dict[str, list[ObservedObject]] = {}
        for menu, props in menus.items():
            words = ["=.proplist=" + ",".join(dict.fromkeys([*ALWAYS_READ, *props]))]
            words += [f"?{k}={v}" for k, v in (where or {}).get(menu, {}).items()]
            try:
                rows = tuple(api.rawCmd(f"{menu}/print", *words))
            except (LibRouterosError, OSError) as exc:
                raise self._translate(exc, menu, "", "print") from exc
            out[menu] = [
                ObservedObject(
                    menu, str(r.get(".id", "")), {k: v for k, v in r.items() if k != ".id"}
                )
                for r in rows
            ]
        return out

    def apply(self, changes: Sequence[Change]) -> Iterator[Applied]:
        api = self._connect()
        for change in changes:
            path = api.path(*change.menu.strip("/").split("/"))
            values = change.new_values()
            try:
                if change.action is Action.add:
                    new_id = path.add(**values)
                    yield Applied(change, new_id or None)
                elif change.action is Action.set:
                    if change.menu in SINGLETONS:
                        path.update(**values)
                    else:
                        path.update(**{".id": change.ros_id, **values})
                    yield Applied(change, change.ros_id)
                elif change.action is Action.remove:
                    path.remove(change.ros_id)
                    yield Applied(change, change.ros_id)
                elif change.action is Action.move:
                    tuple(path("move", numbers=change.ros_id, destination=values["destination"]))
                    yield Applied(change, change.ros_id)
            except (TrapError, MultiTrapError) as exc:
                refused = self._translate(exc, change.menu, change.key, str(change.action))
                yield Applied(change, change.ros_id, error=str(refused))
            except (LibRouterosError, OSError) as exc:
                raise self._translate(exc, change.menu, change.key, str(change.action)) from exc

    def close(self) -> None:
        if self._api is not None:
            # Closing a broken socket must not mask the error that broke it.
            with contextlib.suppress(Exception):
                self._api.close()
            self._api = None
