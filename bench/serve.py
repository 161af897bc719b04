"""The API alone, served as ``provisioner serve`` serves it, for the benchmarks.

    python -m bench.serve PORT WORKERS

``provisioner.api.workers.serve`` over the workers' own factory
(``provisioner.api:app_from_settings``), its settings from the environment the benchmark
sets (``PROVISIONER_DATABASE_URL``, ``PROVISIONER_KEY_FILE``; the schema is migrated
already). No scheduler: the figures are the API's.
"""

from __future__ import annotations

import os
import sys

import uvicorn

from provisioner.api import SERVE_WORKERS, workers


def main(argv: list[str]) -> None:
    port, count = int(argv[0]), int(argv[1])
    os.environ[SERVE_WORKERS] = str(count)  # each opens its part of the connections, as in serve
    config = uvicorn.Config(
        "provisioner.api:app_from_settings", factory=True, host="127.0.0.1", port=port,
        workers=count, log_level="warning", access_log=False,
    )  # fmt: skip
    workers.serve(config, config.bind_socket(), count)


if __name__ == "__main__":
    main(sys.argv[1:])
