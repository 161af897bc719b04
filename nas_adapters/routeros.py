"""RouterOS over its API (librouteros): the only module that talks to real routers.

One connection per router per sync, one ``print`` per menu with ``.proplist``, one
command per change; vendor exceptions become the project's own NAS errors here.

Writes are pipelined: RouterOS runs a connection's commands in order and echoes each
command's ``.tag`` on its replies, so up to ``pipeline`` tagged commands are in flight at
once and each reply is matched to its command by tag. librouteros encodes the words and
sentences (``compose_word``, ``encode_sentence``) and decodes lengths and values
(``decode_length``, ``parse_word``); its ``Api`` reads one command's reply at a time and
cannot parse the ``.tag`` word, so replies are read here, whole sentences at a time from
a read-ahead buffer (a print's 20,000 words without a call per byte).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import librouteros
from librouteros.exceptions import (
    ConnectionClosed,
    FatalError,
    LibRouterosError,
    MultiTrapError,
    ProtocolError,
    TrapError,
)
from librouteros.protocol import (
    compose_word,
    decode_length,
    determine_length,
    encode_sentence,
    parse_word,
)

from nas_adapters.base import Applied
from nas_adapters.errors import NasError, PermanentNasError, TemporaryNasError
from provisioner.mapping.menus import ALWAYS_READ, SINGLETONS
from provisioner.planning.plan import WAIT, Action, Change, ObservedObject, Sequencer


class _ReadAhead:
    """The router's socket, read 64 KiB at a time. librouteros asks for every length
    byte and every word separately: without this a 2,000-row print is some 35,000
    ``recv`` calls. Everything else goes to the socket itself."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._text: str | None = ""  # the buffer decoded, when it is all ASCII
        self._pos = 0

    def recv(self, size: int) -> bytes:
        if self._pos >= len(self._buf):
            self._buf, self._pos = self._sock.recv(max(size, 65536)), 0
            # Replies are ASCII but for non-ASCII names and comments: decoded once here,
            # a sentence's words are then slices of text.
            self._text = self._buf.decode("ascii") if self._buf.isascii() else None
        chunk = self._buf[self._pos : self._pos + size]
        self._pos += len(chunk)
        return chunk

    def sentence(self, encoding: str) -> list[str]:
        """One whole sentence's words, decoded straight from the buffer (librouteros's
        length rules; a 2,000-row print is 20,000 words, each read here without a call
        per length byte)."""
        words: list[str] = []
        while True:
            # Fast path: the words whose one-byte lengths and bytes are all in the buffer,
            # in one tight loop, as slices of the decoded buffer when it is ASCII.
            buf, text, pos = self._buf, self._text, self._pos
            end = len(buf)
            while pos < end:
                n = buf[pos]
                if n >= 0x80 or n == 0 or pos + 1 + n > end:
                    break
                pos += 1
                if text is not None:
                    words.append(text[pos : pos + n])
                else:
                    words.append(buf[pos : pos + n].decode(encoding, errors="ignore"))
                pos += n
            self._pos = pos
            if pos < end and buf[pos] == 0:
                self._pos = pos + 1
                return words
            # A long word, or one not all in the buffer yet: word by word.
            first = self._exact(1)
            more = determine_length(first)
            n = decode_length(first + self._exact(more)) if more else first[0]
            if n == 0:
                return words
            words.append(self._exact(n).decode(encoding, errors="ignore"))

    def _exact(self, size: int) -> bytes:
        out = b""
        while len(out) < size:
            chunk = self.recv(size - len(out))
            if not chunk:
                raise ConnectionClosed("Connection unexpectedly closed.")
            out += chunk
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _read_sentence(api: Any) -> tuple[str, list[str]]:
    """The next reply sentence: its reply word and its other words (``!fatal`` raises,
    as librouteros's ``readSentence`` does)."""
    words = api.protocol.transport.sock.sentence(api.protocol.encoding)
    if words[0] == "!fatal":
        api.protocol.transport.close()
        raise FatalError(words[1] if len(words) > 1 else "")
    return words[0], words[1:]


def _trap_text(exc: TrapError | MultiTrapError) -> tuple[str, int | None]:
    if isinstance(exc, MultiTrapError):
        return "; ".join(t.message for t in exc.traps), exc.traps[0].category
    return exc.message, exc.category


def _trap_of(words: Sequence[str]) -> TrapError:
    attrs = dict(parse_word(w) for w in words if w.startswith("="))
    category = attrs.get("category")
    return TrapError(str(attrs.get("message", "")), category if isinstance(category, int) else None)


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
        pipeline: int = 64,
    ) -> None:
        self.name = name
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._tls = tls
        self._tls_verify = tls_verify
        self._timeout = timeout
        self._pipeline = max(1, pipeline)
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

        def hook(sock: Any) -> _ReadAhead:
            # A burst's tail must not wait for the ACK of its head (Nagle).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return _ReadAhead(wrap(sock) if wrap else sock)

        # librouteros's one hook on its socket (meant for TLS) also lets us buffer reads.
        kw["ssl_wrapper"] = hook
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
        # Every print at once, tagged by its menu's position; replies come back in order.
        asked = list(menus.items())
        burst = []
        for n, (menu, props) in enumerate(asked):
            words = ["=.proplist=" + ",".join(dict.fromkeys([*ALWAYS_READ, *props]))]
            words += [f"?{k}={v}" for k, v in (where or {}).get(menu, {}).items()]
            words.append(f".tag={n}")
            burst.append(encode_sentence(f"{menu}/print", *words, encoding=api.protocol.encoding))
        out: dict[str, list[ObservedObject]] = {}
        menu = asked[0][0] if asked else ""
        try:
            if burst:
                api.protocol.transport.write(b"".join(burst))
            for n, (menu, _) in enumerate(asked):
                out[menu] = self._rows(api, menu, str(n))
        except (LibRouterosError, OSError) as exc:
            # Later prints' replies are still on the wire: this connection is done.
            error = self._translate(exc, menu, "", "print")
            self.close()
            raise error from exc
        return out

    @staticmethod
    def _rows(api: Any, menu: str, tag: str) -> list[ObservedObject]:
        """The rows of one tagged print, values as the router sent them (text: no casting
        to int or bool and back)."""
        rows: list[ObservedObject] = []
        traps: list[TrapError] = []
        want = f".tag={tag}"
        while True:
            word, raw = _read_sentence(api)
            if want not in raw:
                got = next((w for w in raw if w.startswith(".tag=")), None)
                raise ProtocolError(f"reply {got!r} while waiting for {want}")
            if word == "!re":
                props = dict([w[1:].split("=", 1) for w in raw if w[0] == "="])
                rows.append(ObservedObject(menu, props.pop(".id", ""), props))
            elif word == "!trap":
                traps.append(_trap_of(raw))
            elif word == "!done":
                if traps:
                    raise traps[0] if len(traps) == 1 else MultiTrapError(*traps)
                return rows

    def apply(self, changes: Sequence[Change]) -> Iterator[Applied]:
        api = self._connect()
        seq = Sequencer()
        todo = deque(changes)
        # (tag, change as sent, change as planned), oldest first: RouterOS answers in order.
        flight: deque[tuple[str, Change, Change]] = deque()
        tag = 0
        low = self._pipeline // 2
        while todo or flight:
            # Top up once half the window is answered (bursts, not a write per reply), or
            # when nothing is in flight at all.
            if len(flight) <= low:
                burst: list[bytes] = []
                while todo and len(flight) < self._pipeline:
                    step = seq.next_step(todo[0])
                    if step == WAIT:
                        break
                    planned = todo.popleft()
                    if isinstance(step, str):
                        yield Applied(planned, planned.ros_id, error=step, held_back=True)
                        continue
                    tag += 1
                    burst.append(self._sentence(api, step, str(tag)))
                    flight.append((str(tag), step, planned))
                if burst:
                    try:
                        api.protocol.transport.write(b"".join(burst))
                    except (LibRouterosError, OSError) as exc:
                        c = flight[0][1]
                        raise self._translate(exc, c.menu, c.key, str(c.action)) from exc
            if not flight:
                continue
            want, sent, planned = flight.popleft()
            try:
                ret, traps = self._reply(api, want)
            except (LibRouterosError, OSError) as exc:
                raise self._translate(exc, sent.menu, sent.key, str(sent.action)) from exc
            seq.answered(sent, ret, refused=bool(traps))
            if traps:
                exc = traps[0] if len(traps) == 1 else MultiTrapError(*traps)
                refused = self._translate(exc, sent.menu, sent.key, str(sent.action))
                yield Applied(planned, sent.ros_id, error=str(refused))
            elif sent.action is Action.add:
                yield Applied(planned, ret or None)
            else:
                yield Applied(planned, sent.ros_id)

    @staticmethod
    def _sentence(api: Any, change: Change, tag: str) -> bytes:
        values = change.new_values()
        verb = str(change.action)
        words: list[str] = []
        if change.action is Action.set and change.menu not in SINGLETONS:
            words.append(compose_word(".id", change.ros_id or ""))
        elif change.action is Action.remove:
            words.append(compose_word(".id", change.ros_id or ""))
            values = {}
        elif change.action is Action.move:
            words.append(compose_word("numbers", change.ros_id or ""))
        words += [compose_word(k, v) for k, v in values.items()]
        words.append(f".tag={tag}")
        return encode_sentence(f"{change.menu}/{verb}", *words, encoding=api.protocol.encoding)

    @staticmethod
    def _reply(api: Any, tag: str) -> tuple[str | None, list[TrapError]]:
        """Read the reply sentences of the command tagged ``tag`` up to its ``!done``: the
        ``ret`` id (of an add) and its traps. A reply of another tag breaks the pairing."""
        traps: list[TrapError] = []
        ret: str | None = None
        while True:
            word, raw = _read_sentence(api)
            got = next((w[5:] for w in raw if w.startswith(".tag=")), None)
            if got != tag:
                raise ProtocolError(f"reply tagged {got!r} while waiting for {tag!r}")
            if word == "!trap":
                traps.append(_trap_of(raw))
            elif word == "!done":
                attrs = dict(parse_word(w) for w in raw if w.startswith("="))
                if "ret" in attrs:
                    ret = str(attrs["ret"])
                return ret, traps

    def close(self) -> None:
        if self._api is not None:
            # Closing a broken socket must not mask the error that broke it.
            with contextlib.suppress(Exception):
                self._api.close()
            self._api = None
