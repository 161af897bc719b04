"""Real stand-ins for an ISP's message channels: an SMTP server (aiosmtpd) and an SMS
gateway (an HTTP server taking apprise's generic JSON), both on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Smtp:
    """Mail as received: (to, subject, plain-text body)."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], str, str]] = []
        me = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                part = msg.get_body(preferencelist=("plain",))
                text = part.get_content() if part is not None else ""
                me.mails.append((list(envelope.rcpt_tos), str(msg["subject"]), text.strip()))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=noc@isp.example&to={{email}}&mode=insecure"

    def close(self) -> None:
        self.controller.stop()


class SmsGateway:
    """POSTs as received (apprise's json:// body: title, message, and our ``to``)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        me = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                me.posts.append(json.loads(raw))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/sms?:to={{phone}}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
