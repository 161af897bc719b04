"""``OPTIONS`` on any API path: 204 with the methods that path answers in ``Allow``
(RFC 9110 §9.3.7), 404 for a path that does not exist. FastAPI itself answers 405 there,
with an ``Allow`` that names only the first route matched. The paths and their methods
are the app's own OpenAPI schema's."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Receive, Scope, Send

from provisioner.api.limits import answer, answer_json

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


class SingleQuery:
    """A query parameter given twice (``?q=a&q=b``) where one value is declared: 422
    naming it, rather than one of the values taken silently (FastAPI keeps the last)."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app, self.prefix = app, prefix
        self._lists: list[tuple[re.Pattern[str], str, set[str]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"") if scope["type"] == "http" else b""
        if not query or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        names = [unquote_plus(p.split(b"=", 1)[0].decode("latin-1")) for p in query.split(b"&")]
        twice = {n for n in names if n and names.count(n) > 1}
        if twice:
            twice -= self._arrays(scope["app"], scope["path"], scope["method"])
        if twice:
            name = sorted(twice)[0]
            body = {"error": f"{name}: is given more than once", "field": name,
                    "reason": "is given more than once"}  # fmt: skip
            await answer_json(send, 422, body)
            return
        await self.app(scope, receive, send)

    def _arrays(self, app: Any, path: str, method: str) -> set[str]:
        if self._lists is None:
            self._lists = [
                (_pattern(p), m.upper(), {
                    q["name"] for q in op.get("parameters", [])
                    if q.get("in") == "query" and "array" in str(q.get("schema", {}))
                })
                for p, item in app.openapi()["paths"].items()
                for m, op in item.items() if m in _VERBS
            ]  # fmt: skip
        return {
            n for pattern, m, names in self._lists
            if m == method and pattern.fullmatch(path) for n in names
        }  # fmt: skip
