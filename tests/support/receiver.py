"""A real HTTP receiver of webhooks on 127.0.0.1: it verifies every signature with the
``standardwebhooks`` verifier, can fail its first N requests or hang, and records all."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


@dataclass
class Received:
    webhook_id: str
    body: dict[str, Any]
    verified: bool
    answered: int


@dataclass
class Receiver:
    secret: str = ""
    fail_first: int = 0
    hang: threading.Event | None = None  # requests wait for it to be set
    refuse: int = 0  # answer every request with this status (a 4xx: a refusal)
    got: list[Received] = field(default_factory=list)
    waiting: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        me = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                if me.hang is not None:
                    with me.lock:
                        me.waiting += 1
                    me.hang.wait(60)
                    with me.lock:
                        me.waiting -= 1
                try:
                    Webhook(me.secret).verify(raw, dict(self.headers.items()))
                    ok = True
                except Exception:  # noqa: BLE001 - recorded: the test asserts on it
                    ok = False
                with me.lock:
                    n = len(me.got)
                    code = 500 if n < me.fail_first or not ok else (me.refuse or 204)
                    me.got.append(Received(self.headers.get("webhook-id", ""),
                                           json.loads(raw or b"{}"), ok, code))  # fmt: skip
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.got if r.answered < 300]

    def close(self) -> None:
        if self.hang is not None:
            self.hang.set()
        self.server.shutdown()
        self.server.server_close()
