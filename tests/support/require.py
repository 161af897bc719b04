"""Skip-or-fail for tests that need real components (FreeRADIUS, PostgreSQL, ...).

A developer without the real peers gets ordinary skips; CI sets
``PROVISIONER_REQUIRE_REAL=1`` so that a missing peer fails the run instead of
silently shrinking it to a green result that tested nothing.
"""

from __future__ import annotations

import os

import pytest

ENV_VAR = "PROVISIONER_REQUIRE_REAL"


def real_required() -> bool:
    """True when the environment demands the real components (``PROVISIONER_REQUIRE_REAL=1``)."""
    return os.environ.get(ENV_VAR, "").strip() == "1"


def require(condition: bool, reason: str) -> None:
    """Return if ``condition`` holds; else skip the test, or fail it if real peers are required."""
    if condition:
        return
    if real_required():
        pytest.fail(f"{reason} ({ENV_VAR}=1 requires the real component)", pytrace=False)
    pytest.skip(reason)
