"""Run one simulated router in the foreground until Ctrl-C.

python -m nas_adapters.routeros_sim --port 8728 --username admin --password x
"""

from __future__ import annotations

import argparse
import contextlib
import threading

from .server import SimulatedRouter


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m nas_adapters.routeros_sim", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8728)
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="")
    parser.add_argument("--identity", default="MikroTik")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds to wait before each reply"
    )
    args = parser.parse_args(argv)

    router = SimulatedRouter(
        username=args.username,
        password=args.password,
        identity=args.identity,
        host=args.host,
        port=args.port,
    )
    router.latency = args.latency
    with router:
        print(f"simulated RouterOS API on {router.host}:{router.port} (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
