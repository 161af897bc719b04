"""A RouterOS API simulator: real TCP, real framing, in-memory menus, injectable faults.

Tests and benchmarks point librouteros (or the project's RouterOS adapter) at a
`SimulatedRouter` as they would at a router; `SimulatedFleet` runs many in one thread.
The behaviour it copies is written down in REFERENCE.md §1–3.
"""

from .menus import Trap
from .server import SimStats, SimulatedFleet, SimulatedRouter

__all__ = ["SimStats", "SimulatedFleet", "SimulatedRouter", "Trap"]
