"""Read-and-check only: stream an input through ingest and tally it, writing rejects.

This is what ``distillwatch validate PATH`` runs: every event is parsed and
normalised exactly as a detection run would, nothing else is computed, and the
result is the :class:`~.rejects.ReadStats` whose :meth:`~.rejects.ReadStats.summary`
is the contract's ``read N, accepted A, rejected R`` line.
"""

from __future__ import annotations

import os

from .readers import DEFAULT_BATCH_SIZE, iter_event_batches
from .rejects import ReadStats, RejectSink
from .sources import DEFAULT_MAX_LINE_BYTES


def validate(
    path: str | os.PathLike[str],
    rejects_path: str | os.PathLike[str] | None = "rejects.jsonl",
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> ReadStats:
    """Validate the events under ``path``; rejects go to ``rejects_path`` (None: count only)."""
    with RejectSink(rejects_path) as sink:
        for _batch in iter_event_batches(
            path, sink, batch_size=batch_size, max_line_bytes=max_line_bytes
        ):
            pass
    return sink.stats
