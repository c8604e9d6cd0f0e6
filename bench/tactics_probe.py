"""Hand-written attack tactics and legitimate look-alikes, independent of ``distillwatch.sim``.

    python bench/tactics_probe.py [--data ../shared/data] [--seed 5] [--out bench/results]

Detection quality is also judged on traffic we never see, so this script
writes its own workload from the real corpora (``--data``, default
``$DISTILLWATCH_DATA_DIR`` or ``../shared/data``) with tactics and phrasings
the simulator and the classifiers' training never used, runs ``detect`` on it
and prints, per kind of principal: how many were enforced (challenge or
above), held at review, and the share of its requests served before its
first enforcement. Writes ``tactics_probe.md``.

Attack kinds: ``atk_cot`` (CoT demands in unseen wordings on hard reasoning
prompts, a few shared system prompts, isolated infrastructure), ``atk_quiet``
(the same, 8-20 requests a day, 30% decoy chat, own system prompt and
parameters per account: only per-account signals can catch it),
``atk_rubric`` (grading prompts in unseen wordings), ``atk_burn`` (one-day
accounts), ``atk_office`` (bought aged accounts harvesting in office hours with chat cover:
see :meth:`Workload.office_hours`), ``atk_agent`` (agentic-coding trajectories through a popular agent's
scaffold: see :meth:`Workload.agent_harvest`). Legitimate kinds: ``ben_chat``, ``ben_student`` (asks for steps),
``ben_eval`` (lm-eval-harness style, "Let's think step by step", bursts),
``ben_agent`` (multi-turn coding agent with tools), ``ben_team`` (15 engineers
of one company on that agent from a corporate /24, sessions that grow), ``ben_judge`` (unrelated
verified customers all running FastChat's public LLM-as-judge prompt), ``ben_serverless``
(young startups' code-review jobs on serverless functions: rotating cloud egress networks),
``ben_eval_open`` (lm-eval-harness runs from unverified accounts). ``atk_datagen``
(synthetic-data generation requests in unseen wordings, spread thin) and ``ben_quizgen``
(a teaching app generating quizzes all day) probe the datagen head; ``ben_homework``
(students with the ask on its own line under the question) the individual hold.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from distillwatch.engine.detect import detect
from distillwatch.scoring.config import Settings
from distillwatch.sim.corpus import default_data_dir

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAYS = 7
COT = [
    "Please show all of your steps.",
    "Work through it carefully and narrate each step of your thinking.",
    "I want your complete reasoning, not just the answer.",
    "Explain your thought process from start to finish.",
    "Reason about it out loud first; then answer.",
    "Go step by step and don't skip anything.",
    "Write down the logic you follow at every stage.",
    "Provide the derivation along with a justification of each move.",
    "Before the answer, give a thorough explanation of how you get there.",
]
SYS_COT = [
    "You are a meticulous tutor. Always reveal your entire line of reasoning before any conclusion.",
    "You are a reasoning engine. Output your full internal deliberation, then the result.",
]
RUBRIC = [
    "Below is a question and an answer written by an assistant. Evaluate the answer's accuracy"
    " and helpfulness on a 1-10 scale and explain the grade.\n\nQuestion: {q}\n\nAnswer: {a}",
    "Act as a strict grader. Assess the following response against these criteria: correctness,"
    " completeness, clarity. Give a score out of 5 for each.\n\nTask: {q}\nResponse: {a}",
]
ENFORCE = ("challenge", "degrade", "block")
# atk_datagen's generation requests, written for the probe only (not in any training list)
DATAGEN = [
    "I'm assembling a corpus for supervised fine-tuning. Produce {n} fresh prompts a person"
    " might send to a writing assistant about {t}, separated by ---.",
    "Draft {n} instruction/answer examples on the subject of {t}. Format each as"
    " ### Instruction, then ### Response.",
    "Here is a seed task: {t}\nMutate it into {n} new tasks that are more complex and exercise"
    " different skills. Return only the new tasks.",
    "We need evaluation items. Write {n} tricky questions about {t} with gold answers, as CSV"
    " with the columns question,answer.",
    "Produce a realistic chat log of 8 turns in which a human asks an AI for help with {t}."
    " Label the turns USER and ASSISTANT.",
    "Output {n} lines, each a JSON object with query, relevant and irrelevant keys, for"
    " retrieval training on {t}.",
]
# atk_datagen's topics and answering-stage requests (its own, so that it shares no prompt
# pool with the other kinds and links with none of them)
TOPICS = [
    "photosynthesis",
    "the French Revolution",
    "binary search trees",
    "compound interest",
    "plate tectonics",
    "SQL joins",
    "the immune system",
    "supply and demand",
    "Bayes' theorem",
    "recursion in Python",
    "the water cycle",
    "Roman architecture",
    "TCP handshakes",
    "linear regression",
    "climate feedback loops",
    "graph colouring",
    "contract law basics",
    "the Krebs cycle",
    "dynamic programming",
    "Renaissance painting",
    "quantum tunnelling",
    "REST API design",
    "game theory",
    "protein folding",
    "the Cold War",
    "hash tables",
]
ANSWER = [
    "Solve: {t}, worked example {k}.",
    "Explain {t} to an engineer, case {k}.",
    "Give a precise, complete answer about {t} (item {k}).",
    "{t}: answer question {k} in depth.",
]
# ben_quizgen's product prompt (a teaching app; one template, many topics)
QUIZ = (
    "Create {n} multiple-choice questions for a grade {g} class on {t}. Give four options"
    " each and mark the correct one. Keep the language simple."
)
AGENT_COT = 0.0
AGENT_SYS = "You are a coding agent. Use the tools to edit files and run tests."


def _read(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(x) for x in fh]


class Workload:
    def __init__(self, data: Path, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        ben, dis = _read(data / "prompts_benign.jsonl.gz"), _read(data / "prompts_distill.jsonl.gz")
        chat_src = {
            "awesome_chatgpt_prompts", "oasst_eval_prompts", "arena_hard_v2.0",
            "ultrachat_eval", "self_instruct_user_oriented", "hh_rlhf_harmless_test",
        }  # fmt: skip
        self.chat = [r["prompt"] for r in ben if r["source"] in chat_src]
        self.hard = [
            r["prompt"]
            for r in dis
            if r["source"] in ("flan_cot", "math_cot_problems", "gpteacher")
        ]
        self.gsm = [r["prompt"] for r in ben if r["source"] == "gsm8k"]
        self.code = [r["prompt"] for r in ben if r["source"] in ("mbpp", "humaneval")]
        judge = json.loads((data / "templates/fastchat_judge_prompts.jsonl").open().readline())
        self.judge_sys, self.judge_tmpl = judge.get("system_prompt", ""), judge["prompt_template"]
        self.events: list[dict[str, Any]] = []
        self.accounts: list[dict[str, Any]] = []
        self.kind: dict[str, str] = {}

    def ip(self) -> str:
        r = self.rng
        return f"{r.randint(60, 220)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def account(self, aid: str, tier: str, kind: str, verified: bool = False,
                age_days: float | None = None) -> None:  # fmt: skip
        r = self.rng
        age = age_days if age_days is not None else r.uniform(1, 400)
        self.kind[aid] = kind
        self.accounts.append(
            {
                "account_id": aid,
                "created_at": T0 - age * 86_400,
                "tier": tier,
                "verified": verified,
                "payment_fingerprint": uuid.UUID(int=r.getrandbits(128)).hex[:16],
                "email_domain": r.choice(["gmail.com", "outlook.com", "proton.me", "qq.com"]),
                "country": r.choice(["US", "GB", "DE", "SG", "CN", "IN"]),
                "reseller": False,
            }
        )

    def add(self, aid: str, ts: float, msgs: list[dict[str, Any]], params: dict[str, Any],
            out: int, ip: str | None = None, ua: str | None = None) -> None:  # fmt: skip
        r = self.rng
        agents = ["python-httpx/0.27", "OpenAI/Python 1.40.0", "node-fetch/3", "curl/8.5"]
        self.events.append(
            {
                "id": uuid.UUID(int=r.getrandbits(128)).hex,
                "ts": ts,
                "account_id": aid,
                "ip": ip or self.ip(),
                "user_agent": ua or r.choice(agents),
                "model": "frontier-1",
                "request": {"messages": msgs, "params": params},
                "response": {
                    "status": 200,
                    "text": "x" * 50,
                    "finish_reason": "length"
                    if out >= params.get("max_tokens", 1 << 30)
                    else "stop",
                },
                "usage": {"input_tokens": 300, "output_tokens": out},
            }
        )

    def times(self, per_day: float, hours: float = 24) -> list[float]:
        r, out = self.rng, []
        for d in range(DAYS):
            k = max(0, int(r.gauss(per_day, per_day * 0.3)))
            out += [T0 + d * 86_400 + r.uniform(0, hours * 3600) for _ in range(k)]
        return sorted(out)

    def build(self) -> None:
        r = self.rng
        for i in range(120):
            a = f"s{i:04d}"
            self.account(
                a, r.choice(["free", "pay_as_you_go"]), "atk_cot", age_days=r.uniform(0.5, 20)
            )
            for t in self.times(r.uniform(15, 45)):
                q, w = r.choice(self.hard), r.choice(COT)
                msgs = [
                    {
                        "role": "user",
                        "content": f"{q}\n\n{w}" if r.random() < 0.7 else f"{w}\n\n{q}",
                    }
                ]
                if r.random() < 0.3:
                    msgs.insert(0, {"role": "system", "content": r.choice(SYS_COT)})
                params = {
                    "temperature": round(r.uniform(0.3, 1.0), 2),
                    "max_tokens": r.choice([4096, 8192, 16000]),
                }
                self.add(a, t, msgs, params, r.randint(800, 4000))
        for i in range(120):
            a = f"x{i:04d}"
            self.account(
                a, r.choice(["free", "pay_as_you_go"]), "atk_quiet", age_days=r.uniform(0.5, 60)
            )
            sysp = r.choice(["You are a helpful assistant.", "You are an expert.", None, None])
            params = {
                "temperature": round(r.uniform(0.2, 1.0), 1),
                "max_tokens": r.choice([2048, 4096, 8000, 12000]),
            }
            ua = r.choice(["python-requests/2.31", "Go-http-client/1.1", "axios/1.6"])
            for t in self.times(r.uniform(8, 20), hours=r.choice([12, 24])):
                if r.random() < 0.3:
                    msgs = [{"role": "user", "content": r.choice(self.chat)}]
                else:
                    msgs = [
                        {"role": "user", "content": f"{r.choice(self.hard)}\n\n{r.choice(COT)}"}
                    ]
                if sysp:
                    msgs.insert(0, {"role": "system", "content": sysp})
                self.add(a, t, msgs, params, r.randint(400, 3000), ua=ua)
        for i in range(60):
            a = f"r{i:04d}"
            self.account(
                a, r.choice(["free", "pay_as_you_go"]), "atk_rubric", age_days=r.uniform(0.5, 20)
            )
            for t in self.times(r.uniform(15, 45)):
                body = r.choice(RUBRIC).format(
                    q=r.choice(self.chat + self.gsm), a=r.choice(self.chat)[:400]
                )
                self.add(
                    a,
                    t,
                    [{"role": "user", "content": body}],
                    {"temperature": 0.0, "max_tokens": 1024},
                    r.randint(150, 500),
                )
        for i in range(150):
            a, d0 = f"b{i:04d}", r.randint(0, DAYS - 1)
            self.account(a, "free", "atk_burn", age_days=-d0 + r.uniform(-0.2, 0))
            for t in sorted(
                T0 + d0 * 86_400 + r.uniform(0, 86_400) for _ in range(r.randint(40, 80))
            ):
                msgs = [{"role": "user", "content": f"{r.choice(self.hard)}\n{r.choice(COT)}"}]
                self.add(a, t, msgs, {"temperature": 0.7, "max_tokens": 8192}, r.randint(800, 4000))
        self.agent_harvest()
        self.benign()
        self.serverless()
        self.open_eval()
        self.office_hours()
        self.datagen()
        self.quiz_app()
        self.homework()

    def trajectory(self, task: str, turns: int, result: str) -> list[dict[str, Any]]:
        """A coding-agent conversation: the scaffold's system prompt, the task (the
        last user turn), then assistant tool calls and ``tool`` results."""
        msgs: list[dict[str, Any]] = [
            {"role": "system", "content": AGENT_SYS},
            {"role": "user", "content": task},
        ]
        for _ in range(turns):
            msgs += [
                {"role": "assistant", "content": None},
                {"role": "tool", "content": result.format(n=self.rng.randint(1, 300))},
            ]
        return msgs

    def agent_harvest(self) -> None:
        """atk_agent: trajectories for agentic-coding distillation. Each request is
        a fresh task (never a session that grows), 1-6 canned tool turns, the
        same public agent scaffold and user agent that legitimate agent users
        send, long outputs, around the clock, 20-60 requests a day per young
        account on its own network: no CoT demand, no shared payment or IP."""
        r = self.rng
        for i in range(80):
            a = f"g{i:04d}"
            self.account(
                a, r.choice(["free", "pay_as_you_go"]), "atk_agent", age_days=r.uniform(0.5, 10)
            )
            home = self.ip()
            for t in self.times(r.uniform(20, 60)):
                task = r.choice(self.code + self.hard)
                msgs = self.trajectory(task, r.randint(1, 6), "tool result: exit code {n}")
                if r.random() < AGENT_COT:
                    msgs[1]["content"] += "\nThink through each step in detail before acting."
                self.add(
                    a,
                    t,
                    msgs,
                    {"temperature": 0.2, "max_tokens": r.choice([8192, 16000]), "tools": 12},
                    r.randint(1500, 6000),
                    ip=home if r.random() < 0.5 else None,
                    ua="claude-cli/1.0",
                )

    def serverless(self) -> None:
        """ben_serverless: young startups (verified, startup programme) running a
        code-review job from serverless functions: every request from a cloud
        egress address (a few hundred /24s per provider pool), around the clock,
        single-turn, one configuration. Automated, young and rotating networks:
        the shape the evasion term looks for, with no harvest cue but coding."""
        r = self.rng
        for i in range(8):
            a = f"f{i:04d}"
            self.account(a, "startup_program", "ben_serverless", True, r.uniform(2, 20))
            pool = [f"{r.choice([3, 18, 34, 52, 54])}.{r.randint(0, 255)}" for _ in range(3)]
            ask = r.choice(["Review this function for bugs:", "Write unit tests for:", ""])
            for t in self.times(r.uniform(150, 300)):
                ip = f"{r.choice(pool)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
                msgs = [{"role": "user", "content": f"{ask}\n{r.choice(self.code)}"}]
                params = {"temperature": 0.0, "max_tokens": 1024}
                self.add(a, t, msgs, params, r.randint(150, 900), ip=ip, ua="python-httpx/0.27")

    def office_hours(self) -> None:
        """atk_office: a harvest dressed as office work. Bought aged accounts
        (100-400 days, half of them verified, pay-as-you-go), each on its own
        static residential address, active only 09:00-18:00 on weekdays at
        25-60 requests a day, every account with its own system prompt and
        sampling parameters, 40% ordinary chat as cover; the rest hard reasoning
        prompts with a CoT demand in unseen wordings, paraphrased per request
        (the demand's place and wording vary). No shared payment, network or
        sign-up time. (Its own random stream: the kinds above are the same
        with or without it.)"""
        saved, self.rng = self.rng, random.Random(self.seed * 7919 + 2)
        r = self.rng
        for i in range(60):
            a = f"o{i:04d}"
            self.account(
                a, "pay_as_you_go", "atk_office", verified=r.random() < 0.5,
                age_days=r.uniform(100, 400),
            )  # fmt: skip
            home = self.ip()
            sysp = r.choice(["You are a helpful assistant.", "You are a senior analyst.", None])
            params = {
                "temperature": round(r.uniform(0.3, 0.9), 1),
                "max_tokens": r.choice([2048, 4096]),
            }
            for d in range(DAYS):
                if (d + 3) % 7 >= 5:  # 2026-01-01 is a Thursday: days 2 and 3 are the weekend
                    continue
                for _ in range(r.randint(25, 60)):
                    t = T0 + d * 86_400 + r.uniform(9 * 3600, 18 * 3600)
                    if r.random() < 0.4:
                        msgs = [{"role": "user", "content": r.choice(self.chat)}]
                    else:
                        q, w = r.choice(self.hard), r.choice(COT)
                        body = f"{q}\n\n{w}" if r.random() < 0.5 else f"{w} {q}"
                        msgs = [{"role": "user", "content": body}]
                    if sysp:
                        msgs.insert(0, {"role": "system", "content": sysp})
                    self.add(a, t, msgs, params, r.randint(400, 2500), ip=home)
        self.rng = saved

    def datagen(self) -> None:
        """atk_datagen: the generation stage of a distillation pipeline, spread thin.
        Young free or pay-as-you-go accounts on rotating addresses, 20-50 requests a
        day around the clock; 60% ask for manufactured training data (batches of
        prompts, instruction/answer pairs, evolved tasks, eval items, chat logs,
        retrieval triples: wordings written for this probe, in no training list),
        the rest answer generated items (the answering stage, no CoT demand). Topics
        and answering requests are its own, so it links with no other kind.
        (Its own random stream: the kinds above are the same with or without it.)"""
        saved, self.rng = self.rng, random.Random(self.seed * 7919 + 3)
        r = self.rng
        for i in range(50):
            a = f"n{i:04d}"
            self.account(
                a, r.choice(["free", "pay_as_you_go"]), "atk_datagen", age_days=r.uniform(1, 30)
            )
            params = {"temperature": round(r.uniform(0.7, 1.0), 1), "max_tokens": 4096}
            for t in self.times(r.uniform(20, 50)):
                if r.random() < 0.6:
                    body = r.choice(DATAGEN).format(n=r.choice([5, 10, 20, 30]), t=r.choice(TOPICS))
                else:
                    body = r.choice(ANSWER).format(t=r.choice(TOPICS), k=r.randint(1, 10**6))
                self.add(a, t, [{"role": "user", "content": body}], params, r.randint(500, 3000))
        self.rng = saved

    def homework(self) -> None:
        """ben_homework: students as ben_student (free or education tier, one home
        address, 10-40 GSM8K questions a day in 12 hours), who write the ask on its
        own line under the question ("Show your work.", ...), where the classifier
        reads it undiluted. Challenged 30/30 before the individual hold
        (actions.individual_*). (Its own random stream.)"""
        saved, self.rng = self.rng, random.Random(self.seed * 7919 + 5)
        r = self.rng
        asks = [
            "Show your work.",
            "Explain step by step.",
            "Can you explain how to get the answer?",
        ]
        for i in range(30):
            a = f"h{i:04d}"
            self.account(a, r.choice(["free", "education"]), "ben_homework")
            home = self.ip()
            for t in self.times(r.uniform(10, 40), hours=12):
                ask = r.choice([*asks, ""])
                body = f"{r.choice(self.gsm)}\n\n{ask}" if ask else r.choice(self.gsm)
                msgs = [{"role": "user", "content": body}]
                params = {"temperature": 0.7, "max_tokens": 2048}
                self.add(a, t, msgs, params, r.randint(200, 700), ip=home)
        self.rng = saved

    def quiz_app(self) -> None:
        """ben_quizgen: a teaching app (aged, verified pay-as-you-go accounts, one per
        school district it serves) that turns a teacher's topic into a quiz: one
        product template, 100-300 requests a day in school hours from the app's two
        servers. Its traffic is generation of questions all day long: a legitimate
        product, not a harvest. (Its own random stream.)"""
        saved, self.rng = self.rng, random.Random(self.seed * 7919 + 4)
        r = self.rng
        servers = [self.ip(), self.ip()]
        for i in range(6):
            a = f"q{i:04d}"
            self.account(
                a, "pay_as_you_go", "ben_quizgen", verified=True, age_days=r.uniform(90, 500)
            )
            for t in self.times(r.uniform(100, 300), hours=10):
                body = QUIZ.format(n=r.choice([5, 10]), g=r.randint(3, 12), t=r.choice(TOPICS))
                params = {"temperature": 0.4, "max_tokens": 1500}
                self.add(a, t, [{"role": "user", "content": body}], params, r.randint(300, 1200),
                         ip=r.choice(servers), ua="quizly-backend/2.3")  # fmt: skip
        self.rng = saved

    def open_eval(self) -> None:
        """ben_eval_open: students and independent researchers evaluating the
        model with lm-eval-harness from unverified free and pay-as-you-go
        accounts: each one GSM8K/CoT run (the harness's "Let's think step by
        step"), one to two and a half thousand requests in a few hours from one
        university or cloud VM. Unrelated to each other,
        they share the harness's template, client and parameters. (Its own
        random stream: the kinds above are the same with or without it.)"""
        saved, self.rng = self.rng, random.Random(self.seed * 7919 + 1)
        r = self.rng
        for i in range(8):
            a = f"v{i:04d}"
            self.account(a, r.choice(["free", "pay_as_you_go"]), "ben_eval_open")
            ip, day = self.ip(), r.randint(0, DAYS - 1)
            n = r.randint(800, 2500)
            for t in sorted(T0 + day * 86_400 + r.uniform(0, 5 * 3600) for _ in range(n)):
                q = r.choice(self.gsm + self.hard[:3000])
                msgs = [{"role": "user", "content": f"Q: {q}\nA: Let's think step by step."}]
                params = {"temperature": 0.0, "max_tokens": 1024}
                self.add(a, t, msgs, params, r.randint(100, 400), ip=ip, ua="lm-eval-harness/0.4")
        self.rng = saved

    def benign(self) -> None:
        r = self.rng
        for i in range(400):
            a = f"u{i:04d}"
            self.account(
                a,
                r.choice(["free", "pay_as_you_go", "startup_program"]),
                "ben_chat",
                verified=r.random() < 0.5,
            )
            home = self.ip()
            for t in self.times(r.uniform(2, 30), hours=14):
                msgs = [{"role": "user", "content": r.choice(self.chat + self.code)}]
                if r.random() < 0.4:
                    follow = r.choice(
                        ["thanks, and why?", "can you shorten it?", "explain step by step please"]
                    )
                    msgs += [
                        {"role": "assistant", "content": "..."},
                        {"role": "user", "content": follow},
                    ]
                params = {"temperature": 0.7, "max_tokens": r.choice([1024, 2048, 4096])}
                self.add(a, t, msgs, params, r.randint(100, 900), ip=home)
        for i in range(30):
            a = f"t{i:04d}"
            self.account(a, r.choice(["free", "education"]), "ben_student")
            home = self.ip()
            for t in self.times(r.uniform(10, 40), hours=12):
                ask = r.choice(
                    [
                        "Show your work.",
                        "Explain step by step.",
                        "Can you explain how to get the answer?",
                        "",
                    ]
                )
                msgs = [{"role": "user", "content": f"{r.choice(self.gsm)} {ask}"}]
                self.add(
                    a,
                    t,
                    msgs,
                    {"temperature": 0.7, "max_tokens": 2048},
                    r.randint(200, 700),
                    ip=home,
                )
        for i in range(12):
            a = f"e{i:04d}"
            self.account(
                a,
                r.choice(["pay_as_you_go", "research_program", "enterprise"]),
                "ben_eval",
                verified=True,
            )
            ip, day = self.ip(), r.randint(0, DAYS - 1)
            for t in sorted(T0 + day * 86_400 + r.uniform(0, 4 * 3600) for _ in range(1500)):
                msgs = [
                    {
                        "role": "user",
                        "content": f"Q: {r.choice(self.gsm + self.hard[:3000])}\nA: Let's think step by step.",
                    }
                ]
                self.add(
                    a,
                    t,
                    msgs,
                    {"temperature": 0.0, "max_tokens": 1024},
                    r.randint(100, 400),
                    ip=ip,
                    ua="lm-eval-harness/0.4",
                )
        for i in range(20):
            a = f"c{i:04d}"
            self.account(a, r.choice(["pay_as_you_go", "enterprise"]), "ben_agent", verified=True)
            ip = self.ip()
            for t in self.times(r.uniform(150, 400), hours=10):
                msgs = [
                    {
                        "role": "system",
                        "content": AGENT_SYS,
                    }
                ]
                for k in range(r.randint(3, 15)):
                    text = (
                        r.choice(self.code)
                        if k == 0
                        else f"tool result: tests failed at line {r.randint(1, 300)}"
                    )
                    msgs += [
                        {"role": "user", "content": text},
                        {"role": "assistant", "content": "calling tool"},
                    ]
                msgs.append({"role": "user", "content": "continue"})
                self.add(
                    a,
                    t,
                    msgs,
                    {"temperature": 0.2, "max_tokens": 8192, "tools": 12},
                    r.randint(100, 2000),
                    ip=ip,
                    ua="claude-cli/1.0",
                )
        corp = f"{r.randint(60, 220)}.{r.randint(0, 255)}.{r.randint(0, 255)}"
        for i in range(15):
            a = f"k{i:04d}"
            self.account(a, "enterprise", "ben_team", verified=True, age_days=r.uniform(60, 400))
            for t0 in self.times(r.uniform(3, 8), hours=10):  # sessions
                task, turns = r.choice(self.code), 0
                for k in range(r.randint(5, 30)):  # one session: the conversation grows
                    turns += r.randint(1, 2)
                    self.add(
                        a,
                        t0 + k * r.uniform(20, 120),
                        self.trajectory(task, turns, "tool result: tests failed at line {n}"),
                        {"temperature": 0.2, "max_tokens": 8192, "tools": 12},
                        r.randint(100, 3000),
                        ip=f"{corp}.{r.randint(1, 254)}",
                        ua="claude-cli/1.0",
                    )
        for i in range(10):
            a = f"j{i:04d}"
            tier = r.choice(["pay_as_you_go", "enterprise", "research_program"])
            self.account(a, tier, "ben_judge", verified=True, age_days=r.uniform(40, 400))
            ip, qs = self.ip(), r.sample(self.chat, 80)
            for _ in range(r.randint(2, 5)):
                day = r.randint(0, DAYS - 1)
                for q in qs:
                    body = self.judge_tmpl.replace("{question}", q).replace(
                        "{answer}", r.choice(self.chat)[:400]
                    )
                    msgs = [
                        {"role": "system", "content": self.judge_sys},
                        {"role": "user", "content": body},
                    ]
                    t = T0 + day * 86_400 + r.uniform(0, 3 * 3600)
                    self.add(
                        a,
                        t,
                        msgs,
                        {"temperature": 0.0, "max_tokens": 2048},
                        r.randint(60, 300),
                        ip=ip,
                        ua="OpenAI/Python 1.40.0",
                    )

    def write(self, d: Path) -> None:
        d.mkdir(parents=True, exist_ok=True)
        self.events.sort(key=lambda e: e["ts"])
        (d / "events.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in self.events))
        (d / "accounts.jsonl").write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in self.accounts))


def score(w: Workload, out: Path) -> list[dict[str, Any]]:
    ver = {}
    for line in (out / "accounts.jsonl").read_bytes().splitlines():
        r = orjson.loads(line)
        if r.get("end_user_id") is None:
            ver[r["account_id"]] = r
    first = {
        a: datetime.fromisoformat(r["first_enforce_ts"].replace("Z", "+00:00")).timestamp()
        if r.get("first_enforce_ts")
        else None
        for a, r in ver.items()
    }
    served, total = Counter(), Counter()
    for e in w.events:
        k, f = w.kind[e["account_id"]], first.get(e["account_id"])
        total[k] += 1
        served[k] += f is None or e["ts"] < f
    rows = []
    for k in sorted(set(w.kind.values())):
        accts = [a for a, kk in w.kind.items() if kk == k]
        acts = Counter(ver[a]["action"] if a in ver else "unseen" for a in accts)
        rows.append(
            {
                "kind": k,
                "principals": len(accts),
                "enforced": sum(acts[x] for x in ENFORCE),
                "review": acts["review"],
                "served_before_enforce": served[k] / max(total[k], 1),
                "actions": dict(acts),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--overrides", default="", help="settings overrides as JSON (A/B runs)")
    ap.add_argument(
        "--no-accounts",
        action="store_true",
        help="detect without the accounts side table (no tier, verification, age or payment)",
    )
    ap.add_argument("--work", type=Path, default=Path("/tmp/distillwatch-tactics"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args()
    data = a.data or default_data_dir()
    if data is None or not (data / "prompts_distill.jsonl.gz").exists():
        sys.exit("needs the real corpora: --data DIR or DISTILLWATCH_DATA_DIR (../shared/data)")
    w = Workload(data, a.seed)
    w.build()
    w.write(a.work)
    settings = Settings.load(**json.loads(a.overrides)) if a.overrides else None
    accounts = None if a.no_accounts else a.work / "accounts.jsonl"
    detect(a.work / "events.jsonl", a.work / "out", accounts, settings=settings)
    rows = score(w, a.work / "out")
    lines = [
        f"# Hand-written tactics probe (seed {a.seed}, {len(w.events):,} events"
        + (", no accounts table)" if a.no_accounts else ")"),
        "",
        "`python bench/tactics_probe.py` (module docstring: what each kind is).",
        "",
        "| kind | principals | enforced | review | served before enforcement | actions |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['kind']} | {r['principals']} | {r['enforced']} | {r['review']} |"
            f" {r['served_before_enforce']:.1%} | {r['actions']} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "tactics_probe.md").write_text(text)


if __name__ == "__main__":
    main()
