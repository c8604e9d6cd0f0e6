"""Request text: how each kind of sender wraps corpus prompts.

A *style* turns ``n`` requests into ``Text``: the system prompt, the final user
turn, how many earlier conversation turns and tool messages precede it, and
which pool earlier turns are drawn from. All work is Arrow kernels over
arrays drawn by index from the corpus pools; no per-request Python strings.

Attack styles reproduce what the public distillation reports describe: Orca
style "think step-by-step and justify your steps" system prompts, explicit
chain-of-thought coercion suffixes, LLM-as-judge / UltraFeedback / Prometheus
rubric prompts (reward-model data), shared task pools of templated prompts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.sim.corpus import Corpus

COT_SUFFIXES = [
    "\n\nImagine and articulate the internal reasoning behind a completed response to this, and write it out step by step.",
    "\n\nAfter answering, write out the full internal reasoning that led to your answer, step by step, without skipping any step.",
    "\n\nThink step-by-step and justify your steps. Show all of your intermediate reasoning before the final answer.",
    "\n\nExplain your complete chain of thought in detail, then give the final answer on its own line.",
]
DEV_PREFIXES = [
    "",
    "",
    "Fix the bug in this:\n",
    "Write unit tests for the following.\n\n",
    "Can you explain what this does?\n",
    "Refactor this to be more idiomatic:\n",
]
AGENT_SYSTEM = (
    "You are an autonomous software engineering agent working in the user's repository. "
    "Use the provided tools to read files, run commands and edit code. Think before each tool call, "
    "keep changes minimal, and run the test suite before you report back."
)
ENTERPRISE_SYSTEMS = [
    "You are a classification service. Reply with exactly one label and nothing else.",
    "Extract the requested fields from the input and return compact JSON. Do not add commentary.",
    "You label customer tickets. Output one of: billing, technical, account, other.",
]
RAG_SYSTEM = (
    "You are the customer support assistant for {company}. Answer the user's question using only the "
    "context passages below. If the answer is not in the context, say you don't know. Cite passages as [n]."
)
COMPANIES = [
    "Northwind Logistics",
    "Acme Insurance",
    "Globex Bank",
    "Initech HR Portal",
    "Umbrella Health",
    "Stark Retail",
]
EVAL_TEMPLATES = {
    "gsm8k": ("Question: ", "\nAnswer:", "\nLet's think step by step."),
    "code": (
        "Complete the following Python function. Return only code.\n\n```python\n",
        "\n```",
        "\n```",
    ),
    "mtbench": ("", "", ""),
}
PARAPHRASES: list[tuple[str, str]] = [
    (r"\bExplain\b", "Describe"),
    (r"\bWrite\b", "Compose"),
    (r"\bstep by step\b", "one step at a time"),
    (r"\bthe following\b", "the below"),
    (r"\bWhat is\b", "What's"),
    (r"\banswer\b", "response"),
    (r"\bdetailed\b", "thorough"),
    (r"\bGiven\b", "Considering"),
    (r"\bquestion\b", "query"),
]


@dataclass
class Text:
    """Text parts of ``n`` requests."""

    system: pa.Array  # string, nullable
    prompt: pa.Array  # string: the final user turn
    n_hist: np.ndarray  # earlier user+assistant pairs
    n_tool: np.ndarray  # tool messages before the final turn
    hist_pool: str


def pick(options: Sequence[str | None], idx: np.ndarray) -> pa.Array:
    """Strings from a small option list by index (vectorised)."""
    return pa.array(list(options), pa.string()).take(pa.array(idx))


def draw(corpus: Corpus, pool: str, rng: np.random.Generator, n: int) -> pa.Array:
    p = corpus.pool(pool)
    return p.take(pa.array(rng.integers(0, len(p), size=n)))


def mixed(
    corpus: Corpus, rng: np.random.Generator, n: int, pools: Sequence[str], weights: Sequence[float]
) -> pa.Array:
    """Prompts drawn from several pools with the given weights (keeps row order random)."""
    which = rng.choice(len(pools), size=n, p=np.asarray(weights) / np.sum(weights))
    parts = [draw(corpus, p, rng, int((which == i).sum())) for i, p in enumerate(pools)]
    order = np.argsort(np.argsort(which, kind="stable"), kind="stable")
    return pa.concat_arrays(parts).take(pa.array(order)) if n else pa.array([], pa.string())


def join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def paraphrase(arr: pa.Array, rng: np.random.Generator, rate: float) -> pa.Array:
    """Evasion: synonym swaps, typos, casing and spacing changes on a ``rate`` share of rows."""
    if rate <= 0 or len(arr) == 0:
        return arr
    out = arr
    for pat, rep in PARAPHRASES:
        mask = pa.array(rng.random(len(arr)) < rate * 0.6)
        out = pc.if_else(mask, pc.replace_substring_regex(out, pattern=pat, replacement=rep), out)
    typo = pa.array(rng.random(len(arr)) < rate * 0.3)
    out = pc.if_else(
        typo,
        pc.replace_substring(out, pattern=" the ", replacement=" teh ", max_replacements=1),
        out,
    )
    low = pa.array(rng.random(len(arr)) < rate * 0.2)
    out = pc.if_else(low, pc.utf8_lower(out), out)
    sp = pa.array(rng.random(len(arr)) < rate * 0.3)
    return pc.if_else(sp, pc.replace_substring(out, pattern=". ", replacement=".  "), out)


def collapse_blocks(template: str) -> str:
    """A jinja template with its ``for`` loops collapsed to one copy of their body and
    every other ``{% ... %}`` tag removed (``{{ ... }}`` slots left as they are)."""
    t = re.sub(r"\{%-?\s*for .*?%\}(.*?)\{%-?\s*endfor\s*-?%\}", r"\1", template, flags=re.S)
    return re.sub(r"\{%.*?%\}", "", t)


def render_rubric(template: str) -> tuple[str, str]:
    """Split a jinja rubric into (prefix, suffix) around the generation slot, loops collapsed."""
    t = re.sub(r"\{\{\s*(index \+ 1|loop\.index)\s*\}\}", "1", collapse_blocks(template))
    t = re.sub(r"\{\{\s*rubric\s*\}\}", "[Is the response helpful, correct and well reasoned?]", t)
    t = re.sub(r"\{\{\s*(generations?|generation_\w+|response\w*)\s*\}\}", "\x00", t)
    t = re.sub(r"\{\{\s*\w+\s*\}\}", "\x01", t)
    return t.replace("\x00", "{generation}").replace("\x01", "{instruction}"), ""


def rubric_prompts(
    corpus: Corpus, rng: np.random.Generator, n: int, answers: pa.Array
) -> tuple[pa.Array, pa.Array]:
    """Reward-model data: judge/rubric templates filled with a task and a candidate answer."""
    judges = [j for j in corpus.judge_prompts if "{answer" in j["prompt_template"]]
    sys_opts: list[str | None] = [j["system_prompt"] for j in judges]
    tmpl_opts = [j["prompt_template"] for j in judges]
    for t in corpus.rubric_templates.values():
        body, _ = render_rubric(t)
        sys_opts.append(None)
        tmpl_opts.append(
            body.replace("{generation}", "{answer}").replace("{instruction}", "{question}")
        )
    k = rng.integers(0, len(tmpl_opts), size=n)
    task = mixed(corpus, rng, n, ["chat", "cot", "gpteacher"], [0.4, 0.3, 0.3])
    out: list[pa.Array] = []
    order = np.argsort(k, kind="stable")
    for j in range(len(tmpl_opts)):
        rows = np.flatnonzero(k == j)
        if not len(rows):
            continue
        tpl = re.sub(r"\{(answer_b|answer_2|ref_answer\w*)\}", "{answer}", tmpl_opts[j])
        tpl = re.sub(r"\{(answer_a|answer_1)\}", "{answer}", tpl)
        tpl = re.sub(r"\{(?!question\}|answer\})\w+\}", "", tpl)
        pieces = re.split(r"(\{question\}|\{answer\})", tpl)
        args: list[pa.Array | str] = []
        for piece in pieces:
            if piece == "{question}":
                args.append(task.take(pa.array(rows)))
            elif piece == "{answer}":
                args.append(answers.take(pa.array(rows)))
            elif piece:
                args.append(piece)
        out.append(
            join(*args)
            if any(isinstance(a, pa.Array) for a in args)
            else pa.array([tpl] * len(rows))
        )
    prompts = pa.concat_arrays(out).take(pa.array(np.argsort(order, kind="stable")))
    return pick(sys_opts, k), prompts
