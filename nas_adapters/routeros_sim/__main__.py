"""Run simulated routers in the foreground until Ctrl-C.

Usage: python -m nas_adapters.routeros_sim --port 8728 --username admin --password x

`--count N` runs a fleet on ports `--port` … `--port + N - 1` (or on free ports when
`--port 0`), which lets a benchmark keep the routers out of its own process and GIL.
"""

from __future__ import annotations

import argparse
import contextlib
import threading

from .server import SimulatedFleet


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m nas_adapters.routeros_sim", description="Simulated RouterOS API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8728, help="0 picks a free port")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="")
    parser.add_argument("--identity", default="MikroTik")
    parser.add_argument("--count", type=int, default=1, help="routers to run (one thread)")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="round trip: seconds from a command to its reply"
    )
    args = parser.parse_args(argv)

    fleet = SimulatedFleet(
        args.count,
        username=args.username,
        password=args.password,
        identity=args.identity,
        host=args.host,
    )
    for i, router in enumerate(fleet.routers):
        router.port = args.port + i if args.port else 0
        router.latency = args.latency
    with fleet:
        for router in fleet.routers:
            print(f"simulated RouterOS API on {router.host}:{router.port}", flush=True)
        print("Ctrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
