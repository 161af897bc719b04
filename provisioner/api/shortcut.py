"""``POST /activations`` by the express lane without FastAPI's routing, dependencies and
thread pool hand-off, which cost about as much CPU as the activation itself.

Measured under ``bench.activations``: matching the path among every API and web route,
solving the route's dependencies and moving to anyio's thread pool were about a third of
a worker's CPU per activation. This ASGI middleware takes only the common request,
answers only when the express lane made the activation, and hands everything else to the
app exactly as it came (the body replayed), so the route stays the one definition of the
endpoint's behaviour, errors and refusals included:

- a reseller's token already verified (``auth.TokenCache``): a token not cached is checked
  by the route, which caches it; the request told to renew a cached entry has the token
  checked again beside it, on the loop's default threads (a refused token is forgotten,
  and its next request goes to the route, which answers the refusal);
- a JSON body that ``ActivationCreate`` accepts, its own idempotency key, payer ``auto``;
- ``activation.express_and_view`` made and committed it, or found the caller's key
  already used for this customer and package (else it kept nothing, and the route is
  told not to try the lane again).

The answer is the route's: 201 (200 for a replay) and the ``ActivationOut`` the same view
builds (``tests/test_express.py`` compares them).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisioner import activation
from provisioner.activation import ActivationRequest
from provisioner.api.deps import bearer_principal, check_token
from provisioner.auth import Unauthorized
from provisioner.context import Context
from provisioner.read import activations
from provisioner.read.models import ActivationOut
from provisioner.schemas import ActivationCreate

log = logging.getLogger(__name__)

DECLINED = "express_declined"  # in the request's state: the route skips the lane
MAX_BODY = 16 * 1024  # an activation's body is a few hundred bytes; more goes to the route
_HEADERS = [(b"content-type", b"application/json")]


class ActivationShortcut:
    def __init__(self, app: ASGIApp, ctx: Context, path: str) -> None:
        self.app = app
        self.ctx = ctx
        self.path = path
        # The lane's own few threads, not the loop's default pool: a worker with fewer
        # activations in flight at once answered more of them, sooner (``bench/README.md``:
        # less waiting for the GIL between round trips, fewer transactions queued on a
        # reseller's account row). Its transactions wait for no lock for long (``express``).
        self.pool = ThreadPoolExecutor(
            ctx.settings.activation_lane_threads, thread_name_prefix="activation-lane"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # returns once the app has shut down
            try:
                await self.app(scope, receive, send)
            finally:
                self.pool.shutdown(wait=True)  # lane transactions are short
            return
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more and size <= MAX_BODY:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([], message, receive), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
        answer = None
        if not more:
            answer = await self._answer(scope, b"".join(chunks))
        if answer is None:
            await self.app(scope, _replay(chunks, None, receive, more), send)
            return
        shown, created = answer
        body = shown.model_dump_json().encode()
        headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        status = 201 if created else 200  # a replay: the route's 200
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope, body: bytes) -> tuple[ActivationOut, bool] | None:
        headers = dict(scope["headers"])
        if not headers.get(b"content-type", b"").startswith(b"application/json"):
            return None
        cached = bearer_principal(
            scope["app"], self.ctx, headers.get(b"authorization", b"").decode("latin-1")
        )
        if cached is None:
            return None
        principal, token, renew = cached
        if renew:  # beside this request, which its cached entry still covers; started
            # before any refusal below, or the claim would be lost and the entry lapse
            asyncio.get_running_loop().run_in_executor(None, self._renew, scope["app"], token)
        if principal.role != "reseller" or principal.read_only:
            return None
        try:
            asked = ActivationCreate.model_validate_json(body)
        except ValidationError:
            return None
        if not asked.idempotency_key or asked.payer != "auto" or asked.card_serial:
            return None
        req = ActivationRequest(asked.customer, asked.package, asked.idempotency_key)

        def run() -> tuple[ActivationOut, bool] | None:
            return activation.express_and_view(
                self.ctx.lane_factory, principal, req,
                lambda s, a, made: activations.view(s, principal, a, made),
            )  # fmt: skip

        answer = await asyncio.get_running_loop().run_in_executor(self.pool, run)
        if answer is None:
            scope.setdefault("state", {})[DECLINED] = True
        return answer

    def _renew(self, app: Any, token: str) -> None:
        try:
            check_token(app, self.ctx, token)
        except Unauthorized:
            pass  # forgotten by the cache: the route refuses the token's next request
        except Exception:  # the entry then expires as if never renewed
            log.warning("a cached token could not be checked again", exc_info=True)


def _replay(chunks: list[bytes], last: Message | None, receive: Receive,
            more: bool = False) -> Receive:  # fmt: skip
    """``receive`` for the app: the messages already read, then the client's own."""
    queue: list[Message] = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    if queue and not more:
        queue[-1]["more_body"] = False
    if last is not None:
        queue.append(last)

    async def replay() -> Any:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
