"""Every gateway request as a contract event (events.md section 1), in rotating JSONL.

Events are queued in memory and written by :meth:`EventLog.flush` (the app
calls it every ``flush_every_s`` from a background task and once at shutdown),
so the request path never waits for the disk. Files are named
``events-<start ms>-<seq>.jsonl`` and rotate past ``rotate_bytes``; the batch
engine reads the directory in name order.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import IO, Any

import orjson


class EventLog:
    """Append-only, size-rotated JSONL writer of contract events."""

    def __init__(self, directory: Path | None, rotate_bytes: int = 64 << 20) -> None:
        self.directory = directory
        self.rotate_bytes = rotate_bytes
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._fh: IO[bytes] | None = None
        self._size = 0
        self._seq = 0
        self._start = int(time.time() * 1000)
        self.written = 0
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def append(self, event: dict[str, Any]) -> None:
        """Queue one event (serialised now, written at the next flush)."""
        if self.directory is None:
            return
        line = orjson.dumps(event) + b"\n"
        with self._lock:
            self._pending.append(line)

    def _open(self) -> IO[bytes]:
        assert self.directory is not None
        if self._fh is None or self._size >= self.rotate_bytes:
            if self._fh is not None:
                self._fh.close()
            self._seq += 1
            name = f"events-{self._start}-{self._seq:05d}.jsonl"
            self._fh = open(self.directory / name, "ab")  # noqa: SIM115
            self._size = 0
        return self._fh

    def flush(self) -> int:
        """Write queued events; returns how many were written."""
        with self._lock:
            lines, self._pending = self._pending, []
            if not lines:
                return 0
            for line in lines:
                fh = self._open()
                fh.write(line)
                self._size += len(line)
            assert self._fh is not None
            self._fh.flush()
            self.written += len(lines)
            return len(lines)

    def close(self) -> None:
        """Flush and close the current file."""
        self.flush()
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
