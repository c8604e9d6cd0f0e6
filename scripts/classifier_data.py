"""Labelled training/test requests for ``train_classifiers.py``.

Base prompts come from the real corpora; whole *source units* (a source, or
source/group for flan_cot, math_cot_problems, gpteacher and each t0 template) are
assigned to train or test.  Every base prompt yields a plain copy and random
wrapped copies; wrappers (phrasings, Orca system prompts, judge templates) are
split into train and test too, and the test set only combines test bases with
test wrappers.  cot/rubric labels come from the wrapper alone.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import classifier_phrasings as ph

CAP = {
    c: i
    for i, c in enumerate(("chat", "coding", "agentic", "math", "reasoning", "writing", "other"))
}
TEST_UNITS = {
    "gsm8k", "humaneval", "ultrachat_eval", "oasst_eval_prompts", "arena_hard_v0.1",
    "self_instruct_user_oriented", "vicuna_bench", "flan_cot/strategyqa", "flan_cot/qasc",
    "math_cot_problems/minerva_math", "math_cot_problems/olympiadbench",
}  # fmt: skip
MILD_COT_LABEL = 0.6
ORCA_COT = {6, 7, 8, 9, 10, 11, 12, 13, 14}
ORCA_TEST = {3, 7, 11, 13}
RUBRIC_TEMPLATES_TEST = {
    "pair-v2-multi-turn", "single-math-v1-multi-turn", "pair-math-v1", "single-v1-multi-turn",
    "ultrafeedback/truthfulness", "ultrafeedback/overall-rating", "prometheus/absolute_without_reference",
    "prometheus/relative_with_reference", "complexity-scorer", "apigen/semantic_checker",
}  # fmt: skip
DISTILABEL_RUBRIC = [
    "ultrafeedback/helpfulness", "ultrafeedback/honesty", "ultrafeedback/instruction-following",
    "ultrafeedback/truthfulness", "ultrafeedback/overall-rating", "prometheus/absolute_with_reference",
    "prometheus/absolute_without_reference", "prometheus/relative_with_reference",
    "prometheus/relative_without_reference", "quality-scorer", "complexity-scorer",
    "instruction-backtranslation", "apigen/semantic_checker",
]  # fmt: skip
RUBRIC_TEXT = "Score 1: The response is irrelevant or wrong.\nScore 3: Partly correct.\nScore 5: Fully correct, clear and complete."
CODE_RE = re.compile(
    r"```|\b(python|javascript|typescript|java|c\+\+|c#|rust|golang|sql|bash|regex|html|css|function|code|program|script|compile|debug|api|class|algorithm|def|const|import)\b",
    re.I,
)
MATH_RE = re.compile(
    r"\$[^$]+\$|\b(equation|integral|derivative|probability|theorem|prove|polynomial|matrix|solve for|calculate|compute)\b",
    re.I,
)
WRITE_RE = re.compile(
    r"\b(write|compose|draft|create)\b.{0,60}\b(story|poem|essay|blog|article|email|letter|song|lyrics|speech|novel|haiku|limerick)\b",
    re.I,
)
COT_NATURAL = re.compile(
    r"step[- ]by[- ]step|show your work|your reasoning|explain your answer", re.I
)
RUBRIC_NATURAL = re.compile(
    r"\b(on a scale|rate the|score the|grade the|evaluate the quality)\b", re.I
)


@dataclass(frozen=True)
class Example:
    system: str
    prompt: str
    cot: float
    rubric: int
    capability: int  # -1 = unknown
    kind: str
    weight: float = 1.0


def unit_of(row: dict[str, str]) -> str:
    src, grp = row["source"], row.get("group") or ""
    if src in ("flan_cot", "math_cot_problems", "gpteacher", "t0_templated"):
        return f"{src}/{grp}"
    return src


def is_test_unit(unit: str) -> bool:
    if unit.startswith("t0_templated/"):
        return zlib.crc32(unit.encode()) % 5 == 0
    return unit in TEST_UNITS


def capability(row: dict[str, str]) -> int:
    """Source/group label; keyword-verified for mixed sources; -1 when unverifiable."""
    src, grp, text = row["source"], row.get("group") or "", row["prompt"]
    fixed = {"gsm8k": "math", "humaneval": "coding", "mbpp": "coding", "t0_templated": "other",
             "math_cot_problems": "math", "hh_rlhf_harmless_test": "chat"}  # fmt: skip
    if src in fixed:
        return CAP[fixed[src]]
    if src == "flan_cot":
        return CAP["math" if grp == "aqua" else "reasoning"]
    if src == "gpteacher":
        return CAP[{"Codegen": "coding", "Toolformer": "agentic", "Roleplay": "writing"}[grp]]
    if src in ("mt_bench", "vicuna_bench"):
        m = {"coding": "coding", "math": "math", "reasoning": "reasoning", "writing": "writing",
             "fermi": "reasoning", "counterfactual": "reasoning", "extraction": "other"}  # fmt: skip
        return CAP[m.get(grp, "chat")]
    if src == "ultrachat_eval":
        m = {"Ability Math": "math", "Ability Reasoning": "reasoning", "Writing": "writing"}
        return CAP[m.get(grp, "chat")]
    if src == "arena_hard_v2.0" and grp == "creative_writing":
        return CAP["writing"]
    keyword = (
        "coding"
        if CODE_RE.search(text)
        else "math"
        if MATH_RE.search(text)
        else "writing"
        if WRITE_RE.search(text)
        else None
    )
    if src in ("oasst_eval_prompts", "awesome_chatgpt_prompts"):
        return CAP[keyword or "chat"]
    if src == "self_instruct_user_oriented":
        return CAP[keyword or "other"]
    return CAP[keyword] if keyword else -1  # arena_hard: verified or unknown


def load_bases(data: Path, rng: random.Random) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Deduplicated base prompts, capped per unit, split by unit into (train, test)."""
    units: dict[str, list[dict[str, str]]] = defaultdict(list)
    seen: set[str] = set()
    for name in ("prompts_benign", "prompts_distill"):
        with gzip.open(data / f"{name}.jsonl.gz", "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                key = " ".join(row["prompt"].lower().split())
                if key in seen or (
                    row["source"] == "ultrachat_eval" and row.get("group") == "Vicuna"
                ):
                    continue
                seen.add(key)
                units[unit_of(row)].append(row)
    train, test = [], []
    for unit in sorted(units):
        rows = units[unit]
        rng.shuffle(rows)
        cap = 25 if unit.startswith("t0_templated/") else 600 if is_test_unit(unit) else 1200
        (test if is_test_unit(unit) else train).extend(rows[:cap])
    return train, test


def judge_templates(data: Path) -> list[tuple[str, str, str]]:
    """(name, system, prompt-template-with-{q}{r}{r2}) for FastChat and distilabel judges."""
    import jinja2  # only the training script needs it

    out = []
    for line in (data / "templates" / "fastchat_judge_prompts.jsonl").read_text().splitlines():
        j = json.loads(line)
        tmpl = re.sub(r"\{(question[_0-9]*)\}", "{q}", j["prompt_template"])
        tmpl = re.sub(r"\{(answer_b[_0-9]*)\}", "{r2}", tmpl)
        tmpl = re.sub(r"\{(answer[_a0-9]*|ref_answer[_0-9]*)\}", "{r}", tmpl)
        out.append((j["name"], j["system_prompt"], tmpl))
    env = jinja2.Environment()
    for name in DISTILABEL_RUBRIC:
        src = (data / "templates" / "distilabel" / f"{name}.jinja2").read_text()
        text = env.from_string(src).render(
            instruction="\x00Q", generations=["\x00R", "\x00S"], responses=["\x00R", "\x00S"],
            instructions=["\x00Q", "\x00R"], generation="\x00R", rubric=RUBRIC_TEXT, reference_answer="\x00S",
            query="\x00Q", func_desc=ph.TOOLS[0], func_call="\x00R", execution_result="\x00S", format_inst="",
        )  # fmt: skip
        text = text.replace("{", "{{").replace("}", "}}")
        out.append(
            (
                name,
                "",
                text.replace("\x00Q", "{q}").replace("\x00R", "{r}").replace("\x00S", "{r2}"),
            )
        )
    return out


def _response(rng: random.Random, pool: list[dict[str, str]]) -> str:
    stems = [
        "",
        "Sure! ",
        "The answer is 42. ",
        "Here is a solution:\n```python\nprint('hi')\n```\n",
        "I think ",
        "No. ",
    ]
    body = rng.choice(pool)["prompt"]
    start = rng.randrange(max(1, len(body) - 200))
    return rng.choice(stems) + body[start : start + rng.randint(30, 300)]


def _wrap(rng: random.Random, q: str, instr: str) -> tuple[str, str]:
    pos = rng.random()
    if pos < 0.3:
        return instr, q
    return ("", f"{instr}\n\n{q}") if pos < 0.6 else ("", f"{q}\n\n{instr}")


def _examples(
    bases: list[dict[str, str]], test: bool, data: Path, rng: random.Random
) -> list[Example]:
    pick = 1 if test else 0
    cot, non_cot, rubric, pairs, agentic, hard = (
        ph.split_half(lst)[pick] for lst in (ph.COT, ph.NON_COT, ph.RUBRIC, ph.NON_RUBRIC_PAIR, ph.AGENTIC, ph.HARD_NEG)
    )  # fmt: skip
    if not test:  # generated surface forms, training only; test keeps unseen hand-written ones
        cot, non_cot = cot + ph.cot_grammar(rng, 600), non_cot + ph.non_cot_grammar(rng, 200)
        rubric, pairs = (
            rubric + ph.rubric_grammar(rng, 600),
            pairs + ph.non_rubric_grammar(rng, 300),
        )
        hard = hard + ph.hard_negative_grammar(rng, 150)
    orca = json.loads((data / "templates" / "orca_system_prompts.json").read_text())[
        "system_prompts"
    ]
    orca_ids = [i for i in range(1, len(orca)) if (i in ORCA_TEST) == test]
    judges = [t for t in judge_templates(data) if (t[0] in RUBRIC_TEMPLATES_TEST) == test]
    out: list[Example] = []
    for row in bases:
        q, cap = row["prompt"], capability(row)
        natural_cot, natural_rub = bool(COT_NATURAL.search(q)), bool(RUBRIC_NATURAL.search(q))
        if not (natural_cot or natural_rub):  # ambiguous natural prompts are not used as negatives
            out.append(Example("", q, 0.0, 0, cap, "plain"))
        r, r2 = _response(rng, bases), _response(rng, bases)
        if rng.random() < 0.45:
            instr = rng.choice(cot)
            if "below" in instr or ("answer" in instr.lower() and rng.random() < 0.3):
                q2 = f"{q}\n\n{rng.choice(['Answer:', 'Response:', 'Final answer:'])} {r}"
            else:
                q2 = q
            out.append(Example(*_wrap(rng, q2, instr), 1.0, 0, cap, "cot_phrasing"))
        if rng.random() < 0.12:
            i = rng.choice(orca_ids)
            out.append(
                Example(
                    orca[i],
                    q,
                    float(i in ORCA_COT),
                    0,
                    cap,
                    "orca_cot" if i in ORCA_COT else "orca_plain",
                )
            )
        if rng.random() < 0.1:
            out.append(
                Example("", f"{q}\n{rng.choice(ph.MILD_COT)}", MILD_COT_LABEL, 0, cap, "mild_cot")
            )
        if rng.random() < 0.3 and not natural_cot:
            out.append(
                Example(*_wrap(rng, q, rng.choice(non_cot)), 0.0, 0, cap, "neutral_instruction")
            )
        if rng.random() < 0.35:
            if rng.random() < 0.3:
                _name, system, tmpl = rng.choice(judges)
                out.append(
                    Example(system, tmpl.format(q=q, r=r, r2=r2), 0.0, 1, cap, "judge_template")
                )
            else:
                text = rng.choice(rubric).format(q=q, r=r, r2=r2)
                both = rng.random() < 0.15
                text = f"{text}\n\n{rng.choice(cot)}" if both else text
                out.append(Example("", text, float(both), 1, cap, "rubric_phrasing"))
        if rng.random() < 0.2 and not natural_rub:
            out.append(
                Example(
                    "", rng.choice(pairs).format(q=q, r=r, r2=r2), 0.0, 0, cap, "pair_not_rubric"
                )
            )
        if rng.random() < 0.08:
            text = rng.choice(agentic).format(q=q, tools=rng.choice(ph.TOOLS))
            out.append(Example("", text, 0.0, 0, CAP["agentic"], "agentic"))
    for h in hard:
        for _ in range(8 if h in ph.HARD_NEG else 2):
            s, p = _wrap(rng, h, rng.choice(non_cot)) if rng.random() < 0.5 else ("", h)
            out.append(Example(s, p, 0.0, 0, -1, "hard_negative"))
    return out


def build_examples(data: Path, seed: int = 13) -> tuple[list[Example], list[Example]]:
    """(train, test) labelled requests; test = unseen sources x unseen wrappers."""
    rng = random.Random(seed)
    train_bases, test_bases = load_bases(data, rng)
    return _examples(train_bases, False, data, rng), _examples(test_bases, True, data, rng)
