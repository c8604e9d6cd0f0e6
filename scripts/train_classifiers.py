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
3. Fits logistic regressions on hashed word 1-2 grams, reports held-out
   precision/recall/F1 (whole unseen sources x unseen phrasings), then refits on
   everything and saves weights only (npz, float16, non-zero rows).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_recall_fscore_support

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classifier_data import Example, build_examples

from distillwatch.features.classifiers import (
    CAPABILITIES,
    DEFAULT_HEAD_CHARS,
    DEFAULT_TAIL_CHARS,
    HEADS,
    request_text,
    vectorize,
)

REPO = Path(__file__).resolve().parents[1]
N_FEATURES = 2**18
C_BINARY = 10.0
C_CAPABILITY = 4.0
PRUNE_EPS = 2e-3  # rows whose largest |weight| is below this are dropped from the artefact


def data_dir() -> Path:
    env = os.environ.get("DISTILLWATCH_DATA_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    if not (path / "prompts_benign.jsonl.gz").exists():
        sys.exit(f"corpora not found in {path}; set DISTILLWATCH_DATA_DIR")
    return path


def vectorise(examples: list[Example]) -> sparse.csr_matrix:
    texts = [request_text(e.system, e.prompt) for e in examples]
    return vectorize(texts, N_FEATURES)


def fit_binary(x: sparse.csr_matrix, target: np.ndarray, weight: np.ndarray) -> LogisticRegression:
    """Soft targets in [0, 1] become a positive and a negative copy weighted t and 1-t."""
    soft = (target > 0) & (target < 1)
    pos, neg = target > 0, (target < 1)
    xs = sparse.vstack([x[pos], x[neg]]).tocsr()
    ys = np.r_[np.ones(pos.sum()), np.zeros(neg.sum())]
    ws = np.r_[weight[pos] * np.where(soft[pos], target[pos], 1.0), weight[neg] * (1 - target[neg])]
    return LogisticRegression(C=C_BINARY, max_iter=400).fit(xs, ys, sample_weight=ws)


def fit_all(x: sparse.csr_matrix, ex: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    """Fit the three heads; returns (weights [F, len(HEADS)], bias [len(HEADS)])."""
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


def predict(x: sparse.csr_matrix, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return np.asarray(x @ weights) + bias


def prf(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    pr, rc, f1, _ = precision_recall_fscore_support(y, p, average="binary", zero_division=0)
    return {
        "precision": round(float(pr), 4),
        "recall": round(float(rc), 4),
        "f1": round(float(f1), 4),
        "n": len(y),
        "positives": int(y.sum()),
    }


def evaluate(
    x: sparse.csr_matrix, ex: list[Example], weights: np.ndarray, bias: np.ndarray
) -> dict[str, object]:
    z = predict(x, weights, bias)
    p_cot, p_rub = 1 / (1 + np.exp(-z[:, 0])), 1 / (1 + np.exp(-z[:, 1]))
    cot = np.array([e.cot for e in ex])
    hard = np.isin(cot, [0.0, 1.0])
    rub = np.array([e.rubric for e in ex])
    kinds = np.array([e.kind for e in ex])
    out: dict[str, object] = {
        "cot": prf(cot[hard].astype(int), (p_cot[hard] >= 0.5).astype(int)),
        "rubric": prf(rub, (p_rub >= 0.5).astype(int)),
    }
    by_kind = {}
    for k in sorted(set(kinds)):
        m = kinds == k
        by_kind[k] = {
            "n": int(m.sum()),
            "mean_cot": round(float(p_cot[m].mean()), 3),
            "mean_rubric": round(float(p_rub[m].mean()), 3),
            "cot>=0.5": round(float((p_cot[m] >= 0.5).mean()), 3),
            "rubric>=0.5": round(float((p_rub[m] >= 0.5).mean()), 3),
        }
    out["by_kind"] = by_kind
    cap_y = np.array([e.capability for e in ex])
    m = (cap_y >= 0) & np.isin(kinds, ["plain", "agentic"])
    cap_p = z[m, 2:].argmax(axis=1)
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


def save(path: Path, weights: np.ndarray, bias: np.ndarray) -> None:
    keep = np.flatnonzero(np.abs(weights).max(axis=1) >= PRUNE_EPS)
    np.savez_compressed(
        path,
        feature_index=keep.astype(np.int32),
        weights=weights[keep].astype(np.float16),
        bias=bias.astype(np.float32),
        n_features=np.int64(N_FEATURES),
        head_chars=np.int64(DEFAULT_HEAD_CHARS),
        tail_chars=np.int64(DEFAULT_TAIL_CHARS),
        capabilities=np.array(CAPABILITIES),
        heads=np.array(HEADS),
    )
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {len(keep)} of {N_FEATURES} rows)")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--out", type=Path, default=REPO / "src/distillwatch/models/text_classifiers.npz"
    )
    ap.add_argument("--report", type=Path, default=None, help="write held-out metrics as JSON here")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--eval-only", action="store_true", help="skip the final refit on all data")
    args = ap.parse_args()
    t0 = time.time()
    train, test = build_examples(data_dir(), seed=args.seed)
    print(f"examples: train {len(train)}, test {len(test)} ({time.time() - t0:.0f}s)")
    x_train, x_test = vectorise(train), vectorise(test)
    weights, bias = fit_all(x_train, train)
    report = evaluate(x_test, test, weights, bias)
    report["train_examples"], report["test_examples"] = len(train), len(test)
    print(json.dumps(report, indent=1))
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    if not args.eval_only:
        weights, bias = fit_all(sparse.vstack([x_train, x_test]).tocsr(), train + test)
        save(args.out, weights, bias)
    print(f"done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
