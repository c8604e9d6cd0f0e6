"""Contract timestamps to UTC epoch milliseconds.

A contract time (``ts``, ``created_at``) is either an RFC 3339 string with a
UTC offset (``2026-04-22T10:15:03.120+02:00``; a trailing ``Z``/``z`` means
UTC; a space instead of ``T`` is accepted, as RFC 3339 allows) or a number of
epoch seconds, where a value above 1e11 is taken as epoch milliseconds
(1e11 s is the year 5138, 1e11 ms is 1973). Strings without an offset are
rejected: a local time cannot be placed on the time line. Datetime objects
(from Parquet timestamp columns) are accepted; naive ones are taken as UTC,
which is what Parquet writers mean by a timestamp without a zone.

Accepted range: 1970-01-01 to 9999-12-31 (UTC).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Numbers above this are epoch milliseconds, at or below it epoch seconds.
MS_THRESHOLD = 1e11
#: 9999-12-31T23:59:59.999Z in epoch milliseconds.
MAX_MS = 253_402_300_799_999


class TimeError(ValueError):
    """A value that is not a contract time; the message says why (without the field name)."""


def _dt_to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    d = dt - EPOCH
    return (d.days * 86_400 + d.seconds) * 1000 + d.microseconds // 1000


def _check_range(ms: int) -> int:
    if ms < 0 or ms > MAX_MS:
        raise TimeError(f"time out of range (epoch ms {ms})")
    return ms


def parse_time_ms(value: object) -> int:
    """Parse one contract time to UTC epoch milliseconds, or raise :class:`TimeError`."""
    t = type(value)
    if t is str:
        s: str = value  # type: ignore[assignment]
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            # RFC 3339 allows lower-case t/z; fromisoformat does not
            try:
                dt = datetime.fromisoformat(s.upper())
            except ValueError:
                raise TimeError(f"unparseable time {s[:64]!r}") from None
        if dt.tzinfo is None:
            raise TimeError(f"time without UTC offset {s[:64]!r}")
        return _check_range(_dt_to_ms(dt))
    if t is int:
        n: int = value  # type: ignore[assignment]
        return _check_range(n if n > MS_THRESHOLD else n * 1000)
    if t is float:
        f: float = value  # type: ignore[assignment]
        if not math.isfinite(f):
            raise TimeError(f"time is not finite ({f})")
        return _check_range(round(f if f > MS_THRESHOLD else f * 1000.0))
    if isinstance(value, datetime):
        return _check_range(_dt_to_ms(value))
    raise TimeError(f"expected RFC 3339 string or epoch number, got {type_name(value)}")


def type_name(value: object) -> str:
    """The JSON-ish name of a value's type, for reject reasons."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
