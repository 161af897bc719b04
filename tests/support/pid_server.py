"""An app that answers its worker's process id, served by ``provisioner.api.workers``.

python -m tests.support.pid_server PORT WORKERS
"""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn

from provisioner.api import workers


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = str(os.getpid()).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    port, count = int(sys.argv[1]), int(sys.argv[2])
    config = uvicorn.Config(
        "tests.support.pid_server:app", host="127.0.0.1", port=port, workers=count,
        log_level="warning", lifespan="off",
    )  # fmt: skip
    workers.serve(config, config.bind_socket(), count)
