"""Per-request text classifiers: CoT elicitation, rubric/grading, data generation,
capability area.

Four heads share one stateless feature space: hashed word 1-2 grams of the
request text (:mod:`distillwatch.features.hashing`: lowercase, tokens of two or
more word characters or one Han/kana/Hangul character, unigrams plus adjacent
bigrams, plus the first ``prefix_chars`` characters of each longer token as a
sub-word feature when the artefact sets it, l2-normalised counts).  Two more heads, for cot and rubric, score
windows: ``window_tokens`` consecutive tokens of one line, or a shorter line,
each scored like a text of its own; a request's cot (rubric) is the larger of
the whole-text head and its best window, so that a short demand appended to a
long question is not diluted by it.  The text scored for a
request is ``clip(system) + "\\n" + clip(prompt)`` where ``clip`` keeps the first
``head_chars`` and the last ``tail_chars`` characters of a long text: the
instructions that matter (CoT demands, rubric blocks, tool specs) sit at the
start or the end, and clipping bounds the cost of huge pasted documents.

The artefact (``distillwatch/models/text_classifiers.npz``) holds only numbers:
the hashed feature indices with a non-zero weight, a float16 weight matrix
``[k, 2 + len(CAPABILITIES)]`` (columns: cot, rubric, one per capability), the
biases and the vectoriser parameters, and the same for the window heads
(``window_index``, ``window_weights`` ``[k', 2]``, ``window_bias``,
``window_tokens``; an artefact without them scores whole texts only), and
``prefix_chars`` (absent: 0, no prefix features, the older artefacts), and the
datagen head (``datagen_index``, ``datagen_weights`` ``[k'', 2]``: whole text and
window, ``datagen_bias``; absent: datagen scores ~0).  No pickle.
``scripts/train_classifiers.py`` rebuilds the first heads, ``scripts/train_datagen.py``
the datagen head; ``docs/classifiers.md`` documents labels and held-out scores.

Every batch size runs the same arithmetic on the same grams (the gateway's
small-batch path only tokenises with Python's ``re``), and window sums are exact
integers, so a request's scores never depend on the rest of its batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl
from scipy import sparse

from distillwatch.features.hashing import (
    WINDOW_SCALE,
    Grams,
    feature_cols,
    grams_from_flat,
    grams_from_unigrams,
    hashed_ngrams,
    hashed_ngrams_one,
    linear_scores_from_cols,
    text_grams,
    unigram_hash_expr,
    window_int_weights,
    window_max_sums,
)
from distillwatch.features.text import clip_expr, clip_str

CAPABILITIES: tuple[str, ...] = (
    "chat",
    "coding",
    "agentic",
    "math",
    "reasoning",
    "writing",
    "other",
)
HEADS: tuple[str, ...] = ("cot", "rubric", *(f"cap_{c}" for c in CAPABILITIES))
# An instruction to reason or to grade can be a few words anywhere in a long
# text, where the whole text's normalised counts dilute it. Two more heads
# score windows of a few tokens; a request's cot (rubric) is the larger of the
# cot (rubric) head on the whole text and the window head on its best window.
WINDOW_HEADS: tuple[str, ...] = ("cot", "rubric")
# The datagen head (the request asks for manufactured training data: batches of
# instructions, Q/A pairs, dialogues, labelled examples, a bare chat template) is
# trained apart from the others (scripts/train_datagen.py) and stored in its own
# artefact arrays, whole-text and window weights side by side; it is scored in
# the same pass as one more column of the logits, after the HEADS columns.
DATAGEN_AT = len(HEADS)
# logit columns that also take their window head's best window
_WINDOW_COLS = np.array([HEADS.index(h) for h in WINDOW_HEADS] + [DATAGEN_AT])
_NO_HEAD_BIAS = -30.0  # an artefact without the datagen head: datagen scores ~0
DEFAULT_HEAD_CHARS = 2000
DEFAULT_TAIL_CHARS = 500
_ARTEFACT = "text_classifiers.npz"


def clip_text(
    text: str | None, head: int = DEFAULT_HEAD_CHARS, tail: int = DEFAULT_TAIL_CHARS
) -> str:
    """Keep the first ``head`` and last ``tail`` characters of ``text`` (None -> "")."""
    return clip_str(text, head, tail, "\n")


def request_text(
    system: str | None,
    prompt: str | None,
    head: int = DEFAULT_HEAD_CHARS,
    tail: int = DEFAULT_TAIL_CHARS,
) -> str:
    """The text a request is scored on: clipped system prompt, newline, clipped user prompt."""
    return clip_text(system, head, tail) + "\n" + clip_text(prompt, head, tail)


def vectorize(texts: Sequence[str], n_features: int, prefix_chars: int = 0) -> sparse.csr_matrix:
    """The stateless feature map shared by training and inference."""
    return hashed_ngrams(texts, n_features, prefix_chars)


@dataclass(frozen=True)
class TextScores:
    """Scores for a batch of requests (row i belongs to request i)."""

    cot: np.ndarray  # float32 [n] in [0, 1]
    rubric: np.ndarray  # float32 [n] in [0, 1]
    datagen: np.ndarray  # float32 [n] in [0, 1]
    capability: np.ndarray  # int8 [n], index into CAPABILITIES
    capability_proba: np.ndarray = field(
        default_factory=lambda: np.zeros((0, len(CAPABILITIES)), np.float32)
    )  # float32 [n, len(CAPABILITIES)], rows sum to 1


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    # the reductions ndarray.max and ndarray.sum call, without their wrappers
    e = np.exp(z - np.maximum.reduce(z, axis=1, keepdims=True))
    out: np.ndarray = (e / np.add.reduce(e, axis=1, keepdims=True)).astype(np.float32)
    return out


class TextClassifiers:
    """Linear heads over hashed n-grams; load once, score batches."""

    def __init__(
        self,
        n_features: int,
        feature_index: np.ndarray,
        weights: np.ndarray,
        bias: np.ndarray,
        head_chars: int = DEFAULT_HEAD_CHARS,
        tail_chars: int = DEFAULT_TAIL_CHARS,
        window_tokens: int = 0,
        window_index: np.ndarray | None = None,
        window_weights: np.ndarray | None = None,
        window_bias: np.ndarray | None = None,
        prefix_chars: int = 0,
        datagen_index: np.ndarray | None = None,
        datagen_weights: np.ndarray | None = None,
        datagen_bias: np.ndarray | None = None,
    ) -> None:
        w = len(WINDOW_HEADS)
        if window_tokens < 0:
            raise ValueError("window_tokens must be >= 0")
        if prefix_chars < 0:
            raise ValueError("prefix_chars must be >= 0")
        if window_tokens and (
            window_index is None
            or window_weights is None
            or window_bias is None
            or window_weights.shape != (window_index.shape[0], w)
            or window_bias.shape != (w,)
        ):
            raise ValueError("window heads need index, weights [k, 2] and bias [2]")
        if weights.shape != (feature_index.shape[0], len(HEADS)) or bias.shape != (len(HEADS),):
            raise ValueError("artefact shapes do not match the heads")
        has_datagen = datagen_index is not None
        if has_datagen and (
            datagen_weights is None
            or datagen_bias is None
            or datagen_weights.shape != (len(datagen_index), 2)  # type: ignore[arg-type]
            or datagen_bias.shape != (2,)
        ):
            raise ValueError("the datagen head needs index, weights [k, 2] and bias [2]")
        self.n_features = int(n_features)
        self.head_chars = int(head_chars)
        self.tail_chars = int(tail_chars)
        self.prefix_chars = int(prefix_chars)
        dense = np.zeros((self.n_features, len(HEADS) + 1), dtype=np.float32)
        dense[feature_index.astype(np.int64), : len(HEADS)] = weights.astype(np.float32)
        wdense = np.zeros((self.n_features, w + 1), dtype=np.float64)
        dg_bias = np.full(2, _NO_HEAD_BIAS, np.float32)
        if has_datagen:
            assert datagen_weights is not None and datagen_bias is not None
            rows = np.asarray(datagen_index).astype(np.int64)
            dense[rows, DATAGEN_AT] = datagen_weights[:, 0].astype(np.float32)
            wdense[rows, w] = datagen_weights[:, 1].astype(np.float32)
            dg_bias = datagen_bias.astype(np.float32)
        self._weights = dense.astype(np.float64)  # C-contiguous float64: linear_scores' layout
        self._bias = np.append(bias.astype(np.float32), dg_bias[0])
        self.window_tokens = int(window_tokens)
        if window_tokens:
            assert window_index is not None and window_weights is not None
            wdense[window_index.astype(np.int64), :w] = window_weights.astype(np.float32)
        self._window_weights = window_int_weights(wdense)
        self._window_bias = np.append(
            window_bias.astype(np.float32) if window_bias is not None else np.zeros(w, np.float32),
            dg_bias[1],
        )

    @classmethod
    def load(cls, path: Path | None = None) -> TextClassifiers:
        """Load an artefact (default: the one packaged with distillwatch); cached per path."""
        return _load_cached(str(path) if path is not None else None)

    @classmethod
    def from_npz(cls, path: Path) -> TextClassifiers:
        """Build from an ``.npz`` artefact file (never unpickles)."""
        with np.load(path, allow_pickle=False) as z:
            if tuple(str(c) for c in z["capabilities"]) != CAPABILITIES:
                raise ValueError("artefact was trained for other capability labels")
            return cls(
                n_features=int(z["n_features"]),
                feature_index=z["feature_index"],
                weights=z["weights"],
                bias=z["bias"],
                head_chars=int(z["head_chars"]),
                tail_chars=int(z["tail_chars"]),
                **(
                    {
                        "window_tokens": int(z["window_tokens"]),
                        "window_index": z["window_index"],
                        "window_weights": z["window_weights"],
                        "window_bias": z["window_bias"],
                    }
                    if "window_tokens" in z
                    else {}
                ),
                prefix_chars=int(z["prefix_chars"]) if "prefix_chars" in z else 0,
                **(
                    {
                        "datagen_index": z["datagen_index"],
                        "datagen_weights": z["datagen_weights"],
                        "datagen_bias": z["datagen_bias"],
                    }
                    if "datagen_index" in z
                    else {}
                ),
            )

    def texts(self, system: Sequence[str | None], prompt: Sequence[str | None]) -> list[str]:
        """Clip and join each (system, prompt) pair into the scored text."""
        if len(system) != len(prompt):
            raise ValueError("system and prompt must have the same length")
        h, t = self.head_chars, self.tail_chars
        return [request_text(s, p, h, t) for s, p in zip(system, prompt, strict=True)]

    def text_expr(self, system: pl.Expr, prompt: pl.Expr) -> pl.Expr:
        """:func:`request_text` as a Polars expression (same clipping, same join)."""
        h, t = self.head_chars, self.tail_chars
        return (
            clip_expr(system.fill_null(""), h, t, "\n")
            + "\n"
            + clip_expr(prompt.fill_null(""), h, t, "\n")
        )

    def unigram_expr(self, system: pl.Expr, prompt: pl.Expr) -> pl.Expr:
        """Per request, the unigram hash list the heads score (see :meth:`score_unigrams`;
        with prefix features a list of ``{u, p}`` structs).

        Callers put it in the same Polars query as their other text work, so a
        batch pays Polars' per-query cost once.
        """
        return unigram_hash_expr(self.text_expr(system, prompt), self.prefix_chars)

    def score_unigrams(self, lists: pl.Series) -> TextScores:
        """Scores from the column :meth:`unigram_expr` computed."""
        return self._scores(self.logits(grams_from_unigrams(lists)))

    def score_unigram_hashes(
        self, flat: np.ndarray, lens: np.ndarray, pre: np.ndarray | None = None
    ) -> TextScores:
        """:meth:`score_unigrams` from the flat unigram hashes, each row's count
        and (with prefix features) the flat prefix hashes."""
        return self._scores(self.logits(grams_from_flat(flat, lens, pre)))

    def grams(self, texts: Sequence[str] | pl.Series) -> Grams:
        """:class:`Grams` of already joined texts, with this artefact's prefix features."""
        return text_grams(texts, self.prefix_chars)

    def logits(self, grams: Grams) -> np.ndarray:
        """float32 [n, len(HEADS) + 1]: the heads' logits on the whole text, then the
        datagen head's (column ``DATAGEN_AT``); for cot, rubric and datagen the larger
        of that and the window head's logit on the best window: ``window_tokens`` consecutive tokens of one line, or the whole line if it is
        shorter, a window scored like a text of its own. ``grams`` must carry prefix
        hashes exactly when the artefact has prefix features (:meth:`grams`)."""
        if (grams.pre is not None) != (self.prefix_chars > 0):
            raise ValueError("grams and artefact disagree on prefix features")
        uni_cols = feature_cols(grams.uni, self.n_features)
        big_cols = feature_cols(grams.next_big, self.n_features)
        parts = [(grams.row_of, uni_cols), (grams.row_of[grams.pair], big_cols[grams.pair])]
        pre_cols = pre_has = None
        extra = []
        if grams.pre is not None:  # prefix features: scaled like the grams, not counted
            pre_cols = feature_cols(grams.pre, self.n_features)
            pre_has = grams.pre != 0
            extra.append((grams.row_of[pre_has], pre_cols[pre_has]))
        z = linear_scores_from_cols(grams.n, parts, self._weights, self._bias, extra)
        k = self.window_tokens
        if k and len(grams.line_lens):
            best, size = window_max_sums(
                grams.line_lens, uni_cols, big_cols, self._window_weights, k, pre_cols, pre_has
            )
            scale = WINDOW_SCALE * np.sqrt(2.0 * size - 1.0)  # grams in a window
            zw = (best / scale[:, None] + self._window_bias.astype(np.float64)).astype(np.float32)
            # the best line of each row (lines are in row order)
            starts = np.ones(len(grams.line_row), dtype=bool)
            np.not_equal(grams.line_row[1:], grams.line_row[:-1], out=starts[1:])
            first = starts.nonzero()[0]
            rows = grams.line_row[first]
            at = (rows[:, None], _WINDOW_COLS)
            z[at] = np.maximum(z[at], np.maximum.reduceat(zw, first, axis=0))
        return z

    def score(self, system: Sequence[str | None], prompt: Sequence[str | None]) -> TextScores:
        """Score a batch of requests; ``None`` system or prompt counts as empty text."""
        if len(system) != len(prompt):
            raise ValueError("system and prompt must have the same length")
        frame = pl.DataFrame(
            {"system": list(system), "prompt": list(prompt)},
            schema={"system": pl.String, "prompt": pl.String},
        )
        lists = frame.select(self.unigram_expr(pl.col("system"), pl.col("prompt"))).to_series()
        return self.score_unigrams(lists)

    def _scores(self, z: np.ndarray) -> TextScores:
        caps = z[:, 2:DATAGEN_AT]
        proba = _softmax(caps) if len(z) else np.zeros((0, len(CAPABILITIES)), np.float32)
        return TextScores(
            cot=_sigmoid(z[:, 0]),
            rubric=_sigmoid(z[:, 1]),
            datagen=_sigmoid(z[:, DATAGEN_AT]),
            capability=proba.argmax(axis=1).astype(np.int8),
            capability_proba=proba,
        )

    # lean single-request path -------------------------------------------------
    def features_one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(indices, l2-normalised values) for one text, identical to the batch row."""
        return hashed_ngrams_one(text, self.n_features, self.prefix_chars)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str | None) -> TextClassifiers:
    if path is not None:
        return TextClassifiers.from_npz(Path(path))
    ref = resources.files("distillwatch") / "models" / _ARTEFACT
    with resources.as_file(ref) as p:
        return TextClassifiers.from_npz(p)
