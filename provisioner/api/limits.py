"""Request bodies: refused unread without a bearer token, and refused past their limit
while they are read, so nobody makes the API parse megabytes for free.

Every body the API takes comes with a token (there is no anonymous write), so a request
without one is answered 401 before any of its body is read. A body larger than its limit
(``Content-Length``, or counted while reading a chunked one) is answered 413: JSON
``MAX_JSON``, the CSV import ``MAX_CSV`` (README, "Limits").
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from provisioner.api.errors import error_body

MAX_JSON = 1024 * 1024  # an activation is a few hundred bytes; a master package, a few KB
MAX_CSV = 4 * 16 * 1024 * 1024  # bytes: the import's 16 Mi characters, 4 bytes each at most
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class BodyLimit:
    def __init__(self, app: ASGIApp, prefix: str, limits: dict[str, int]) -> None:
        self.app, self.prefix, self.limits = app, prefix, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] not in BODY_METHODS
            or not path.startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            await answer(send, 401, "a bearer token is required (Authorization: Bearer <token>)",
                          {"www-authenticate": "Bearer"})  # fmt: skip
            return
        limit = self.limits.get(path, MAX_JSON)
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await answer(send, 413, f"the body is larger than {limit} bytes")
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # FastAPI passes an HTTPException through as it is
                    raise HTTPException(413, f"the body is larger than {limit} bytes")
            return message

        await self.app(scope, counted, send)


async def answer(send: Send, status: int, reason: str, extra: dict[str, str] | None = None) -> None:
    await answer_json(send, status, error_body(None, reason), extra)


async def answer_json(
    send: Send, status: int, content: dict[str, Any], extra: dict[str, str] | None = None
) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
