"""A CoA / Disconnect server (RFC 5176) on loopback, standing in for a router's
``/radius incoming`` port in tests.

Built on ``pyrad.server.Server``, so requests are decoded and their Request
Authenticator verified by pyrad exactly as a strict NAS would: a request signed with the
wrong secret is dropped (the client then times out). Promises:

* ``received`` lists every valid request, in arrival order, as
  ``(code_name, {attribute: [values]})`` - recorded *before* the reply is sent, so a
  caller that got its reply can assert on it at once. Silent-mode requests (and their
  retransmissions) are recorded too.
* Replies ACK by default; ``nak = True`` answers NAK with ``Error-Cause = error_cause``
  (503, Session-Context-Not-Found, unless changed); ``silent = True`` answers nothing.
* ``stop()`` ends the serving thread and closes the socket; usable as a context manager.
"""

from __future__ import annotations

import logging
import select
import threading
from types import TracebackType

import pyrad.packet
import pyrad.server

from nas_adapters.radius_client import code_name, decode_attributes, load_dictionary

logger = logging.getLogger(__name__)

Recorded = tuple[str, dict[str, list[str | int]]]

# How often the serving loop checks the stop flag. pyrad's own Run() blocks in poll()
# forever and never returns, so we run our own loop around pyrad's packet handling.
_POLL_SECONDS = 0.05


class CoaServer(pyrad.server.Server):
    """Answers CoA-Request / Disconnect-Request from ``client_address`` signed with ``secret``."""

    def __init__(
        self,
        secret: str = "s3cret",
        *,
        address: str = "127.0.0.1",
        client_address: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(
            addresses=[],
            coaport=port,  # 0: the kernel picks a free port, read back below (no race)
            hosts={
                client_address: pyrad.server.RemoteHost(
                    client_address, secret.encode("utf-8"), "provisioner-test"
                )
            },
            dict=load_dictionary(),
            auth_enabled=False,
            acct_enabled=False,
            coa_enabled=True,
        )
        self.BindToAddress(address)
        self.host: str = address
        self.port: int = self.coafds[0].getsockname()[1]
        self.nak: bool = False
        self.silent: bool = False
        self.error_cause: int = 503
        self._received: list[Recorded] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ recording

    @property
    def received(self) -> list[Recorded]:
        """A snapshot of the requests received so far (safe to read from any thread)."""
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self._received.clear()

    # ------------------------------------------------------------------ pyrad handlers

    def HandleCoaPacket(self, pkt: pyrad.packet.CoAPacket) -> None:
        self._answer(pkt, pyrad.packet.CoANAK)

    def HandleDisconnectPacket(self, pkt: pyrad.packet.CoAPacket) -> None:
        self._answer(pkt, pyrad.packet.DisconnectNAK)

    def _answer(self, pkt: pyrad.packet.CoAPacket, nak_code: int) -> None:
        with self._lock:
            self._received.append((code_name(pkt.code), decode_attributes(pkt)))
        if self.silent:
            return
        reply = self.CreateReplyPacket(pkt)  # CoA-ACK or Disconnect-ACK
        if self.nak:
            reply.code = nak_code
            reply.AddAttribute("Error-Cause", self.error_cause)
        self.SendReplyPacket(pkt.fd, reply)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> CoaServer:
        """Serve in a daemon thread; returns self."""
        if self._thread is not None:
            raise RuntimeError("CoaServer already started")
        self._thread = threading.Thread(target=self._serve, name="coa-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wait for the thread and close the socket. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for fd in self.coafds:
            fd.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select(self.coafds, [], [], _POLL_SECONDS)
            for fd in readable:
                try:
                    # pyrad's own dispatch: decode, known-host + authenticator checks,
                    # then HandleCoaPacket / HandleDisconnectPacket.
                    self._ProcessInput(fd)
                except (pyrad.server.ServerPacketError, pyrad.packet.PacketError):
                    pass  # dropped, as a NAS drops unknown or badly signed requests
                except Exception:
                    # Keep serving like pyrad's Run() does; the test will see no reply.
                    logger.exception("CoaServer: error handling a request")

    def __enter__(self) -> CoaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
