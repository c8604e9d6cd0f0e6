"""Synthetic answers and reasoning traces returned to the client.

Responses only need a realistic *length* and shape (detection reads lengths,
not answers). A pool of answers is built once from corpus sentences in length
buckets; each request takes the bucket matching ``4 * output_tokens`` chars,
capped at ~2 KB (reasoning ~1.5 KB) to keep files small.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.sim.corpus import Corpus, load_corpus

BUCKETS = np.array([40, 120, 300, 600, 1000, 1500, 2000])
REASON_BUCKETS = np.array([200, 500, 1000, 1500])
VARIANTS = 24
OPENERS = [
    "Sure. ",
    "Here is the answer. ",
    "Great question! ",
    "Let's break it down. ",
    "",
    "Certainly. ",
    "Answer: ",
]
REASON_OPENERS = [
    "Let me think about this carefully. ",
    "First, I need to understand what is asked. ",
    "Okay, so the question is about ",
]


def _pool(corpus: Corpus, buckets: np.ndarray, openers: list[str], seed: int) -> pa.StringArray:
    rng = np.random.default_rng(seed)
    src = corpus.pool("cot").to_pylist() + corpus.pool("chat").to_pylist()
    out: list[str] = []
    for size in buckets.tolist():
        for _ in range(VARIANTS):
            text = openers[int(rng.integers(0, len(openers)))]
            while len(text) < size:
                text += str(src[int(rng.integers(0, len(src)))]).replace("\n", " ") + " "
            out.append(text[:size].rstrip())
    return pa.array(out, pa.string())


@lru_cache(maxsize=4)
def pools(data_source: str) -> tuple[pa.StringArray, pa.StringArray]:
    corpus = load_corpus(None if data_source == "sample" else data_source)
    return _pool(corpus, BUCKETS, OPENERS, 1), _pool(corpus, REASON_BUCKETS, REASON_OPENERS, 2)


def answers(corpus: Corpus, rng: np.random.Generator, out_tokens: np.ndarray) -> pa.Array:
    """Answer text per request, length following ``out_tokens``."""
    ans, _ = pools(corpus.source)
    b = np.clip(
        np.searchsorted(BUCKETS, np.minimum(out_tokens * 4, BUCKETS[-1])), 0, len(BUCKETS) - 1
    )
    return ans.take(pa.array(b * VARIANTS + rng.integers(0, VARIANTS, len(out_tokens))))


def reasoning(corpus: Corpus, rng: np.random.Generator, reason_tokens: np.ndarray) -> pa.Array:
    """Reasoning text (null where no reasoning tokens were produced)."""
    _, rs = pools(corpus.source)
    b = np.clip(
        np.searchsorted(REASON_BUCKETS, np.minimum(reason_tokens * 4, REASON_BUCKETS[-1])),
        0,
        len(REASON_BUCKETS) - 1,
    )
    txt = rs.take(pa.array(b * VARIANTS + rng.integers(0, VARIANTS, len(reason_tokens))))
    mask = pa.array(reason_tokens <= 0)
    return pc.if_else(mask, pa.nulls(len(txt), pa.string()), txt)
