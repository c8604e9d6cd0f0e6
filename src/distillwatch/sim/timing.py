"""Request timestamps: diurnal cycles in local time, sessions, bursts.

Each principal gets ``count`` requests on a day. Requests are grouped into
sessions (a conversation, an agent run, a batch burst); session starts follow
an hour-of-day profile in the principal's *local* time, and requests within a
session are separated by exponential think/processing gaps. Everything is
vectorised over all requests of a day.

Modes (hour-of-day weights, local time):

* ``waking``  people chatting: low at night, evening peak;
* ``work``    office hours with a lunch dip (developers, researchers, operators);
* ``flat``    24x7 machines (batch jobs, backends, harvesters);
* ``random``  uniform, and sessions of one request (randomised evasive timing).
"""

from __future__ import annotations

import numpy as np

PROFILES: dict[str, np.ndarray] = {
    "waking": np.array(
        [
            1.0,
            0.6,
            0.35,
            0.25,
            0.2,
            0.3,
            0.7,
            1.4,
            2.4,
            3.2,
            3.8,
            4.0,
            3.6,
            3.5,
            3.8,
            3.9,
            3.7,
            3.5,
            3.6,
            4.0,
            4.4,
            4.2,
            3.2,
            2.0,
        ]
    ),
    "work": np.array(
        [
            0.15,
            0.1,
            0.08,
            0.08,
            0.1,
            0.2,
            0.5,
            1.5,
            4.0,
            5.5,
            6.0,
            5.5,
            3.5,
            5.0,
            5.8,
            5.8,
            5.0,
            3.5,
            1.8,
            1.2,
            1.0,
            0.8,
            0.5,
            0.3,
        ]
    ),
    "flat": np.ones(24),
    "random": np.ones(24),
}
DAY_MS = 86_400_000


def day_timestamps(
    rng: np.random.Generator,
    counts: np.ndarray,
    tz_hours: np.ndarray,
    day_start_ms: int,
    mode: str,
    session_len: float,
    gap_s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps for ``counts[i]`` requests of principal ``i`` on one UTC day.

    Returns ``(principal, ts_ms, pos_in_session)``, grouped by principal and
    session (not globally sorted). ``session_len`` is the mean number of
    requests per session, ``gap_s`` the mean gap inside a session.
    """
    counts = counts.astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    principal = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    k = np.arange(total) - first[principal]  # rank of request within principal's day
    if mode == "random":
        lens = np.ones(len(counts), dtype=np.int64)
    else:
        lens = np.maximum(1, rng.poisson(max(session_len - 1.0, 0.0), size=len(counts)) + 1)
    sess_local = k // lens[principal]
    pos = k % lens[principal]
    n_sess = -(-counts // lens)
    sess_off = np.cumsum(n_sess) - n_sess
    sess_id = sess_off[principal] + sess_local
    n_total_sess = int(n_sess.sum())
    prof = PROFILES[mode] / PROFILES[mode].sum()
    hour = rng.choice(24, size=n_total_sess, p=prof)
    start_local = hour * 3600.0 + rng.random(n_total_sess) * 3600.0
    sess_owner = np.repeat(np.arange(len(counts)), n_sess)
    start_utc = start_local - tz_hours[sess_owner] * 3600.0
    gaps = rng.exponential(gap_s, size=total)
    gaps[pos == 0] = 0.0
    csum = np.cumsum(gaps)
    sess_first = np.cumsum(np.bincount(sess_id, minlength=n_total_sess)) - np.bincount(
        sess_id, minlength=n_total_sess
    )
    within = csum - csum[sess_first[sess_id]]
    sec = np.mod(start_utc[sess_id] + within, 86_400.0)
    ts = day_start_ms + (sec * 1000.0).astype(np.int64)
    return principal, ts, pos
