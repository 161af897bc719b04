"""The request handler of every route of the API and the panels: FastAPI's own steps (the
body read, the dependencies solved in FastAPI's order, the endpoint, the answer checked
against its model), with what does not change between requests worked out once per route.

FastAPI 0.16x works out each dependency's kind (coroutine, generator, plain function),
its cache key and its security scopes again on every request, and builds a telemetry
span and the endpoint's error context whether or not they are used: under
``bench.activations`` that was about half of FastAPI's CPU per request (counted in
instructions, ``bench/README.md``). Here each route's dependency tree is planned when the
route is built, and a request runs the plan: same values, same order, same errors
(``RequestValidationError`` with FastAPI's error list), same answer.

A route keeps FastAPI's handler, whole, for what the plan does not cover: a form or
streamed body or answer, security scopes, background tasks, a dependency with a
concurrency limit or an ``async`` generator; and a request keeps it while the app has
dependency overrides (tests) or FastAPI's OpenTelemetry instrumentation is on. If this
FastAPI's internals are not the ones planned for, every route keeps FastAPI's handler.
``PROVISIONER_API_LEAN_HANDLER=0`` in a worker's environment does that too.
"""

from __future__ import annotations

import email.message
import json
import logging
import os
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import params
from fastapi.concurrency import contextmanager_in_threadpool, run_in_threadpool
from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import RequestValidationError
from fastapi.utils import is_body_allowed_for_status_code
from pydantic_core import PydanticUndefined
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]

try:  # FastAPI's own helpers, as its handler uses them (private: checked at import)
    from fastapi._body_limit import get_body_limit_error
    from fastapi.dependencies.models import (
        _get_computed_scope,
        _is_async_gen_callable,
        _is_coroutine_callable,
        _is_gen_callable,
    )
    from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
    from fastapi.routing import (
        _effective_route_context_var,
        _extract_endpoint_context,
        serialize_response,
    )
    from fastapi.sse import EventSourceResponse
    from fastapi.telemetry import get_telemetry_data
    from fastapi.telemetry._api import _validation_failed
    from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

    AVAILABLE = True
except ImportError as exc:  # another FastAPI: its own handler for every route
    log.info("the lean request handler is off (%s): FastAPI's handles every route", exc)
    AVAILABLE = False


# Read per request, so a test can compare both handlers on one app.
ACTIVE = os.environ.get("PROVISIONER_API_LEAN_HANDLER", "1").lower() not in ("0", "false", "no")


class Unplanned(Exception):
    """The route needs something the plan does not cover: FastAPI's handler keeps it."""


@dataclass
class Node:
    """One dependency (or the endpoint itself) and what it takes, worked out once."""

    call: Callable[..., Any]
    name: str | None
    kind: str  # "coroutine", "generator" or "sync"
    cache_key: tuple[Any, str]
    use_cache: bool
    function_scope: bool  # a generator's exit at the endpoint's end, not the answer's
    subs: list[Node] = field(default_factory=list)
    # (fields, where): where is what the request is read through
    params: list[tuple[list[Any], str]] = field(default_factory=list)
    body_params: list[Any] = field(default_factory=list)
    request_names: tuple[str, ...] = ()
    response_name: str | None = None


def _kind(call: Any) -> str:
    if _is_async_gen_callable(call):
        raise Unplanned("an async generator dependency")
    if _is_gen_callable(call):
        return "generator"
    return "coroutine" if _is_coroutine_callable(call) else "sync"


def _node(dependant: Any) -> Node:
    if (
        dependant.security_scopes_param_name
        or dependant.background_tasks_param_name
        or dependant.websocket_param_name
        or dependant.own_oauth_scopes
        or dependant.parent_oauth_scopes
        or getattr(dependant, "concurrency", None) is not None
    ):
        raise Unplanned("security scopes, background tasks, a websocket or a limit")
    call = dependant.call
    node = Node(
        call=call,
        name=dependant.name,
        kind=_kind(call),
        cache_key=(call, _get_computed_scope(dependant=dependant) or ""),
        use_cache=dependant.use_cache,
        function_scope=dependant.scope == "function",
        subs=[_node(sub) for sub in dependant.dependencies],
        params=[
            (fields, where)
            for fields, where in (
                (dependant.path_params, "path_params"),
                (dependant.query_params, "query_params"),
                (dependant.header_params, "headers"),
                (dependant.cookie_params, "cookies"),
            )
            if fields
        ],
        body_params=list(dependant.body_params),
        request_names=tuple(
            n for n in (dependant.http_connection_param_name, dependant.request_param_name) if n
        ),
        response_name=dependant.response_param_name,
    )
    return node


@dataclass
class Solved:
    response: Response
    cache: dict[tuple[Any, str], Any] = field(default_factory=dict)
    errors: list[Any] = field(default_factory=list)


async def _solve(node: Node, request: Request, body: Any, embed: bool, s: Solved) -> dict[str, Any]:
    """``fastapi.dependencies.utils.solve_dependencies`` on a planned node: the values of
    its parameters, its errors added to ``s.errors`` (a dependency with errors of its
    own is not called, as in FastAPI)."""
    values: dict[str, Any] = {}
    for sub in node.subs:
        before = len(s.errors)
        sub_values = await _solve(sub, request, body, embed, s)
        if len(s.errors) > before:
            continue
        if sub.use_cache and sub.cache_key in s.cache:
            solved = s.cache[sub.cache_key]
        elif sub.kind == "generator":
            stack = request.scope[
                "fastapi_function_astack" if sub.function_scope else "fastapi_inner_astack"
            ]
            cm = contextmanager_in_threadpool(contextmanager(sub.call)(**sub_values))
            solved = await stack.enter_async_context(cm)
        elif sub.kind == "coroutine":
            solved = await sub.call(**sub_values)
        else:
            solved = await run_in_threadpool(sub.call, **sub_values)
        if sub.name is not None:
            values[sub.name] = solved
        s.cache.setdefault(sub.cache_key, solved)
    for fields, where in node.params:
        got, errors = request_params_to_args(fields, getattr(request, where))
        values.update(got)
        s.errors += errors
    if node.body_params:
        got, errors = await request_body_to_args(
            body_fields=node.body_params, received_body=body, embed_body_fields=embed
        )
        values.update(got)
        s.errors.extend(errors)
    for name in node.request_names:
        values[name] = request
    if node.response_name:
        values[node.response_name] = s.response
    return values


def _json_content_type(value: str | None, strict: bool) -> bool:
    """FastAPI's test of a body's content type: JSON, or no type where not strict."""
    if not value:
        return not strict
    if value == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = value
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def lean(route: Any, fastapi_handler: Handler) -> Handler:
    """``route``'s handler: the plan, or FastAPI's own when the route needs more."""
    if not AVAILABLE:
        return fastapi_handler
    try:
        return _planned(route, fastapi_handler)
    except Unplanned as why:
        log.debug("%s keeps FastAPI's handler: %s", getattr(route, "path", route), why)
        return fastapi_handler


def _planned(route: Any, fastapi_handler: Handler) -> Handler:
    dependant = route.dependant
    body_field = route.body_field
    if body_field is not None and isinstance(body_field.field_info, params.Form):
        raise Unplanned("a form body")
    if getattr(route, "is_json_stream", False) or getattr(route, "stream_item_field", None):
        raise Unplanned("a streamed answer")
    response_class = route.response_class
    actual_class = (
        response_class.value if isinstance(response_class, DefaultPlaceholder) else response_class
    )
    if isinstance(actual_class, type) and issubclass(actual_class, EventSourceResponse):
        raise Unplanned("server-sent events")
    if _is_gen_callable(dependant.call) or _is_async_gen_callable(dependant.call):
        raise Unplanned("a generator endpoint")
    top = _node(dependant)
    endpoint = dependant.call
    is_coroutine = _is_coroutine_callable(endpoint)
    strict = route.strict_content_type
    strict = strict.value if isinstance(strict, DefaultPlaceholder) else strict
    embed = route._embed_body_fields
    status_code = route.status_code
    response_field = route.response_field
    use_dump_json = response_field is not None and isinstance(response_class, DefaultPlaceholder)
    overrides = route.dependency_overrides_provider
    shape = dict(
        include=route.response_model_include,
        exclude=route.response_model_exclude,
        by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none,
    )

    def context(request: Request) -> Any:  # only when an error needs it, as FastAPI's
        ctx = _extract_endpoint_context(endpoint)
        if dependant.path:
            mount = request.scope.get("root_path", "").rstrip("/")
            ctx["path"] = f"{request.method} {mount}{dependant.path}"
        return ctx

    async def handler(request: Request) -> Response:
        if (
            not ACTIVE
            or (overrides is not None and overrides.dependency_overrides)
            or get_telemetry_data() is not None
        ):
            return await fastapi_handler(request)
        body: Any = None
        has_body = False
        if body_field is not None:
            try:
                raw = await request.body()
                if raw:
                    has_body = True
                    if _json_content_type(request.headers.get("content-type"), strict):
                        body = json.loads(raw)
                    else:
                        body = raw
            except json.JSONDecodeError as e:
                error = RequestValidationError(
                    [{"type": "json_invalid", "loc": ("body", e.pos), "msg": "JSON decode error",
                      "input": {}, "ctx": {"error": e.msg}}],
                    body=e.doc, endpoint_ctx=context(request),
                )  # fmt: skip
                _validation_failed(error)
                raise error from e
            except HTTPException:
                raise
            except Exception as e:  # a size limit or a broken stream: FastAPI's answers
                if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (limit := get_body_limit_error(e)):
                    raise limit from e
                raise HTTPException(400, "There was an error parsing the body") from e
        sub_response = Response()
        del sub_response.headers["content-length"]
        sub_response.status_code = None  # type: ignore[assignment]
        solved = Solved(sub_response)
        received = body if has_body else PydanticUndefined
        values = await _solve(top, request, received, embed, solved)
        if solved.errors:
            error = RequestValidationError(
                solved.errors, body=body if has_body else None, endpoint_ctx=context(request)
            )
            _validation_failed(error)
            raise error
        if is_coroutine:
            raw_response = await endpoint(**values)
        else:
            raw_response = await run_in_threadpool(endpoint, **values)
        if isinstance(raw_response, Response):
            return raw_response
        args: dict[str, Any] = {"background": None}
        current = status_code if status_code else sub_response.status_code
        if current is not None:
            args["status_code"] = current
        if sub_response.status_code:
            args["status_code"] = sub_response.status_code
        content = await serialize_response(
            field=response_field, response_content=raw_response, is_coroutine=True,
            endpoint_ctx=None, dump_json=use_dump_json, **shape,
        )  # fmt: skip
        if use_dump_json:
            response = Response(content=content, media_type="application/json", **args)
        else:
            response = actual_class(content, **args)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        response.headers.raw.extend(sub_response.headers.raw)
        return response

    handler.fastapi_handler = fastapi_handler  # type: ignore[attr-defined]  # planned: tests
    return handler


def effective(route: Any) -> Any:
    """The route as FastAPI builds its handler: an included route's effective context
    (its router's prefix, dependencies and responses) while one is being built."""
    context = _effective_route_context_var.get() if AVAILABLE else None
    if context is not None and context.original_route is route:
        return context
    return route
