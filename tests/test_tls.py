"""API-SSL: the adapter speaks RouterOS's API inside TLS (port 8729 on a real router)."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import sync
from provisioner.context import Context
from tests.support.factories import Factory


def self_signed(tmp: Path) -> ssl.SSLContext:
    """A router-like self-signed certificate (what RouterOS users typically have)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "router.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
    return ctx


def test_sync_over_api_ssl(ctx: Context, make: Factory, tmp_path: Path) -> None:
    with SimulatedRouter(username="admin", password="pw", ssl_context=self_signed(tmp_path)) as sim:
        make.router(sim, api_tls=True)
        make.master(name="home")
        [r] = sync.sync_many(ctx.factory, ctx.settings, sync.router_ids(ctx.factory))
        assert r.status == "ok" and r.applied == 2
        assert [p["name"] for p in sim.items("/ppp/profile") if p["name"] == "home"] == ["home"]


def test_plain_client_against_api_ssl_is_a_clear_error(
    ctx: Context, make: Factory, tmp_path: Path
) -> None:
    with SimulatedRouter(username="admin", password="pw", ssl_context=self_signed(tmp_path)) as sim:
        make.router(sim, api_tls=False)
        [r] = sync.sync_many(ctx.factory, ctx.settings, sync.router_ids(ctx.factory), dry_run=True)
        assert r.plan.error and r.status in ("unreachable", "failed")
        assert sim.items("/ppp/profile") and not [
            p for p in sim.items("/ppp/profile") if p["name"] == "home"
        ]
