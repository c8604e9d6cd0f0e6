"""Where bad input goes: a streaming rejects sink and the read/accept/reject tally.

The contract (events.md section 3) says a bad line is never silently dropped
and never stops a run: it is counted and written, with its source, 1-based
line (or row) number, a reason naming the field, and an excerpt of the raw
input, to ``rejects.jsonl``. Rejects are written as they come, so memory stays
bounded however many there are. :class:`ReadStats` keeps ``read == accepted +
rejected`` by construction: the counters only move through :meth:`accept` and
:meth:`reject`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import orjson

#: Longest raw excerpt kept per reject, in bytes of UTF-8 (before JSON escaping).
RAW_EXCERPT_BYTES = 2048


@dataclass
class ReadStats:
    """How many records were read, accepted and rejected (``read == accepted + rejected``)."""

    accepted: int = 0
    rejected: int = 0

    @property
    def read(self) -> int:
        """Every record seen: accepted plus rejected."""
        return self.accepted + self.rejected

    def summary(self) -> str:
        """The run summary line the contract asks for."""
        return f"read {self.read}, accepted {self.accepted}, rejected {self.rejected}"


def excerpt(raw: bytes | str, limit: int = RAW_EXCERPT_BYTES) -> str:
    """At most ``limit`` bytes of ``raw`` as text; invalid UTF-8 shown as ``\\xNN`` escapes."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    cut = raw[:limit]
    text = cut.decode("utf-8", "backslashreplace")
    if len(raw) > limit:
        # a multi-byte character split by the cut shows up as escapes; that is fine
        text += "…"
    return text


class RejectSink:
    """Counts accepted/rejected records and streams rejects to a JSONL file.

    ``path=None`` gives a sink that only counts (what the gateway uses). The
    sink is a context manager; :meth:`close` flushes and closes the file.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.stats = ReadStats()
        self.path = Path(path) if path is not None else None
        self._fh: IO[bytes] | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in close()

    def accept(self, n: int = 1) -> None:
        """Record ``n`` accepted records."""
        self.stats.accepted += n

    def reject(self, source: str, line: int, reason: str, raw: bytes | str = b"") -> None:
        """Record one rejected record and write it out (if the sink has a file)."""
        self.stats.rejected += 1
        if self._fh is not None:
            rec = {"source": source, "line": line, "reason": reason, "raw": excerpt(raw)}
            self._fh.write(orjson.dumps(rec) + b"\n")

    def replay(self, buffered: RejectBuffer) -> None:
        """Take over the counts and rejects another process gathered, in their order."""
        self.accept(buffered.stats.accepted)
        for source, line, reason, raw in buffered.records:
            self.reject(source, line, reason, raw)

    def close(self) -> None:
        """Flush and close the rejects file (idempotent)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RejectSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RejectBuffer(RejectSink):
    """A sink that keeps its rejects in memory, for a worker process to hand back.

    Raw input is kept only as far as :func:`excerpt` looks (``limit + 1``
    bytes), so the excerpt the main process writes is the one it would have
    written itself.
    """

    def __init__(self) -> None:
        super().__init__(None)
        self.records: list[tuple[str, int, str, bytes]] = []

    def reject(self, source: str, line: int, reason: str, raw: bytes | str = b"") -> None:
        self.stats.rejected += 1
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        self.records.append((source, line, reason, raw[: RAW_EXCERPT_BYTES + 1]))
