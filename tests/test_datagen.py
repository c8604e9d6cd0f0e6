"""The datagen head and the datagen_share signal.

``tests/fixtures/datagen/requests.jsonl``: real generation templates (distilabel
self-instruct, genstruct, APIGen generator, the improving-text-embeddings generators and
brainstormers, sentence pairs; an Alpaca-style self-instruct prompt; Magpie pre-query
templates of three model families) filled with prompts of the packaged sample, and
requests that are no generation request: everyday list requests, the most common system
prompts over ordinary questions, a CoT demand, a grading prompt. End to end: an account
whose traffic is half generation requests is cited for it; one that asks for lists for
itself is not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from distillwatch.engine.detect import detect
from distillwatch.features.classifiers import HEADS, TextClassifiers
from handmade import event, prompts

FIXTURE = Path(__file__).parent / "fixtures" / "datagen" / "requests.jsonl"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def _rows() -> list[dict[str, Any]]:
    return [json.loads(x) for x in FIXTURE.read_text().splitlines() if x]


def test_fixture_holds_both_sides() -> None:
    rows = _rows()
    assert sum(r["datagen"] for r in rows) >= 30
    assert sum(not r["datagen"] for r in rows) >= 10
    assert {r["source"] for r in rows if r["datagen"]} >= {
        "self-instruct",
        "genstruct",
        "apigen/generator",
        "alpaca",
    }


def test_generation_templates_score_high_and_other_requests_low() -> None:
    clf = TextClassifiers.load()
    rows = _rows()
    s = clf.score([r["system"] for r in rows], [r["prompt"] for r in rows])
    for r, d in zip(rows, s.datagen, strict=True):
        if r["datagen"]:
            assert d >= 0.5, (r["source"], float(d))
        else:
            assert d < 0.5, (r["source"], r["prompt"][:60], float(d))


def test_datagen_does_not_move_the_other_heads(tmp_path: Path) -> None:
    """The datagen head is one more logit column: cot, rubric and capability are the
    same with and without it (the artefact arrays of the other heads are untouched),
    and the same artefact without the datagen arrays loads with datagen ~0."""
    clf = TextClassifiers.load()
    rows = _rows()
    texts = clf.texts([r["system"] for r in rows], [r["prompt"] for r in rows])
    z = clf.logits(clf.grams(texts))
    assert z.shape == (len(rows), len(HEADS) + 1)
    path = Path(__file__).resolve().parents[1] / "src/distillwatch/models/text_classifiers.npz"
    with np.load(path, allow_pickle=False) as a:
        assert {"datagen_index", "datagen_weights", "datagen_bias"} <= set(a.files)
        np.savez(
            tmp_path / "bare.npz", **{k: a[k] for k in a.files if not k.startswith("datagen_")}
        )
    bare = TextClassifiers.from_npz(tmp_path / "bare.npz")
    zb = bare.logits(bare.grams(texts))
    assert np.array_equal(z[:, : len(HEADS)], zb[:, : len(HEADS)])
    assert (bare.score([None], ["Generate 20 diverse instructions."]).datagen < 1e-6).all()


GENERATION = [
    "Create 30 question-answer pairs about {t} for a fine-tuning dataset.",
    "Generate 20 diverse instructions that a user might give to an AI assistant about {t}.",
    "Write a multi-turn conversation between a user and an AI assistant about {t}.",
]
OWN_USE = [
    "Give me 5 ideas for a birthday party for a friend who likes {t}.",
    "Suggest 10 blog post titles about {t}.",
    "Can you list 3 good books about {t}?",
]


def _account(aid: str, days_old: int) -> dict[str, Any]:
    return {
        "account_id": aid,
        "created_at": T0 - days_old * 86_400,
        "tier": "pay_as_you_go",
        "verified": False,
        "payment_fingerprint": f"pm_{aid}",
        "email_domain": "example.com",
    }


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(11)
    d = tmp_path_factory.mktemp("datagen")
    topics = [p.split("\n")[0][:80] for p in prompts("awesome_chatgpt_prompts")]
    hard = prompts("gsm8k")
    lines: list[bytes] = []
    for aid, asks in (("gen", GENERATION), ("lists", OWN_USE)):
        for i, t in enumerate(np.sort(T0 + rng.uniform(0, 2 * 86_400, 160))):
            topic = topics[int(rng.integers(len(topics)))]
            body = asks[i % len(asks)].format(t=topic) if i % 2 == 0 else hard[i % len(hard)]
            msgs = [{"role": "user", "content": body}]
            lines.append(event(f"{aid}-{i}", aid, t, msgs, {"max_tokens": 2048}, ip="198.51.100.7"))
    (d / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    acc = d / "accounts.jsonl"
    acc.write_bytes(b"".join(orjson.dumps(_account(a, 200)) + b"\n" for a in ("gen", "lists")))
    detect(d / "events.jsonl", d / "out", acc, workers=1)
    out = [orjson.loads(x) for x in (d / "out" / "accounts.jsonl").read_bytes().splitlines()]
    return {r["account_id"]: r for r in out}


def _signals(r: dict[str, Any]) -> set[str]:
    return {x.get("signal") or x.get("name") or "" for x in r["reasons"]}


def test_generation_account_is_cited_for_datagen(verdicts: dict[str, dict[str, Any]]) -> None:
    assert "datagen_share" in _signals(verdicts["gen"]), verdicts["gen"]["reasons"]
    assert verdicts["gen"]["risk"] > verdicts["lists"]["risk"]


def test_own_use_lists_are_not_cited(verdicts: dict[str, dict[str, Any]]) -> None:
    assert "datagen_share" not in _signals(verdicts["lists"]), verdicts["lists"]["reasons"]


def test_simulator_datagen_style_uses_the_packaged_templates() -> None:
    """The simulator's datagen style (sim/datagen.py) renders the packaged distilabel
    generation templates with real prompts in every slot; without them it falls back
    on written requests (the Evol-style one, "5 new tasks, harder than this one", is a
    known miss of the head: ~0.4)."""
    from dataclasses import replace

    from distillwatch.sim.corpus import load_corpus
    from distillwatch.sim.datagen import FALLBACK, SLOT, datagen_prompts, render_generator

    assert render_generator("A {{ x }} b {% for i in xs %}{{ i }}{% endfor %}") == ["A ", " b ", ""]
    corpus = load_corpus("/nonexistent")  # the packaged sample
    assert len(corpus.generator_templates) >= 4
    texts = datagen_prompts(corpus, np.random.default_rng(1), 60).to_pylist()
    assert len(texts) == 60 and all(t and SLOT not in t for t in texts)
    clf = TextClassifiers.load()
    assert (clf.score([None] * 60, texts).datagen >= 0.5).mean() >= 0.9
    fallback = datagen_prompts(
        replace(corpus, generator_templates={}), np.random.default_rng(1), 30
    )
    assert all(any(t.startswith(f.split("{}")[0]) for f in FALLBACK) for t in fallback.to_pylist())
