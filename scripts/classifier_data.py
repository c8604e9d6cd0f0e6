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
import classifier_phrasings_ml as ml

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
    instr: str = ""  # the instruction the labels come from, when short and inside the text


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
    """(system, prompt): the instruction as system prompt, a paragraph before or after the
    question, or on the question's line (before or after)."""
    pos = rng.random()
    if pos < 0.25:
        return instr, q
    if pos < 0.45:
        return "", f"{instr}\n\n{q}"
    if pos < 0.8:
        return "", f"{q}\n\n{instr}"
    return ("", f"{q} {instr}") if pos < 0.93 else ("", f"{instr} {q}")


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
        start = len(out)
        out.append(Example("", q, 0.0, 0, cap, "plain"))
        r, r2 = _response(rng, bases), _response(rng, bases)
        if rng.random() < 0.45:
            instr = rng.choice(cot)
            if "below" in instr or ("answer" in instr.lower() and rng.random() < 0.3):
                q2 = f"{q}\n\n{rng.choice(['Answer:', 'Response:', 'Final answer:'])} {r}"
            else:
                q2 = q
            out.append(Example(*_wrap(rng, q2, instr), 1.0, 0, cap, "cot_phrasing", instr=instr))
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
            mild = rng.choice(ph.MILD_COT)
            out.append(Example("", f"{q}\n{mild}", MILD_COT_LABEL, 0, cap, "mild_cot", instr=mild))
        if rng.random() < 0.3 and not natural_cot:
            neutral = rng.choice(non_cot)
            out.append(
                Example(*_wrap(rng, q, neutral), 0.0, 0, cap, "neutral_instruction", instr=neutral)
            )
        if rng.random() < 0.35:
            if rng.random() < 0.3:
                _name, system, tmpl = rng.choice(judges)
                out.append(
                    Example(system, tmpl.format(q=q, r=r, r2=r2), 0.0, 1, cap, "judge_template")
                )
            else:
                tmpl = rng.choice(rubric)
                text = tmpl.format(q=q, r=r, r2=r2)
                both = rng.random() < 0.15
                text = f"{text}\n\n{rng.choice(cot)}" if both else text
                # (no window label when a CoT demand is outside the grading instruction)
                instr = "" if both else instruction_line(tmpl)
                out.append(Example("", text, float(both), 1, cap, "rubric_phrasing", instr=instr))
        if rng.random() < 0.2 and not natural_rub:
            tmpl = rng.choice(pairs)
            out.append(
                Example(
                    "",
                    tmpl.format(q=q, r=r, r2=r2),
                    0.0,
                    0,
                    cap,
                    "pair_not_rubric",
                    instr=instruction_line(tmpl),
                )
            )
        if rng.random() < 0.08:
            text = rng.choice(agentic).format(q=q, tools=rng.choice(ph.TOOLS))
            out.append(Example("", text, 0.0, 0, CAP["agentic"], "agentic"))
        # a prompt that itself asks for reasoning (grading) is no negative for that head,
        # alone or inside any wrapper
        out[start:] = [
            e
            for e in out[start:]
            if not ((natural_cot and e.cot < 1) or (natural_rub and e.rubric == 0))
        ]
    for h in hard:
        for _ in range(8 if h in ph.HARD_NEG else 2):
            s, p = _wrap(rng, h, rng.choice(non_cot)) if rng.random() < 0.5 else ("", h)
            out.append(Example(s, p, 0.0, 0, -1, "hard_negative"))
    out.extend(_other_languages(bases, test, rng))
    return out


def instruction_line(template: str) -> str:
    """The longest line of a template without a slot: its instruction ("" if none)."""
    lines = [x.strip() for x in template.split("\n") if "{" not in x and x.strip()]
    return max(lines, key=len, default="")


ML_PER_LANGUAGE = {False: 1500, True: 300}  # examples per language in train / test


def _other_languages(bases: list[dict[str, str]], test: bool, rng: random.Random) -> list[Example]:
    """Requests in the languages of ``classifier_phrasings_ml`` (labels from the wrapper, as
    for English): their plain questions alone and wrapped, and English bases wrapped with
    their instructions (a user who writes in one language and pastes text in another)."""
    pick = 1 if test else 0
    out: list[Example] = []
    for lang in ml.LANGS:
        plain, cot, neutral, hard, rubric, pairs = (
            ph.split_half(d[lang])[pick]
            for d in (ml.PLAIN, ml.COT, ml.NON_COT, ml.HARD_NEG, ml.RUBRIC, ml.NON_RUBRIC_PAIR)
        )
        if not test:
            cot = cot + ml.cot_grammar(rng, lang, 500)
            neutral = neutral + ml.neutral_grammar(rng, lang, 150)
            rubric = rubric + ml.rubric_grammar(rng, lang, 150)
        english = [
            r["prompt"]
            for r in bases
            if not (COT_NATURAL.search(r["prompt"]) or RUBRIC_NATURAL.search(r["prompt"]))
        ]
        for _ in range(ML_PER_LANGUAGE[test]):
            native = rng.random() < 0.6
            q = rng.choice(plain) if native else rng.choice(english)
            r = rng.choice(plain) if rng.random() < 0.5 else _response(rng, bases)
            r2 = _response(rng, bases)
            k = rng.random()
            if k < 0.3:
                instr = rng.choice(cot)
                out.append(
                    Example(*_wrap(rng, q, instr), 1.0, 0, -1, f"ml_cot/{lang}", instr=instr)
                )
            elif k < 0.45:
                instr = rng.choice(neutral)
                out.append(
                    Example(*_wrap(rng, q, instr), 0.0, 0, -1, f"ml_neutral/{lang}", instr=instr)
                )
            elif k < 0.6:
                tmpl = rng.choice(rubric)
                text = tmpl.format(q=q, r=r, r2=r2)
                out.append(
                    Example("", text, 0.0, 1, -1, f"ml_rubric/{lang}", instr=instruction_line(tmpl))
                )
            elif k < 0.7:
                tmpl = rng.choice(pairs)
                text = tmpl.format(q=q, r=r, r2=r2)
                out.append(
                    Example(
                        "",
                        text,
                        0.0,
                        0,
                        -1,
                        f"ml_pair_not_rubric/{lang}",
                        instr=instruction_line(tmpl),
                    )
                )
            elif k < 0.8:
                out.append(Example("", rng.choice(hard), 0.0, 0, -1, f"ml_hard_negative/{lang}"))
            else:
                out.append(Example("", rng.choice(plain), 0.0, 0, -1, f"ml_plain/{lang}"))
    return out


LONG_MIN_TOKENS = 80  # "long" test prompts: at least this many tokens


def _long_examples(bases: list[dict[str, str]], rng: random.Random) -> list[Example]:
    """Held-out dilution tests: unseen short CoT / grading / neutral instructions placed
    before or after long unseen prompts (and those prompts alone)."""
    cot, non_cot, rubric, pairs = (
        ph.split_half(lst)[1] for lst in (ph.COT, ph.NON_COT, ph.RUBRIC, ph.NON_RUBRIC_PAIR)
    )
    grading = [instruction_line(t) for t in rubric]
    editing = [instruction_line(t) for t in pairs]
    # prompts that ask for reasoning or grading themselves are no negatives (as in _examples)
    prompts = [
        r["prompt"]
        for r in bases
        if not (COT_NATURAL.search(r["prompt"]) or RUBRIC_NATURAL.search(r["prompt"]))
    ]
    long = [
        q for q, t in zip(prompts, tokens_of(prompts), strict=True) if len(t) >= LONG_MIN_TOKENS
    ]
    out: list[Example] = []
    for q in long:
        out.append(Example("", q, 0.0, 0, -1, "long/plain"))
        instr = rng.choice(cot)
        where = rng.random()
        text = (
            f"{q}\n\n{instr}"
            if where < 0.5
            else f"{q} {instr}"
            if where < 0.7
            else f"{instr}\n\n{q}"
        )
        out.append(Example("", text, 1.0, 0, -1, "long/cot"))
        out.append(
            Example("", f"{q}\n\n{rng.choice(ph.MILD_COT)}", MILD_COT_LABEL, 0, -1, "long/mild_cot")
        )
        out.append(
            Example("", f"{q}\n\n{rng.choice(non_cot)}", 0.0, 0, -1, "long/neutral_instruction")
        )
        r = rng.choice(long)
        out.append(Example("", f"{r}\n\n{rng.choice(grading)}", 0.0, 1, -1, "long/rubric"))
        out.append(Example("", f"{r}\n\n{rng.choice(editing)}", 0.0, 0, -1, "long/pair_not_rubric"))
    return out


def tokens_of(texts: list[str]) -> list[list[str]]:
    """The classifiers' tokens of each text (lower-cased, TOKEN_PATTERN)."""
    import polars as pl

    from distillwatch.features.hashing import unigram_tokens_py

    lowered = pl.Series(texts, dtype=pl.String).str.to_lowercase().to_list()
    return [unigram_tokens_py(t) for t in lowered]


def _find(tokens: list[str], sub: list[str]) -> int:
    """Index of the first occurrence of ``sub`` in ``tokens`` (-1 if none); tokens hold no spaces."""
    hay, needle = " " + " ".join(tokens) + " ", " " + " ".join(sub) + " "
    at = hay.find(needle)
    return -1 if at < 0 else hay[:at].count(" ")


def lines_of(tokens: list[str]) -> list[list[str]]:
    """A token list (:func:`tokens_of`) cut at its line-break tokens; empty lines left out."""
    out: list[list[str]] = [[]]
    for t in tokens:
        if t == "\n":
            out.append([])
        else:
            out[-1].append(t)
    return [line for line in out if line]


def window_examples(
    examples: list[Example], k: int, rng: random.Random, negative_share: float = 0.5
) -> list[Example]:
    """Windows, the unit the window heads score at inference: ``k`` consecutive tokens of
    one line, or a whole line of ``k`` tokens or fewer.

    For an example whose instruction (``instr``) lies in one line: a window holding the
    whole instruction (a window inside it if it has more than ``k`` tokens), at a random
    offset, with the example's labels. For a share of the requests negative for both heads (all hard negatives): a
    random window of a random line, negative. A window is written as its tokens joined
    by spaces, which tokenises back to the same tokens.
    """
    from distillwatch.features.classifiers import request_text

    toks = tokens_of([request_text(e.system, e.prompt) for e in examples])
    instr = tokens_of([e.instr for e in examples])
    out: list[Example] = []
    for e, t, it in zip(examples, toks, instr, strict=True):
        lines = lines_of(t)
        found = False
        if e.instr and it and "\n" not in it:
            for line in lines:
                at = _find(line, it)
                if at >= 0:
                    # a window holding the instruction, or inside it if it is longer
                    lo, hi = sorted((at + len(it) - k, at))
                    a = rng.randint(max(0, lo), min(hi, max(0, len(line) - k)))
                    window = line[a : a + k]
                    out.append(
                        Example("", " ".join(window), e.cot, e.rubric, -1, f"window/{e.kind}")
                    )
                    found = True
                    break
        share = 1.0 if "hard_negative" in e.kind else negative_share
        if not found and lines and e.cot == 0 and e.rubric == 0 and rng.random() < share:
            line = rng.choice(lines)
            a = rng.randint(0, max(0, len(line) - k))
            out.append(Example("", " ".join(line[a : a + k]), 0.0, 0, -1, f"window/{e.kind}"))
    # the same short negative line recurs (a neutral instruction, a hard negative repeated
    # with several wrappers): at most WINDOW_REPEATS copies of it
    seen: dict[str, int] = {}
    kept = []
    for w in out:
        if w.cot == 0 and w.rubric == 0:
            seen[w.prompt] = seen.get(w.prompt, 0) + 1
            if seen[w.prompt] > WINDOW_REPEATS:
                continue
        kept.append(w)
    return kept


WINDOW_REPEATS = 3


def build_examples(data: Path, seed: int = 13) -> tuple[list[Example], list[Example]]:
    """(train, test) labelled requests; test = unseen sources x unseen wrappers."""
    rng = random.Random(seed)
    train_bases, test_bases = load_bases(data, rng)
    train = _examples(train_bases, False, data, rng)
    test = _examples(test_bases, True, data, rng) + _long_examples(test_bases, rng)
    return train, test
