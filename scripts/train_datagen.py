"""Train the ``datagen`` head (a request that asks the model to manufacture training data)
and add it to the packaged classifier artefact.

Usage (from the repo root, venv active; needs jinja2), after ``train_classifiers.py``::

    DISTILLWATCH_DATA_DIR=../shared/data python scripts/train_datagen.py \
        [--artefact src/distillwatch/models/text_classifiers.npz] [--report docs/datagen_metrics.json]

The head is a whole-text logistic regression plus a window head, on the same stateless
hashed features as the other heads (so it adds one column to the same scoring pass).
It is fitted on its own examples (``classifier_datagen.py``: real generation templates,
hand-written and generated generation requests as positives; every request of the
other heads' data set and ordinary list requests as negatives), so the cot, rubric and
capability weights in the artefact are left exactly as they are. Reports held-out
precision/recall (unseen template families and phrasings on unseen sources), then refits
on everything and rewrites the artefact with ``datagen_index``, ``datagen_weights``
(float16 [k, 2]: whole text, window) and ``datagen_bias`` added.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import classifier_datagen as dg
from classifier_data import Example, build_examples, window_examples
from train_classifiers import (
    C_BINARY,
    C_WINDOW,
    MINE_MIN,
    REPO,
    WINDOW_TOKENS,
    best_windows,
    data_dir,
    fit_binary,
    tokens_of,
    vectorise,
)

from distillwatch.features.classifiers import TextClassifiers, request_text

MINE_ROUNDS = 2
# rows whose largest |weight| is below this are dropped (coarser than the other heads'
# PRUNE_EPS: it keeps the artefact under 5 MB; held-out scores measured after pruning)
DG_PRUNE_EPS = 8e-2


def _instruction(template: str) -> str:
    """The instruction a window should hold: the longest part of the phrasing's first line
    outside its topic slot."""
    first = template.strip().split("\n", 1)[0]
    return max((p.strip(" .:") for p in first.split("{t}")), key=len)


def _constant_line(renders: list[str]) -> str:
    """The longest line present in every render of a template (its fixed instruction)."""
    common: set[str] | None = None
    for r in renders:
        lines = {x.strip() for x in r.split("\n") if x.strip()}
        common = lines if common is None else common & lines
    good = [x for x in common or set() if len(x.split()) <= 40]
    return max(good, key=len, default="")


def datagen_examples(
    bases: list[Example], test: bool, data: Path, rng: random.Random
) -> list[Example]:
    """The other heads' requests as negatives, plus datagen positives and ordinary list
    requests; the datagen label rides in ``Example.cot`` so the window helpers apply."""
    out = [
        Example(e.system, e.prompt, 0.0, 0, -1, f"base/{e.kind}", e.weight, e.instr)
        for e in bases
        if not e.kind.startswith("long/")
    ]
    prompts = [e.prompt for e in bases if e.kind == "plain"]
    pick = 1 if test else 0
    pos, neg = dg.split(dg.DATAGEN)[pick], dg.split(dg.NOT_DATAGEN)[pick]
    if not test:
        pos = pos + dg.datagen_grammar(rng, 3000)
        neg = neg + dg.ordinary_list_grammar(rng, 600)
    for i in range(len(prompts) // 3):
        t = dg.topic_of(rng.choice(prompts), rng)
        instr = rng.choice(pos)
        text, where = dg.fill(instr, t), rng.random()
        if where < 0.2 and "{t}" in instr:  # the generator brief as system prompt
            system, prompt = dg.fill(instr, "the user's topic"), t
        elif where < 0.35:
            system, prompt = "", f"{rng.choice(prompts)[:400]}\n\n{text}"
        else:
            system, prompt = "", text
        out.append(Example(system, prompt, 1.0, 0, -1, "dg_phrasing", 1.0, _instruction(instr)))
        if i % 2 == 0:
            hard = dg.fill(rng.choice(neg), dg.topic_of(rng.choice(prompts), rng))
            out.append(Example("", hard, 0.0, 0, -1, "not_dg_list", 1.0, _instruction(hard)))
    # the everyday system prompts (and those inside the Magpie templates) with ordinary
    # requests: negatives, so that only a bare chat template reads as a generation request
    systems = dg.magpie_system_prompts(data)
    for _ in range(len(prompts) // 10):
        out.append(Example(rng.choice(systems), rng.choice(prompts), 0.0, 0, -1, "not_dg_system"))
    rendered = dg.render_templates(data, prompts, rng, per=150 if test else 250)
    for name, rows in rendered.items():
        if dg.is_test_template(name) != test:
            continue
        magpie = name.startswith("magpie/")
        # (no window for a Magpie template: its lines are a system prompt and role tags)
        instr = "" if magpie else _constant_line([r.split("\x1e", 1)[1] for r in rows])
        kind = "dg_magpie" if magpie else f"dg_template/{name}"
        for r in rows:
            system, prompt = r.split("\x1e", 1)
            out.append(Example(system, prompt, 1.0, 0, -1, kind, 1.0, instr))
    return out


def fit_window(win: list[Example], mined: list[Example]) -> tuple[np.ndarray, float]:
    rows = win + mined
    fit = fit_binary(
        vectorise(rows),
        np.array([e.cot for e in rows]),
        np.array([e.weight for e in rows]),
        C_WINDOW,
    )
    return fit.coef_[0].astype(np.float32), float(fit.intercept_[0])


def mine(ex: list[Example], w: np.ndarray, b: float) -> list[Example]:
    """Best windows of the negatives the window head scores at MINE_MIN or more, labelled 0."""
    texts = [request_text(e.system, e.prompt) for e in ex]
    rows, starts, sizes, z = best_windows(texts, w, b, WINDOW_TOKENS)
    y = np.array([ex[i].cot for i in rows])
    pick = (y == 0) & (1 / (1 + np.exp(-z)) >= MINE_MIN)
    toks = tokens_of([texts[i] for i in rows[pick]])
    return [
        Example("", " ".join([x for x in t if x != "\n"][a : a + s]), 0.0, 0, -1, "mined")
        for t, a, s in zip(toks, starts[pick], sizes[pick], strict=True)
    ]


def fit(ex: list[Example], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(whole weights [F], window weights [F], biases [2]) plus mined counts."""
    y, w = np.array([e.cot for e in ex]), np.array([e.weight for e in ex])
    whole = fit_binary(vectorise(ex), y, w, C_BINARY)
    win = window_examples(ex, WINDOW_TOKENS, random.Random(seed))
    mined: list[Example] = []
    ww, wb = fit_window(win, mined)
    for r in range(MINE_ROUNDS):
        found = mine(ex, ww, wb)
        print(f"mining round {r + 1}: {len(found)} windows", flush=True)
        mined += found
        ww, wb = fit_window(win, mined)
    return (
        whole.coef_[0].astype(np.float32),
        ww,
        np.array([whole.intercept_[0], wb], np.float32),
        np.array([len(win), len(mined)]),
    )


def pruned(whole: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    both = np.stack([whole, window], axis=1)
    keep = np.flatnonzero(np.abs(both).max(axis=1) >= DG_PRUNE_EPS)
    return keep, both[keep].astype(np.float16)


def with_head(
    artefact: Path, whole: np.ndarray, window: np.ndarray, bias: np.ndarray
) -> dict[str, np.ndarray]:
    with np.load(artefact, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if not k.startswith("datagen_")}
    keep, w16 = pruned(whole, window)
    arrays.update(
        datagen_index=keep.astype(np.int32),
        datagen_weights=w16,
        datagen_bias=bias.astype(np.float32),
    )
    return arrays


def evaluate(ex: list[Example], clf: TextClassifiers) -> dict[str, object]:
    p = clf.score([e.system for e in ex], [e.prompt for e in ex]).datagen
    y = np.array([e.cot for e in ex]) > 0
    base = np.array([e.kind.startswith("base/") for e in ex])
    hit = p >= 0.5
    tp = int((hit & y).sum())
    out: dict[str, object] = {
        "precision": round(tp / max(1, int(hit.sum())), 4),
        "recall": round(tp / max(1, int(y.sum())), 4),
        "n": len(ex),
        "positives": int(y.sum()),
    }
    by_kind: dict[str, dict[str, float]] = {}
    full = np.array([e.kind for e in ex])
    for k in sorted(set(full[~base]) | {"base"}):
        m = base if k == "base" else full == k
        by_kind[k] = {
            "n": int(m.sum()),
            "mean": round(float(p[m].mean()), 3),
            ">=0.5": round(float(hit[m].mean()), 4),
        }
    for k in sorted({e.kind for e in ex if e.kind.startswith("base/")}):
        m = full == k
        by_kind[k] = {
            "n": int(m.sum()),
            "mean": round(float(p[m].mean()), 3),
            ">=0.5": round(float(hit[m].mean()), 4),
        }
    out["by_kind"] = by_kind
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--artefact", type=Path, default=REPO / "src/distillwatch/models/text_classifiers.npz"
    )
    ap.add_argument("--report", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--eval-artefact", type=Path, default=None, help="keep the train-only fit here")
    args = ap.parse_args()
    t0 = time.time()
    data = data_dir()
    train_b, test_b = build_examples(data, seed=args.seed)
    rng = random.Random(args.seed + 1)
    train = datagen_examples(train_b, False, data, rng)
    test = datagen_examples(test_b, True, data, rng)
    print(f"examples: train {len(train)}, test {len(test)} ({time.time() - t0:.0f}s)", flush=True)
    whole, window, bias, counts = fit(train, args.seed)
    tmp = args.artefact.with_suffix(".eval.npz")
    np.savez_compressed(tmp, **with_head(args.artefact, whole, window, bias))
    report = evaluate(test, TextClassifiers.from_npz(tmp))
    if args.eval_artefact:
        tmp.replace(args.eval_artefact)
    else:
        tmp.unlink()
    report.update(
        train_examples=len(train),
        test_examples=len(test),
        window_examples=int(counts[0]),
        mined=int(counts[1]),
    )
    print(json.dumps(report, indent=1))
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    if not args.eval_only:
        whole, window, bias, _ = fit(train + test, args.seed)
        arrays = with_head(args.artefact, whole, window, bias)
        np.savez_compressed(args.artefact, **arrays)
        print(
            f"wrote {args.artefact} ({args.artefact.stat().st_size / 1e6:.2f} MB, {len(arrays['datagen_index'])} datagen rows)"
        )
    print(f"done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
