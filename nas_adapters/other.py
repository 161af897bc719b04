"""The "other" adapter: customers with no RouterOS NAS (fiber ONU/FTTH, …).

It hands the subscription's intent to the operator's own system: a command (JSON on
stdin) or an HTTP webhook (JSON body). Failures are translated like any NAS error: a
network error, timeout, HTTP 5xx or 429 is temporary; HTTP 4xx or a non-zero exit is
permanent.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from typing import Any

import httpx

from nas_adapters.errors import PermanentNasError, TemporaryNasError


def run_action(
    payload: dict[str, Any], *, url: str = "", command: str = "", timeout: float = 10.0
) -> str:
    """Deliver ``payload``; returns a short description of what was done."""
    body = json.dumps(payload, sort_keys=True)
    if url:
        try:
            r = httpx.post(
                url, content=body, headers={"Content-Type": "application/json"}, timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise TemporaryNasError(f"webhook {url}: {exc}", nas="other") from exc
        if r.status_code >= 500 or r.status_code == 429:
            raise TemporaryNasError(f"webhook {url}: HTTP {r.status_code}", nas="other")
        if r.status_code >= 400:
            raise PermanentNasError(
                f"webhook {url}: HTTP {r.status_code}: {r.text[:200]}", nas="other"
            )
        return f"webhook HTTP {r.status_code}"
    if command:
        try:
            done = subprocess.run(
                shlex.split(command),
                input=body,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise TemporaryNasError(f"command timed out after {timeout}s", nas="other") from exc
        except OSError as exc:
            raise PermanentNasError(f"command {command!r}: {exc}", nas="other") from exc
        if done.returncode != 0:
            raise PermanentNasError(
                f"command exited {done.returncode}: {done.stderr.strip()[:200]}", nas="other"
            )
        return "command ok"
    return "recorded (no action configured)"
