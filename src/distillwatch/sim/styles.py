"""Per-archetype request styles (legitimate and attack).

``STYLES[name](ctx) -> Text``; ``ctx`` gives the corpus, an RNG, the number of
requests, each request's position in its session (``pos``, drives growing
multi-turn context) and a principal-stable integer ``slot`` (which template,
benchmark or company a principal uses). Prompts are always corpus text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.sim.corpus import Corpus
from distillwatch.sim.datagen import datagen_prompts
from distillwatch.sim.textgen import (
    AGENT_SYSTEM,
    COMPANIES,
    COT_SUFFIXES,
    DEV_PREFIXES,
    ENTERPRISE_SYSTEMS,
    EVAL_TEMPLATES,
    RAG_SYSTEM,
    Text,
    draw,
    join,
    mixed,
    paraphrase,
    pick,
    rubric_prompts,
)


@dataclass
class Ctx:
    corpus: Corpus
    rng: np.random.Generator
    n: int
    pos: np.ndarray
    slot: np.ndarray
    paraphrase_rate: float = 0.0
    answers: pa.Array | None = None  # candidate answers for rubric prompts


def _nulls(n: int) -> pa.Array:
    return pa.nulls(n, pa.string())


def casual(c: Ctx) -> Text:
    """Free-tier chat: diverse prompts, conversations that grow turn by turn."""
    prompt = mixed(
        c.corpus, c.rng, c.n, ["chat", "roleplay", "eval_gsm8k", "coding"], [0.72, 0.1, 0.1, 0.08]
    )
    sys_idx = (c.rng.random(c.n) < 0.2).astype(np.int64)
    return Text(
        pick([None, "You are a helpful assistant."], sys_idx),
        prompt,
        np.minimum(c.pos, 12),
        np.zeros(c.n, np.int64),
        "chat",
    )


def developer(c: Ctx) -> Text:
    """Coding-assistant users: code questions with edit/test/explain wrappers."""
    body = mixed(c.corpus, c.rng, c.n, ["coding", "chat", "agentic"], [0.7, 0.2, 0.1])
    prompt = join(pick(DEV_PREFIXES, c.rng.integers(0, len(DEV_PREFIXES), c.n)), body)
    sys = pick(
        [None, "You are a senior software engineer. Be concise and show code."],
        (c.slot % 2).astype(np.int64),
    )
    return Text(sys, prompt, np.minimum(c.pos, 8), np.zeros(c.n, np.int64), "coding")


def agent(c: Ctx) -> Text:
    """Multi-agent coding power users: tool loops with long, growing contexts."""
    body = mixed(c.corpus, c.rng, c.n, ["coding", "agentic", "chat"], [0.55, 0.35, 0.1])
    prompt = join("Continue with the task. Latest instruction from the user:\n", body)
    return Text(
        pick([AGENT_SYSTEM], np.zeros(c.n, np.int64)),
        prompt,
        np.minimum(c.pos // 3 + 1, 20),
        np.minimum(c.pos + 1, 40),
        "coding",
    )


def _grouped(c: Ctx, pool: str, n_groups_per_slot: int) -> pa.Array:
    """Draw from a few template groups of ``pool`` chosen by the principal's slot."""
    groups = c.corpus.groups[pool]
    order = np.argsort(groups, kind="stable")
    uniq, start, size = np.unique(groups[order], return_index=True, return_counts=True)
    g = (c.slot * 7919 + c.rng.integers(0, n_groups_per_slot, c.n)) % len(uniq)
    idx = order[start[g] + (c.rng.random(c.n) * size[g]).astype(np.int64)]
    return c.corpus.pool(pool).take(pa.array(idx))


def enterprise(c: Ctx) -> Text:
    """Enterprise batch: one templated classification/extraction stream per job."""
    sys = pick(ENTERPRISE_SYSTEMS, (c.slot % len(ENTERPRISE_SYSTEMS)).astype(np.int64))
    return Text(
        sys, _grouped(c, "templated", 2), np.zeros(c.n, np.int64), np.zeros(c.n, np.int64), "chat"
    )


def eval_harness(c: Ctx) -> Text:
    """Evaluation harnesses: benchmark items in dataset order, fixed templates."""
    bench = c.slot % 3
    out = []
    order = np.argsort(bench, kind="stable")
    for b, (pool, key) in enumerate(
        [("eval_gsm8k", "gsm8k"), ("eval_code", "code"), ("eval_mtbench", "mtbench")]
    ):
        rows = np.flatnonzero(bench == b)
        p = c.corpus.pool(pool)
        item = p.take(pa.array((c.slot[rows] * 131 + np.arange(len(rows))) % len(p)))
        pre, suf, cot = EVAL_TEMPLATES[key]
        use_cot = (c.slot[rows] // 3) % 2 == 1
        out.append(join(pre, item, pick([suf, cot], use_cot.astype(np.int64))))
    prompt = pa.concat_arrays(out).take(pa.array(np.argsort(order, kind="stable")))
    return Text(_nulls(c.n), prompt, np.zeros(c.n, np.int64), np.zeros(c.n, np.int64), "chat")


def rag(c: Ctx) -> Text:
    """RAG backend: fixed system prompt + retrieved passages + an end-user question."""
    sys = pick(
        [RAG_SYSTEM.format(company=x) for x in COMPANIES],
        (c.slot % len(COMPANIES)).astype(np.int64),
    )
    ctxt = draw(c.corpus, "templated", c.rng, c.n)
    q = draw(c.corpus, "chat", c.rng, c.n)
    return Text(
        sys,
        join("Context:\n[1] ", ctxt, "\n\nQuestion: ", q),
        np.zeros(c.n, np.int64),
        np.zeros(c.n, np.int64),
        "chat",
    )


def researcher(c: Ctx) -> Text:
    """Research-program users: hard problems, benchmarks and open questions."""
    prompt = mixed(
        c.corpus, c.rng, c.n, ["hard_math", "chat", "eval_mtbench", "cot"], [0.35, 0.35, 0.15, 0.15]
    )
    return Text(_nulls(c.n), prompt, np.minimum(c.pos, 4), np.zeros(c.n, np.int64), "chat")


def _single_turn(c: Ctx, sys: pa.Array, prompt: pa.Array) -> Text:
    """Single-turn attack text: optional system prompt, prompt paraphrased at the tactic's rate."""
    return Text(
        sys,
        paraphrase(prompt, c.rng, c.paraphrase_rate),
        np.zeros(c.n, np.int64),
        np.zeros(c.n, np.int64),
        "chat",
    )


def harvest(c: Ctx) -> Text:
    """Bulk harvesting of kind-B task prompts under Orca system prompts."""
    prompt = mixed(
        c.corpus,
        c.rng,
        c.n,
        ["cot", "gpteacher", "templated", "hard_math"],
        [0.35, 0.25, 0.25, 0.15],
    )
    orca = c.corpus.orca_system
    sys = pick([s or None for s in orca], c.rng.integers(0, len(orca), c.n))
    return _single_turn(c, sys, prompt)


def hydra(c: Ctx) -> Text:
    """Hydra cluster: a shared task pool (few template groups + CoT sets) per campaign."""
    tasks = pa.concat_arrays([_grouped(c, "templated", 6), draw(c.corpus, "cot", c.rng, c.n)])
    pick_cot = c.rng.random(c.n) < 0.5
    prompt = tasks.take(pa.array(np.arange(c.n) + pick_cot * c.n))
    sys = pick([None, c.corpus.orca_system[6]], (c.rng.random(c.n) < 0.6).astype(np.int64))
    return _single_turn(c, sys, prompt)


def cot_coercion(c: Ctx) -> Text:
    """Chain-of-thought coercion: tasks plus instructions to write out internal reasoning."""
    body = mixed(c.corpus, c.rng, c.n, ["hard_math", "cot", "gpteacher"], [0.4, 0.4, 0.2])
    k = c.rng.integers(0, len(COT_SUFFIXES), c.n)
    suffix = pick(COT_SUFFIXES, k)
    front = c.rng.random(c.n) < 0.25  # clause reordering: instruction first
    prompt = pc.if_else(pa.array(front), join(suffix, "\n\n", body), join(body, suffix))
    orca = [s for s in c.corpus.orca_system if "step" in s] or c.corpus.orca_system
    sys = pick(orca, c.rng.integers(0, len(orca), c.n))
    return _single_turn(c, sys, prompt)


def rubric(c: Ctx) -> Text:
    """Rubric-grading campaign: judge / UltraFeedback / Prometheus prompts (reward-model data)."""
    answers = c.answers if c.answers is not None else draw(c.corpus, "chat", c.rng, c.n)
    sys, prompt = rubric_prompts(c.corpus, c.rng, c.n, answers)
    return _single_turn(c, sys, prompt)


def datagen(c: Ctx) -> Text:
    """Synthetic-data generation: distilabel generation templates (self-instruct,
    APIGen, embedding-data generators) for 60% of requests, the rest answering
    hard tasks (the generated items' answering stage)."""
    gen = datagen_prompts(c.corpus, c.rng, c.n)
    tasks = mixed(c.corpus, c.rng, c.n, ["hard_math", "cot", "gpteacher"], [0.4, 0.3, 0.3])
    prompt = pc.if_else(pa.array(c.rng.random(c.n) < 0.6), gen, tasks)
    return _single_turn(c, pa.nulls(c.n, pa.string()), prompt)


def sweep(c: Ctx) -> Text:
    """Capability sweep on agentic coding, tool use and hard reasoning."""
    prompt = mixed(c.corpus, c.rng, c.n, ["agentic", "hard_math", "coding"], [0.5, 0.3, 0.2])
    sys = pick([AGENT_SYSTEM, None], (c.rng.random(c.n) < 0.5).astype(np.int64))
    return Text(
        sys,
        paraphrase(prompt, c.rng, c.paraphrase_rate),
        np.zeros(c.n, np.int64),
        np.minimum(c.pos, 6),
        "coding",
    )


STYLES: dict[str, Callable[[Ctx], Text]] = {
    "casual": casual,
    "developer": developer,
    "agent": agent,
    "enterprise": enterprise,
    "eval": eval_harness,
    "rag": rag,
    "researcher": researcher,
    "harvest": harvest,
    "hydra": hydra,
    "cot_coercion": cot_coercion,
    "rubric": rubric,
    "datagen": datagen,
    "sweep": sweep,
}
