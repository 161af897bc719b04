"""Liveness: answers without a token and without touching the database."""

from __future__ import annotations

from fastapi import APIRouter

from provisioner.http_threads import Route
from provisioner.read.models import HealthOut

router = APIRouter(route_class=Route, tags=["health"])


@router.get("/health")
def health() -> HealthOut:
    return HealthOut(status="ok")
