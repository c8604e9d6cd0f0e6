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

import numpy as np
import pyarrow as pa

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


# The shapes nearly every log writes: 2026-04-22T10:15:03[.120|.120000] then
# Z or +02:00, at fixed byte positions. Rows of such a shape are parsed as a
# byte matrix; anything else (other fraction lengths, lower-case t/z, basic
# format, garbage) goes through parse_time_ms one by one, so the accepted set
# and every reason stay its own.
_SHAPES: dict[int, tuple[int, int]] = {  # byte length -> (fraction digits, offset length)
    20: (0, 1), 24: (3, 1), 27: (6, 1), 25: (0, 6), 29: (3, 6), 32: (6, 6)
}  # fmt: skip
_DAYS_BEFORE_MONTH = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334])
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _parse_shape(b: np.ndarray, frac: int, tz: int) -> tuple[np.ndarray, np.ndarray]:
    """(ms, ok) for rows of one fixed-width shape (``b``: uint8 matrix, one row per string)."""
    width = b.shape[1]
    pos = 19 + (frac + 1 if frac else 0)  # where the offset starts
    digit_cols = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
    digit_cols += list(range(20, 20 + frac))
    if tz == 6:
        digit_cols += [pos + 1, pos + 2, pos + 4, pos + 5]
    punct = {4: b"-", 7: b"-", 13: b":", 16: b":"}
    if frac:
        punct[19] = b"."
    if tz == 1:
        punct[pos] = b"Z"
    else:
        punct[pos + 3] = b":"
    d = b.astype(np.int64) - 48
    ok = ((b[:, digit_cols] >= 48) & (b[:, digit_cols] <= 57)).all(axis=1)
    for col, ch in punct.items():
        ok &= b[:, col] == ch[0]
    ok &= (b[:, 10] == 84) | (b[:, 10] == 32)  # "T" or " "

    def num(start: int, n: int) -> np.ndarray:
        out: np.ndarray = d[:, start : start + n] @ (10 ** np.arange(n - 1, -1, -1))
        return out

    y, mo, day, hh, mi, ss = num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2)
    micros = num(20, frac) * (1000 if frac == 3 else 1) if frac else 0
    offset: np.ndarray | int = 0
    if tz == 6:
        sign = b[:, pos]
        ok &= (sign == 43) | (sign == 45)  # "+" or "-"
        oh, om = num(pos + 1, 2), num(pos + 4, 2)
        ok &= (oh <= 23) & (om <= 59)
        offset = np.where(sign == 45, -1, 1) * (oh * 3600 + om * 60)
    assert width == pos + tz
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    mcl = np.clip(mo, 0, 12)
    ok &= (y >= 1) & (mo >= 1) & (mo <= 12) & (day >= 1)
    ok &= (day <= _MONTH_DAYS[mcl] + ((mcl == 2) & leap)) & (hh <= 23) & (mi <= 59) & (ss <= 59)
    yy = np.where(ok, y, 1970) - 1
    days = yy * 365 + yy // 4 - yy // 100 + yy // 400 - 719162
    days += _DAYS_BEFORE_MONTH[np.where(ok, mcl, 1)] + ((mcl > 2) & leap) + day - 1
    ms = (days * 86_400 + hh * 3600 + mi * 60 + ss - offset) * 1000 + micros // 1000
    ok &= (ms >= 0) & (ms <= MAX_MS)  # out of range: the row path gives the reason
    return np.where(ok, ms, 0), ok


def parse_time_strings(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`parse_time_ms` for a string column: (epoch ms int64, valid mask).

    Exactly the result of calling :func:`parse_time_ms` on each element (null
    and invalid -> not valid); the fixed-width shapes in ``_SHAPES`` are parsed
    as byte matrices, the rest row by row.
    """
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    arr = arr.cast(pa.large_string())
    n = len(arr)
    ms, ok = np.zeros(n, np.int64), np.zeros(n, bool)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if n:
        bufs = arr.buffers()
        offsets = np.frombuffer(bufs[1], np.int64, count=n + 1, offset=arr.offset * 8)
        data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
        lens = np.diff(offsets)
        for width, (frac, tz) in _SHAPES.items():
            rows = np.flatnonzero(valid & (lens == width))
            if len(rows):
                b = data[offsets[rows][:, None] + np.arange(width)]
                ms[rows], ok[rows] = _parse_shape(b, frac, tz)
    rest = np.flatnonzero(~ok & valid)
    if len(rest):
        texts = arr.take(pa.array(rest)).to_pylist()
        for i, t in zip(rest.tolist(), texts, strict=True):
            try:
                ms[i] = parse_time_ms(t)
                ok[i] = True
            except TimeError:
                pass
    return ms, ok
