"""``OPTIONS`` on any API path: 204 with the methods that path answers in ``Allow``
(RFC 9110 §9.3.7), 404 for a path that does not exist. FastAPI itself answers 405 there,
with an ``Allow`` that names only the first route matched. The paths and their methods
are the app's own OpenAPI schema's."""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from provisioner.api.limits import answer

_PARAM = re.compile(r"\{([^}:]+)(:path)?\}")


class Options:
    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app, self.prefix = app, prefix
        self._paths: list[tuple[re.Pattern[str], set[str]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "OPTIONS"
            or not path.startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        methods: set[str] = set()
        for pattern, allowed in self._known(scope["app"]):
            if pattern.fullmatch(path):
                methods |= allowed
        if not methods:
            await answer(send, 404, "not found")
            return
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        await send({"type": "http.response.start", "status": 204,
                    "headers": [(b"allow", allow.encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": b""})

    def _known(self, app: Any) -> list[tuple[re.Pattern[str], set[str]]]:
        if self._paths is None:
            self._paths = [
                (_pattern(p), {m.upper() for m in item if m in _VERBS})
                for p, item in app.openapi()["paths"].items()
            ]
        return self._paths


_VERBS = {"get", "put", "post", "delete", "patch", "head"}


def _pattern(template: str) -> re.Pattern[str]:
    """``/api/v1/customers/{username}`` as a regular expression (``{x:path}``: any tail)."""
    out, at = [], 0
    for m in _PARAM.finditer(template):
        out += [re.escape(template[at : m.start()]), ".+" if m.group(2) else "[^/]+"]
        at = m.end()
    return re.compile("".join([*out, re.escape(template[at:])]))
