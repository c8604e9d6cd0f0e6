"""Prompt pools and templates the simulator draws text from.

Text always comes from the real public corpora listed in
``../shared/data/MANIFEST.md``: the benign prompt corpus (kind A), the
distillation corpus (kind B) and the template files (Orca system prompts,
FastChat judge prompts, distilabel UltraFeedback / Prometheus rubrics).

The data directory is taken from ``data_dir``, else ``$DISTILLWATCH_DATA_DIR``,
else ``../shared/data`` next to the repository. When none exists the small
stratified sample shipped in ``sim/data/`` is used (see ``sim/data/LICENSES.md``),
so tests and the demo run from a bare clone.

Pools are Arrow string arrays: the generator draws prompts *by index*
(``pool.take(idx)``), never by building Python strings per event.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

SAMPLE_DIR = Path(__file__).parent / "data"
SAMPLE_PROMPTS = SAMPLE_DIR / "sample_prompts.jsonl.gz"
SAMPLE_TEMPLATES = SAMPLE_DIR / "sample_templates.json"
MAX_PROMPT_CHARS = 6000

# Pool name -> corpus sources (optionally "source:group-prefix") it is drawn from.
POOL_SOURCES: dict[str, tuple[str, ...]] = {
    "chat": (
        "hh_rlhf_harmless_test",
        "oasst_eval_prompts",
        "self_instruct_user_oriented",
        "ultrachat_eval",
        "vicuna_bench",
        "arena_hard_v0.1",
    ),
    "roleplay": ("awesome_chatgpt_prompts",),
    "coding": ("humaneval", "mbpp", "arena_hard_v2.0"),
    "eval_gsm8k": ("gsm8k",),
    "eval_code": ("humaneval", "mbpp"),
    "eval_mtbench": ("mt_bench",),
    "templated": ("t0_templated",),
    "agentic": ("gpteacher:Codegen", "gpteacher:Toolformer"),
    "gpteacher": ("gpteacher",),
    "cot": ("flan_cot",),
    "hard_math": ("math_cot_problems",),
}


def default_data_dir() -> Path | None:
    """Resolve the shared corpus directory, or ``None`` when only the sample exists."""
    env = os.environ.get("DISTILLWATCH_DATA_DIR")
    if env:
        p = Path(env)
        return p if (p / "prompts_benign.jsonl.gz").exists() else None
    p = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    return p if (p / "prompts_benign.jsonl.gz").exists() else None


@dataclass
class Corpus:
    """Loaded pools (Arrow string arrays) plus group labels and templates."""

    pools: dict[str, pa.StringArray]
    groups: dict[str, np.ndarray]
    orca_system: list[str]
    judge_prompts: list[dict[str, str]]
    rubric_templates: dict[str, str]
    source: str = "sample"
    # synthetic-data generation templates (distilabel), for the datagen style
    generator_templates: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def pool(self, name: str) -> pa.StringArray:
        return self.pools[name]


def _read_rows(path: Path) -> list[dict[str, str | None]]:
    with gzip.open(path, "rb") as fh:
        return [orjson.loads(line) for line in fh]


def _matches(row: dict[str, str | None], spec: str) -> bool:
    src, _, grp = spec.partition(":")
    if row["source"] != src:
        return False
    return not grp or str(row.get("group") or "").startswith(grp)


def _build_pools(
    rows: list[dict[str, str | None]],
) -> tuple[dict[str, pa.StringArray], dict[str, np.ndarray]]:
    by_source: dict[str, list[dict[str, str | None]]] = {}
    for r in rows:
        by_source.setdefault(str(r["source"]), []).append(r)
    pools: dict[str, pa.StringArray] = {}
    groups: dict[str, np.ndarray] = {}
    for name, specs in POOL_SOURCES.items():
        sel = [
            r
            for spec in specs
            for r in by_source.get(spec.partition(":")[0], [])
            if _matches(r, spec) and r["prompt"]
        ]
        if not sel:
            raise ValueError(f"corpus has no rows for pool {name!r} ({specs})")
        pools[name] = pa.array([str(r["prompt"])[:MAX_PROMPT_CHARS] for r in sel], pa.string())
        groups[name] = np.array([str(r.get("group") or r["source"]) for r in sel], dtype=object)
    return pools, groups


def _load_templates_from_dir(tdir: Path) -> dict[str, object]:
    orca = json.loads((tdir / "orca_system_prompts.json").read_text())["system_prompts"]
    judges = [
        json.loads(x) for x in (tdir / "fastchat_judge_prompts.jsonl").read_text().splitlines() if x
    ]
    rub_dir = tdir / "distilabel"
    rubrics = {
        "ultrafeedback_helpfulness": (rub_dir / "ultrafeedback" / "helpfulness.jinja2").read_text(),
        "ultrafeedback_honesty": (rub_dir / "ultrafeedback" / "honesty.jinja2").read_text(),
        "prometheus_absolute": (
            rub_dir / "prometheus" / "absolute_without_reference.jinja2"
        ).read_text(),
        "prometheus_relative": (
            rub_dir / "prometheus" / "relative_without_reference.jinja2"
        ).read_text(),
        "quality_scorer": (rub_dir / "quality-scorer.jinja2").read_text(),
    }
    generators = {
        "self_instruct": (rub_dir / "self-instruct.jinja2").read_text(),
        "apigen_generator": (rub_dir / "apigen" / "generator.jinja2").read_text(),
        "embeddings_text_retrieval": (
            rub_dir / "improving_text_embeddings" / "text-retrieval.jinja2"
        ).read_text(),
        "embeddings_brainstorm_classification": (
            rub_dir / "improving_text_embeddings" / "brainstorming" / "text-classification.jinja2"
        ).read_text(),
    }
    return {
        "orca_system_prompts": orca,
        "fastchat_judge_prompts": [
            {k: j[k] for k in ("name", "system_prompt", "prompt_template")} for j in judges
        ],
        "rubrics": rubrics,
        "generators": generators,
    }


@lru_cache(maxsize=4)
def load_corpus(data_dir: str | None = None) -> Corpus:
    """Load pools from ``data_dir`` (or the default shared dir, or the shipped sample)."""
    ddir = Path(data_dir) if data_dir else default_data_dir()
    if ddir is not None and (ddir / "prompts_benign.jsonl.gz").exists():
        rows = _read_rows(ddir / "prompts_benign.jsonl.gz") + _read_rows(
            ddir / "prompts_distill.jsonl.gz"
        )
        tmpl = _load_templates_from_dir(ddir / "templates")
        source = str(ddir)
    else:
        rows = _read_rows(SAMPLE_PROMPTS)
        tmpl = json.loads(SAMPLE_TEMPLATES.read_text())
        source = "sample"
    pools, groups = _build_pools(rows)
    return Corpus(
        pools=pools,
        groups=groups,
        orca_system=[str(s) for s in tmpl["orca_system_prompts"]],  # type: ignore[attr-defined]
        judge_prompts=list(tmpl["fastchat_judge_prompts"]),  # type: ignore[call-overload]
        rubric_templates=dict(tmpl["rubrics"]),  # type: ignore[call-overload]
        generator_templates=dict(tmpl.get("generators") or {}),  # type: ignore[call-overload]
        source=source,
        sizes={k: len(v) for k, v in pools.items()},
    )


def build_sample(
    data_dir: Path, out_dir: Path = SAMPLE_DIR, per_source: int = 200, seed: int = 7
) -> None:
    """Write the shipped stratified sample (``per_source`` prompts per source/group mix).

    Templated sources are stratified by ``group`` so the sample keeps several
    distinct templates (one template = one templated stream).
    """
    rng = np.random.default_rng(seed)
    rows = _read_rows(data_dir / "prompts_benign.jsonl.gz") + _read_rows(
        data_dir / "prompts_distill.jsonl.gz"
    )
    by_key: dict[str, list[dict[str, str | None]]] = {}
    for r in rows:
        key = str(r["source"])
        if key in ("t0_templated", "gpteacher"):
            key += "|" + str(r.get("group"))
        by_key.setdefault(key, []).append(r)
    t0_groups = sorted(k for k in by_key if k.startswith("t0_templated|"))
    keep_t0 = set(rng.choice(t0_groups, size=min(12, len(t0_groups)), replace=False).tolist())
    out: list[dict[str, str | None]] = []
    for key, rs in sorted(by_key.items()):
        if key.startswith("t0_templated|"):
            if key not in keep_t0:
                continue
            n = 25
        elif key.startswith("gpteacher|"):
            n = per_source // 2
        else:
            n = per_source
        idx = rng.choice(len(rs), size=min(n, len(rs)), replace=False)
        for i in sorted(idx.tolist()):
            r = dict(rs[i])
            r["prompt"] = str(r["prompt"])[:4000]
            out.append(r)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = b"".join(orjson.dumps(r) + b"\n" for r in out)
    (out_dir / SAMPLE_PROMPTS.name).write_bytes(gzip.compress(payload, mtime=0))
    tmpl = _load_templates_from_dir(data_dir / "templates")
    (out_dir / SAMPLE_TEMPLATES.name).write_text(json.dumps(tmpl, indent=1, ensure_ascii=False))
