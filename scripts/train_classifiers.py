"""Train the per-request text classifiers and write the packaged artefact.

Usage (from the repo root, venv active; needs jinja2 for the distilabel templates)::

    DISTILLWATCH_DATA_DIR=../shared/data python scripts/train_classifiers.py \
        [--out src/distillwatch/models/text_classifiers.npz] [--report docs/classifier_metrics.json]

What it does (details and the label rules: docs/classifiers.md):

1. Loads the real prompt corpora (``prompts_benign``/``prompts_distill``) and splits
   whole *source units* (a source, or source/group) into train and test.
2. Builds labelled requests by wrapping base prompts with hand-written CoT / rubric /
   agentic / neutral instructions (``classifier_phrasings.py``), the Orca system prompts
   and the real FastChat / distilabel judge templates; phrasings and templates are also
   split into train and test.  ``cot``/``rubric`` depend only on the wrapper, never on
   the corpus; ``capability`` comes from the source unit (keyword-verified where mixed).
3. Fits the whole-text heads (logistic regressions on hashed word 1-2 grams plus the
   first ``PREFIX_CHARS`` characters of each longer token, a sub-word feature).
4. Fits the two window heads (cot, rubric) on windows, the unit they score at inference
   (``WINDOW_TOKENS`` tokens of one line, or a shorter line): a window around each
   instruction with its labels, random windows of requests negative for both heads,
   then ``MINE_ROUNDS`` rounds of the best window of each over-scored request
   (negatives, and soft-labelled ones above their label).
5. Reports held-out precision/recall/F1 (whole unseen sources x unseen phrasings,
   scored exactly as the shipped artefact scores), then refits on everything and saves
   weights only (npz, float16, non-zero rows).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_recall_fscore_support

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classifier_data import Example, build_examples, tokens_of, window_examples

from distillwatch.features.classifiers import (
    CAPABILITIES,
    DATAGEN_AT,
    DEFAULT_HEAD_CHARS,
    DEFAULT_TAIL_CHARS,
    HEADS,
    WINDOW_HEADS,
    TextClassifiers,
    request_text,
    vectorize,
)
from distillwatch.features.hashing import text_grams

REPO = Path(__file__).resolve().parents[1]
N_FEATURES = 2**18
PREFIX_CHARS = 0  # sub-word prefix length for tokens longer than it (0: none; see docs)
C_BINARY = 10.0
C_CAPABILITY = 4.0
PRUNE_EPS = 2e-3  # rows whose largest |weight| is below this are dropped from the artefact
WINDOW_TOKENS = 24  # the window heads score every run of this many tokens of a line
C_WINDOW = 100.0
MINE_ROUNDS = 2
MINE_MIN = 0.3  # a negative request whose best window scores this much gives that window
MINE_SOFT_OVER = 0.15  # a soft-labelled one, when its best window exceeds the label by this


def data_dir() -> Path:
    env = os.environ.get("DISTILLWATCH_DATA_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    if not (path / "prompts_benign.jsonl.gz").exists():
        sys.exit(f"corpora not found in {path}; set DISTILLWATCH_DATA_DIR")
    return path


def vectorise(examples: list[Example]) -> sparse.csr_matrix:
    texts = [request_text(e.system, e.prompt) for e in examples]
    return vectorize(texts, N_FEATURES, PREFIX_CHARS)


def fit_binary(
    x: sparse.csr_matrix, target: np.ndarray, weight: np.ndarray, c: float = C_BINARY
) -> LogisticRegression:
    """Soft targets in [0, 1] become a positive and a negative copy weighted t and 1-t."""
    soft = (target > 0) & (target < 1)
    pos, neg = target > 0, (target < 1)
    xs = sparse.vstack([x[pos], x[neg]]).tocsr()
    ys = np.r_[np.ones(pos.sum()), np.zeros(neg.sum())]
    ws = np.r_[weight[pos] * np.where(soft[pos], target[pos], 1.0), weight[neg] * (1 - target[neg])]
    return LogisticRegression(C=c, max_iter=600).fit(xs, ys, sample_weight=ws)


def fit_all(x: sparse.csr_matrix, ex: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    """Fit the three whole-text heads; returns (weights [F, len(HEADS)], bias [len(HEADS)])."""
    w = np.array([e.weight for e in ex])
    cot = fit_binary(x, np.array([e.cot for e in ex]), w)
    rub = fit_binary(x, np.array([float(e.rubric) for e in ex]), w)
    cap_y = np.array([e.capability for e in ex])
    has = cap_y >= 0
    cap = LogisticRegression(C=C_CAPABILITY, max_iter=400, class_weight="balanced")
    cap.fit(x[has], cap_y[has], sample_weight=w[has])
    if list(cap.classes_) != list(range(len(CAPABILITIES))):
        raise RuntimeError(f"capability classes missing from training data: {cap.classes_}")
    weights = np.hstack([cot.coef_.T, rub.coef_.T, cap.coef_.T]).astype(np.float32)
    bias = np.r_[cot.intercept_, rub.intercept_, cap.intercept_].astype(np.float32)
    return weights, bias


@dataclass
class Model:
    """Whole-text heads [F, len(HEADS)] and window heads [F, len(WINDOW_HEADS)], unpruned."""

    weights: np.ndarray
    bias: np.ndarray
    window_weights: np.ndarray
    window_bias: np.ndarray


def shipped(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows :func:`save` keeps, with their float16 weights (as float32)."""
    keep = np.flatnonzero(np.abs(weights).max(axis=1) >= PRUNE_EPS)
    return keep, weights[keep].astype(np.float16).astype(np.float32)


def scorer(m: Model) -> TextClassifiers:
    """The classifier the artefact of this model loads as (pruned, float16 weights)."""
    keep, w16 = shipped(m.weights)
    wkeep, ww16 = shipped(m.window_weights)
    return TextClassifiers(
        N_FEATURES,
        keep,
        w16,
        m.bias,
        DEFAULT_HEAD_CHARS,
        DEFAULT_TAIL_CHARS,
        WINDOW_TOKENS,
        wkeep,
        ww16,
        m.window_bias,
        PREFIX_CHARS,
    )


def predict(ex: list[Example], m: Model) -> np.ndarray:
    """Logits [n, len(HEADS)] exactly as the shipped artefact scores the requests."""
    clf = scorer(m)
    return clf.logits(clf.grams([request_text(e.system, e.prompt) for e in ex])).astype(np.float64)


def best_windows(
    texts: list[str], w: np.ndarray, b: float, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per text with tokens, its highest-scoring window under window head ``w`` [F] and
    bias ``b``: (text indices, first token among the text's tokens without line breaks,
    window size, logit)."""
    g = text_grams(texts, PREFIX_CHARS)
    m = np.uint64(len(w))
    tok = w[(g.uni % m).astype(np.int64)]
    if g.pre is not None:  # a token's prefix feature weighs with it (not counted)
        tok = tok + np.where(g.pre != 0, w[(g.pre % m).astype(np.int64)], 0.0)
    nb = w[(g.next_big % m).astype(np.int64)]
    ends = np.cumsum(g.line_lens) - 1
    nb[ends] = 0
    prefix = np.r_[0.0, np.cumsum(tok + nb)]
    size = np.minimum(g.line_lens, k)
    count = g.line_lens - size + 1
    first = ends - g.line_lens + 1
    a = np.repeat(first - np.cumsum(count) + count, count) + np.arange(count.sum())
    s = np.repeat(size, count)
    logit = (prefix[a + s] - prefix[a] - nb[a + s - 1]) / np.sqrt(2 * s - 1) + b
    row = np.repeat(g.line_row, count)
    order = np.lexsort((-logit, row))
    best = order[np.flatnonzero(np.r_[True, row[order][1:] != row[order][:-1]])]
    rows = row[best]
    row_start = np.cumsum(g.lens) - g.lens
    return rows, a[best] - row_start[rows], s[best], logit[best]


Mined = dict[int, list[Example]]  # per window head: windows labelled for that head only


def mine(ex: list[Example], ww: np.ndarray, wb: np.ndarray) -> Mined:
    """The best window of each request the window heads over-score: negatives whose best
    window reaches ``MINE_MIN`` (labelled 0), soft-labelled ones whose best window exceeds
    the label by ``MINE_SOFT_OVER`` (labelled like the request if the window holds its
    instruction, else 0)."""
    texts = [request_text(e.system, e.prompt) for e in ex]
    k = WINDOW_TOKENS
    out: Mined = {}
    for head, label in enumerate((lambda e: e.cot, lambda e: float(e.rubric))):
        y = np.array([label(e) for e in ex])
        rows, starts, sizes, z = best_windows(texts, ww[:, head], float(wb[head]), k)
        p = 1 / (1 + np.exp(-z))
        yr = y[rows]
        soft = (yr > 0) & (yr < 1)
        pick = ((yr == 0) & (p >= MINE_MIN)) | (soft & (p >= yr + MINE_SOFT_OVER))
        idx, starts, sizes = rows[pick], starts[pick], sizes[pick]
        toks = tokens_of([texts[i] for i in idx])
        instr = tokens_of([ex[i].instr for i in idx])
        found = []
        for i, a, size, t, it in zip(idx, starts, sizes, toks, instr, strict=True):
            window = [x for x in t if x != "\n"][a : a + size]
            held = bool(it) and f" {' '.join(it)} " in f" {' '.join(window)} "
            target = y[i] if held else 0.0
            found.append(
                Example("", " ".join(window), target, int(target > 0), -1, f"mined/{ex[i].kind}")
            )
        out[head] = found
    return out


def fit_window_heads(win: list[Example], mined: Mined) -> tuple[np.ndarray, np.ndarray]:
    """Window heads [F, 2] and biases [2], each fitted on ``win`` plus its mined windows."""
    x = vectorise(win)
    w = np.array([e.weight for e in win])
    cols, biases = [], []
    for head, label in enumerate((lambda e: e.cot, lambda e: float(e.rubric))):
        extra = mined.get(head, [])
        xh = sparse.vstack([x, vectorise(extra)]).tocsr() if extra else x
        fit = fit_binary(
            xh,
            np.array([label(e) for e in win + extra]),
            np.r_[w, [e.weight for e in extra]],
            C_WINDOW,
        )
        cols.append(fit.coef_[0])
        biases.append(fit.intercept_[0])
    return np.stack(cols, axis=1).astype(np.float32), np.array(biases, dtype=np.float32)


def fit_model(train: list[Example], seed: int) -> tuple[Model, dict[str, int]]:
    """Whole-text heads on ``train``; window heads on its windows, with MINE_ROUNDS rounds
    of mining."""
    weights, bias = fit_all(vectorise(train), train)
    win = window_examples(train, WINDOW_TOKENS, random.Random(seed))
    mined: Mined = {h: [] for h in range(len(WINDOW_HEADS))}
    ww, wb = fit_window_heads(win, mined)
    for r in range(MINE_ROUNDS):
        found = mine(train, ww, wb)
        print(f"mining round {r + 1}: { {h: len(v) for h, v in found.items()} }", flush=True)
        for h in mined:
            mined[h] += found[h]
        ww, wb = fit_window_heads(win, mined)
    counts = {"window_examples": len(win)}
    counts.update({f"mined_{WINDOW_HEADS[h]}": len(v) for h, v in mined.items()})
    return Model(weights, bias, ww, wb), counts


def prf(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    pr, rc, f1, _ = precision_recall_fscore_support(y, p, average="binary", zero_division=0)
    return {
        "precision": round(float(pr), 4),
        "recall": round(float(rc), 4),
        "f1": round(float(f1), 4),
        "n": len(y),
        "positives": int(y.sum()),
    }


def evaluate(ex: list[Example], model: Model) -> dict[str, object]:
    z = predict(ex, model)
    p_cot, p_rub = 1 / (1 + np.exp(-z[:, 0])), 1 / (1 + np.exp(-z[:, 1]))
    cot = np.array([e.cot for e in ex])
    hard = np.isin(cot, [0.0, 1.0])
    rub = np.array([e.rubric for e in ex])
    kinds = np.array([e.kind for e in ex])
    group = np.array(
        ["long" if k.startswith("long/") else "other_languages" if k.startswith("ml_") else "main"
         for k in kinds]
    )  # fmt: skip
    out: dict[str, object] = {}
    for g in ("main", "long", "other_languages", "all"):
        m = group == g if g != "all" else np.ones(len(ex), dtype=bool)
        out[g] = {
            "cot": prf(cot[hard & m].astype(int), (p_cot[hard & m] >= 0.5).astype(int)),
            "rubric": prf(rub[m], (p_rub[m] >= 0.5).astype(int)),
        }
    by_kind = {}
    for k in sorted(set(kinds)):
        m = kinds == k
        by_kind[k] = {
            "n": int(m.sum()),
            "mean_cot": round(float(p_cot[m].mean()), 3),
            "mean_rubric": round(float(p_rub[m].mean()), 3),
            "cot>=0.5": round(float((p_cot[m] >= 0.5).mean()), 3),
            "cot>=0.75": round(float((p_cot[m] >= 0.75).mean()), 3),  # cot_elicitation's cut
            "rubric>=0.5": round(float((p_rub[m] >= 0.5).mean()), 3),
        }
    out["by_kind"] = by_kind
    cap_y = np.array([e.capability for e in ex])
    m = (cap_y >= 0) & np.isin(kinds, ["plain", "agentic"])
    cap_p = z[m, 2:DATAGEN_AT].argmax(axis=1)
    labels = list(range(len(CAPABILITIES)))
    f1s = f1_score(cap_y[m], cap_p, labels=labels, average=None, zero_division=0)
    support = np.bincount(cap_y[m], minlength=len(labels))
    present = support > 0
    out["capability"] = {
        "macro_f1_present_classes": round(float(f1s[present].mean()), 4),
        "accuracy": round(float((cap_y[m] == cap_p).mean()), 4),
        "per_class": {
            CAPABILITIES[i]: {"f1": round(float(f1s[i]), 4), "support": int(support[i])}
            for i in labels
        },
    }
    return out


def save(path: Path, m: Model) -> None:
    """Write the artefact; the datagen head of the artefact already at ``path`` is kept
    (it is trained apart, on the same features: scripts/train_datagen.py)."""
    keep, w16 = shipped(m.weights)
    wkeep, ww16 = shipped(m.window_weights)
    datagen: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            datagen = {k: z[k] for k in z.files if k.startswith("datagen_")}
    if not datagen:
        print("no datagen head at --out: run scripts/train_datagen.py next")
    np.savez_compressed(
        path,
        **datagen,
        feature_index=keep.astype(np.int32),
        weights=w16.astype(np.float16),
        bias=m.bias.astype(np.float32),
        n_features=np.int64(N_FEATURES),
        head_chars=np.int64(DEFAULT_HEAD_CHARS),
        tail_chars=np.int64(DEFAULT_TAIL_CHARS),
        capabilities=np.array(CAPABILITIES),
        heads=np.array(HEADS),
        window_tokens=np.int64(WINDOW_TOKENS),
        window_index=wkeep.astype(np.int32),
        window_weights=ww16.astype(np.float16),
        window_bias=m.window_bias.astype(np.float32),
        prefix_chars=np.int64(PREFIX_CHARS),
    )
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {len(keep)} of {N_FEATURES} rows,"
        f" {len(wkeep)} window rows)"
    )


def main() -> None:
    global PREFIX_CHARS
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--out", type=Path, default=REPO / "src/distillwatch/models/text_classifiers.npz"
    )
    ap.add_argument("--report", type=Path, default=None, help="write held-out metrics as JSON here")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--eval-only", action="store_true", help="skip the final refit on all data")
    ap.add_argument(
        "--eval-artefact", type=Path, default=None, help="also save the train-only fit here"
    )
    ap.add_argument(
        "--prefix-chars", type=int, default=PREFIX_CHARS, help="sub-word prefix length (0: none)"
    )
    args = ap.parse_args()
    PREFIX_CHARS = args.prefix_chars
    t0 = time.time()
    train, test = build_examples(data_dir(), seed=args.seed)
    print(f"examples: train {len(train)}, test {len(test)} ({time.time() - t0:.0f}s)")
    model, counts = fit_model(train, args.seed)
    report = evaluate(test, model)
    report["train_examples"], report["test_examples"] = len(train), len(test)
    report.update(counts)
    print(json.dumps(report, indent=1))
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    if args.eval_artefact:
        save(args.eval_artefact, model)
    if not args.eval_only:
        # the long/ test rows reuse the test prompts: not training material
        refit = train + [e for e in test if not e.kind.startswith("long/")]
        model, _ = fit_model(refit, args.seed)
        save(args.out, model)
    print(f"done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
