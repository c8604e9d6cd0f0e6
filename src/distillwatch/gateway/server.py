"""Run the gateway under uvicorn until SIGTERM/SIGINT.

uvicorn stops accepting connections on the signal, lets in-flight requests
(streams included) finish within ``graceful_s``, then runs the app's shutdown,
which flushes and closes the event log; the process exits 0.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from .app import create_app
from .config import GatewayConfig


class _Server(uvicorn.Server):
    """uvicorn re-raises the stop signal after shutdown (exit status -15); we exit 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        sigs = (signal.SIGINT, signal.SIGTERM)
        previous = {s: signal.signal(s, self.handle_exit) for s in sigs}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def serve(config_path: str | Path, graceful_s: float = 30.0) -> None:
    """Serve the gateway described by the YAML file at ``config_path`` (blocks)."""
    cfg = GatewayConfig.load(config_path)
    app = create_app(cfg)
    config = uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(graceful_s),
        lifespan="on",
    )
    _Server(config).run()


run_gateway = serve
