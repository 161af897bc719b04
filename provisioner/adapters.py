"""Which adapter serves a registry router (the registry's side of ``nas_adapters``)."""

from __future__ import annotations

from nas_adapters.base import NasAdapter
from nas_adapters.routeros import RouterOSAdapter
from provisioner.config import Settings
from provisioner.models import Router


def adapter_for(router: Router, settings: Settings) -> NasAdapter:
    """A RouterOS API adapter with the router's decrypted credentials (never logged)."""
    return RouterOSAdapter(
        router.name,
        router.host,
        router.username,
        router.password,
        port=router.api_port,
        tls=router.api_tls,
        timeout=settings.router_timeout_seconds,
        pipeline=settings.router_pipeline,
    )
