"""The HTTP API (JSON, OpenAPI docs at ``/docs``) over the registry service layer.

Bearer tokens carry a role: admin (everything), reseller (its packages and customers),
customer (itself and the public packages). Every route checks the role; each request is
one transaction (``api.deps``), and errors keep the service layer's status and message.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST

from provisioner import http_threads, metrics, web
from provisioner.api import errors, limits, options
from provisioner.api.deps import CtxDep, SlotsReleased
from provisioner.api.routes import API_ROUTERS
from provisioner.context import Context

PREFIX = "/api/v1"
SERVE_PID = "PROVISIONER_SERVE_PID"  # set by ``serve`` for the workers it starts
SERVE_WORKERS = "PROVISIONER_SERVE_WORKERS"  # how many: each opens its part of the pool


def _version() -> str:
    try:
        return version("provisioner")
    except PackageNotFoundError:
        return "0"


def create_app(ctx: Context) -> FastAPI:
    """The application for one context (settings, engine, session factory)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        http_threads.configure(ctx.settings.api_threads, ctx.settings.api_slow_threads)
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="provisioner",
        version=_version(),
        description=__doc__ or "",
        # /docs is served from the package's own assets (``web.docs``); no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    errors.install(app)
    for router, options_ in API_ROUTERS:
        app.include_router(router, prefix=PREFIX, **options_)
    # Outermost but for Starlette's error middleware: no body is read before these checks.
    app.add_middleware(
        limits.BodyLimit, prefix=PREFIX, limits={f"{PREFIX}/customers/import": limits.MAX_CSV}
    )
    app.add_middleware(options.Options, prefix=PREFIX)
    app.add_middleware(options.SingleQuery, prefix=PREFIX)
    web.install(app)
    app.add_middleware(SlotsReleased)  # outermost of ours: after all of a request's work

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint(ctx: CtxDep) -> Response:
        """Prometheus scrape: counts by router, menu and outcome; no customer names or
        credentials."""
        text = metrics.render(ctx.factory, ctx.settings)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_settings() -> FastAPI:
    """The app of one ``serve`` worker process: its own context from the settings in
    force (environment and config file); the parent process migrated the database."""
    from provisioner.api.workers import freeze_heap
    from provisioner.context import open_context

    _end_with_parent()
    workers = int(os.environ.get(SERVE_WORKERS) or 1)
    app = create_app(open_context(upgrade=False, api_only=True, workers=workers))
    freeze_heap()
    return app


def _end_with_parent(every: float = 1.0) -> None:
    """A worker whose parent was killed outright (SIGKILL, the OOM killer) would go on
    holding the API's port, so the restarted daemon could not bind it: the worker ends
    itself (uvicorn's graceful SIGTERM) as soon as its parent is gone. The parent names
    itself (``SERVE_PID``): one killed while this worker was starting is gone already."""
    parent = int(os.environ.get(SERVE_PID) or os.getppid())

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


__all__ = ["app_from_settings", "create_app"]
