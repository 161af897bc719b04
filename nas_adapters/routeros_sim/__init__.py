"""A RouterOS API simulator: real TCP, real framing, in-memory menus, injectable faults.

Tests and benchmarks point librouteros (or the project's RouterOS adapter) at a
`SimulatedRouter` as they would at a router; `SimulatedFleet` runs many in one thread.
The behaviour it copies is written down in REFERENCE.md §1–3. `router.nas` is the
router's RADIUS side (`SimulatedNas`): subscribers dial in through a real RADIUS server,
are accounted on a simulated clock and answer CoA/Disconnect (REFERENCE.md §4–5).
"""

from .menus import Trap
from .nas import (
    AccountingRecord,
    DialResult,
    IncomingRequest,
    NasSession,
    SimulatedNas,
    parse_interval,
    parse_rate,
)
from .server import SimStats, SimulatedFleet, SimulatedRouter

__all__ = [
    "AccountingRecord",
    "DialResult",
    "IncomingRequest",
    "NasSession",
    "SimStats",
    "SimulatedFleet",
    "SimulatedNas",
    "SimulatedRouter",
    "Trap",
    "parse_interval",
    "parse_rate",
]
