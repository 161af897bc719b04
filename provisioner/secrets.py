"""Secrets at rest: router and customer credentials are Fernet-encrypted in the registry.

The key comes from settings (``PROVISIONER_SECRET_KEY``) or is generated once into the key
file (mode 0600). Losing the key means re-entering router passwords, nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

_fernet: Fernet | None = None
_digest_key = b""


def configure(secret_key: str, key_file: Path) -> None:
    """Load the key (or create the key file) before any credential is read or written."""
    global _fernet
    key = secret_key.strip()
    if not key:
        if key_file.exists():
            key = key_file.read_text().strip()
        else:
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key = Fernet.generate_key().decode()
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key + "\n")
    _fernet = Fernet(key.encode())
    global _digest_key
    # Its own key for digests, derived from the same secret (never the encryption key).
    _digest_key = hashlib.sha256(b"provisioner digest key\0" + key.encode()).digest()


def _get() -> Fernet:
    if _fernet is None:
        from provisioner.config import get_settings

        s = get_settings()
        configure(s.secret_key, s.key_file)
    assert _fernet is not None
    return _fernet


def encrypt(plain: str) -> str:
    return _get().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _get().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError(
            "cannot decrypt a stored credential: the secret key differs from the one it "
            "was stored with (PROVISIONER_SECRET_KEY / key file)"
        ) from exc


def keyed_digest(text: str) -> str:
    """HMAC-SHA256 of ``text`` under the secret key, as 64 hex digits. A short secret kept
    this way (a card's PIN) cannot be tried offline from a copy of the database alone."""
    _get()
    return hmac.new(_digest_key, text.encode(), hashlib.sha256).hexdigest()
