"""Labelled requests for the ``datagen`` head (``train_datagen.py``).

``datagen`` = 1 when a request asks the model to *manufacture training or evaluation
data*: batches of instructions, user queries, question-answer or instruction-response
pairs, dialogues, labelled or contrastive examples, function-calling samples, or the
continuation of a bare chat template (Magpie). That is the other half of a distillation
pipeline besides chain-of-thought and grading: the self-instruct / Evol / Magpie stage
that writes the prompts the harvest then answers.

Labels come from the wrapper, never from the corpus, as for the other heads:

* **positives**: the real generation templates in ``../shared/data/templates``
  (distilabel self-instruct, genstruct, sentence-pair, APIGen generator, the
  improving-text-embeddings generators and brainstormers; Magpie pre-query templates)
  rendered with real prompts; hand-written generation requests (split train/test like
  every phrasing list: every third is test); a compositional grammar (training only).
* **negatives**: every request of the other heads' data set (plain prompts, CoT and
  grading wrappers, neutral instructions, agentic wrappers, other languages), and
  ordinary "give me a list" requests people send for themselves (hand-written, split,
  plus a grammar in training only): ten names for a bakery, five interview questions,
  a quiz for my class, sample rows to test my API.

Whole templates are held out (``TEMPLATES_TEST``), so the test set measures unseen
template families, not unseen fillings of seen ones.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import classifier_phrasings as ph

# --- real templates ------------------------------------------------------------------

GEN_TEMPLATES = [
    "self-instruct", "genstruct", "apigen/generator",
    "improving_text_embeddings/bitext-retrieval", "improving_text_embeddings/long-text-matching",
    "improving_text_embeddings/monolingual-triplet", "improving_text_embeddings/short-text-matching",
    "improving_text_embeddings/text-classification", "improving_text_embeddings/text-retrieval",
    "improving_text_embeddings/brainstorming/text-classification",
    "improving_text_embeddings/brainstorming/text-matching-long",
    "improving_text_embeddings/brainstorming/text-matching-short",
    "improving_text_embeddings/brainstorming/text-retrieval",
]  # fmt: skip
TEMPLATES_TEST = {
    "genstruct",
    "apigen/generator",
    "improving_text_embeddings/monolingual-triplet",
    "improving_text_embeddings/brainstorming/text-matching-long",
    "improving_text_embeddings/text-classification",
    "sentence-pair/semantic-similarity",
    "alpaca",
}
# Magpie families held out (the test set's pre-query templates are unseen)
MAGPIE_TEST = ("qwen", "gemma")

# distilabel's GenerateSentencePair puts its instruction in the system prompt and only
# "## Anchor\n\n{anchor}" in the user turn; these are written after its documented actions
SENTENCE_PAIR_SYSTEM = {
    "sentence-pair/paraphrase": "Your task is to generate a positive sentence given an anchor "
    "sentence. The positive sentence has to be a paraphrase of the anchor sentence. You must "
    "output only one new section: `## Positive`.",
    "sentence-pair/paraphrase-negative": "Your task is to generate a positive and a negative "
    "sentence given an anchor sentence. The positive sentence has to be a paraphrase of the "
    "anchor; the negative sentence must use similar words but have a different meaning. "
    "Output the sections `## Positive` and `## Negative`.",
    "sentence-pair/query": "Your task is to generate a search query that a user could write to "
    "retrieve the given anchor document. Output only the section `## Positive` with the query.",
    "sentence-pair/answer": "Your task is to generate a question whose answer is contained in "
    "the anchor sentence, and a hard negative that looks related but is not answered by it.",
    "sentence-pair/semantic-similarity": "Your task is to generate a sentence that is "
    "semantically similar to the anchor sentence, and one that is semantically unrelated, "
    "for a sentence-embedding training set. Output `## Positive` and `## Negative`.",
}
# The Alpaca / self-instruct generation prompt, written from its published description
# (20 diverse task instructions with inputs and outputs, then the seed tasks as examples)
ALPACA = (
    "You are asked to come up with a set of 20 diverse task instructions. These task "
    "instructions will be given to a GPT model and we will evaluate the GPT model for "
    "completing the instructions.\n\nHere are the requirements:\n1. Try not to repeat the "
    "verb for each instruction to maximize diversity.\n2. The language used for the "
    "instruction also should be diverse.\n3. The type of instructions should be diverse.\n"
    "4. Not all instructions require input.\n5. The output should be an appropriate "
    "response to the instruction and the input.\n\nList of 20 tasks:\n{tasks}"
)


def render_templates(
    data: Path, fills: list[str], rng: random.Random, per: int = 250, per_magpie: int = 30
) -> dict[str, list[str]]:
    """name -> ``per`` rendered requests ("system\\x1eprompt"), every slot filled from
    ``fills`` (``per_magpie`` for each Magpie model family: one short template each)."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.ChainableUndefined)
    tdir = data / "templates" / "distilabel"
    seeds = [
        json.loads(x)
        for x in (data / "templates" / "self_instruct_seed_tasks.jsonl").read_text().splitlines()
        if x.strip()
    ]
    out: dict[str, list[str]] = {}

    def pick(n: int = 300) -> str:
        text = rng.choice(fills)
        return text[: rng.randint(40, n)]

    for name in GEN_TEMPLATES:
        t = env.from_string((tdir / f"{name}.jinja2").read_text())
        rows = []
        for _ in range(per):
            ctx = {
                k: pick()
                for k in ("input", "context", "anchor", "title", "content", "task", "func_desc",
                          "application_description", "criteria_for_query_generation",
                          "examples", "query_type", "query_length", "clarity", "format_inst",
                          "parallel_queries", "src_lang", "tgt_lang", "unit", "difficulty",
                          "num_words", "language", "high_score", "low_score")
            }  # fmt: skip
            ctx["num_instructions"] = ctx["number"] = str(rng.choice([3, 5, 10, 20]))
            ctx["func_name"] = rng.choice(["get_weather", "search_flights", "convert_units"])
            rows.append("\x1e" + t.render(**ctx))
        out[name] = rows
    for name, system in SENTENCE_PAIR_SYSTEM.items():
        out[name] = [f"{system}\x1e## Anchor\n\n{pick(500)}" for _ in range(per)]
    alpaca = []
    for _ in range(per):
        chosen = rng.sample(seeds, 3)
        tasks = "\n".join(
            f"{i + 1}. Instruction: {s['instruction']}\n{i + 1}. Input:\n"
            f"{s['instances'][0]['input'] or '<noinput>'}\n{i + 1}. Output:\n"
            f"{s['instances'][0]['output'][:300]}\n###"
            for i, s in enumerate(chosen)
        )
        alpaca.append("\x1e" + ALPACA.format(tasks=tasks) + f"\n{len(chosen) + 1}. Instruction:")
    out["alpaca"] = alpaca
    magpie = json.loads((data / "templates" / "magpie_model_configs.json").read_text())
    for model, cfg in magpie.items():
        key = "magpie/" + model.lower()
        texts = [
            str(v)
            for k, v in cfg.items()
            if k.startswith("pre_query_template") and isinstance(v, str) and v.strip()
        ]
        if texts:
            out[key] = ["\x1e" + rng.choice(texts) for _ in range(per_magpie)]
    return out


_SPECIAL = re.compile(
    r"<\|[^|>]*\|>|<s>|</s>|\[/?INST\]|<<SYS>>|<</SYS>>|<start_of_turn>|<end_of_turn>|<bos>|\b(system|user|assistant|model)\b\n?"
)
COMMON_SYSTEM = [
    "You are a helpful assistant.", "You are a helpful assistant", "You are ChatGPT, a large language model.",
    "You are a helpful, respectful and honest assistant.", "You are an AI assistant.",
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
]  # fmt: skip


def magpie_system_prompts(data: Path) -> list[str]:
    """The natural-language system prompts inside the Magpie templates, special tokens
    stripped: as a system prompt of an ordinary request they are no generation request
    (only the bare template, ending at an open user turn, is)."""
    magpie = json.loads((data / "templates" / "magpie_model_configs.json").read_text())
    out = set(COMMON_SYSTEM)
    for cfg in magpie.values():
        for k, v in cfg.items():
            if k.startswith("pre_query_template") and isinstance(v, str):
                text = " ".join(_SPECIAL.sub(" ", v).split())
                if len(text) > 20:
                    out.add(text)
    return sorted(out)


def is_test_template(name: str) -> bool:
    if name.startswith("magpie/"):
        return any(f in name for f in MAGPIE_TEST)
    return name in TEMPLATES_TEST


# --- hand-written requests -------------------------------------------------------------

# {t}: a topic or seed text. Every third is test (ph.split_half).
DATAGEN = [
    "Generate 20 diverse instructions that a user might give to an AI assistant about {t}.",
    "Create 50 question-answer pairs about the text below for a fine-tuning dataset.\n\n{t}",
    "Write 10 new user prompts similar in style to this one, each on its own line:\n{t}",
    "Produce a JSON list of 25 instruction/response pairs covering {t}. Keys: instruction, input, output.",
    "You are a synthetic data generator. Given the seed below, write 15 varied training examples.\n\nSeed: {t}",
    "Come up with 30 challenging, diverse questions a user could ask about {t}, with reference answers.",
    "Brainstorm 40 realistic user queries for a chatbot in this domain: {t}. Vary length and tone.",
    "Rewrite the following task into 10 harder variants (add constraints, deepen it, make it multi-step):\n{t}",
    "Generate a multi-turn conversation between a curious user and a helpful AI assistant about {t}. At least 6 turns.",
    "For the passage below, write 5 questions whose answers are in the passage, and the answers, as JSON lines.\n\n{t}",
    "I'm building an instruction-tuning dataset. Give me 20 unique tasks related to {t}, each with an example input and the ideal output.",
    "Create labelled training data for a sentiment classifier: 30 short reviews about {t}, each tagged positive, negative or neutral.",
    "Write 12 paraphrases of the sentence below for data augmentation, one per line, no numbering.\n{t}",
    "Generate 10 math word problems in the style of the example, each followed by a worked solution.\nExample: {t}",
    "Invent 8 function-calling examples: a user request and the JSON tool call that answers it, for the API described here: {t}",
    "Given this document, write a search query it answers, a relevant passage and a hard negative passage, as JSON.\n\n{t}",
    "Produce 100 diverse coding problems with test cases and solutions, in the spirit of: {t}",
    "Please synthesize 25 dialogues in which a customer asks support about {t}; output JSONL with a 'messages' field.",
    "Evolve this instruction into a more complex one by adding reasoning steps, then give the evolved instruction only:\n{t}",
    "Write the next user message in this conversation, as a real user would type it. Output only the user message.\n\n{t}",
    "Generate negative examples for contrastive training: for the query below, 5 passages that look relevant but do not answer it.\n{t}",
    "Make 30 multiple-choice questions with four options and the correct letter about {t} for an evaluation benchmark.",
    "Create a dataset of 20 (question, chain-of-thought, answer) triples about {t} in JSON format.",
    "List 15 distinct tasks that a language model could be asked to do with the input below, phrased as instructions.\n\n{t}",
]
NOT_DATAGEN = [
    "Give me 10 name ideas for my bakery. It's small and cozy and sells {t}.",
    "Write 5 interview questions for a junior developer position.",
    "Can you suggest 3 gift ideas for my dad? He likes {t}.",
    "Create a weekly meal plan for a vegetarian family of four.",
    "List the 10 largest cities in Europe by population.",
    "Make a quiz with 5 questions about {t} for my 4th grade class tomorrow.",
    "Write a short dialogue between two friends planning a trip, for my Spanish homework.",
    "Generate some sample JSON for testing my API endpoint that returns a user profile.",
    "What are 7 good questions to ask at the end of a job interview?",
    "Give me a few examples of metaphors I could use in my essay about {t}.",
    "Brainstorm taglines for a fitness app aimed at busy parents.",
    "Suggest 10 blog post titles about {t}.",
    "Write three tweets announcing our new product launch.",
    "Create a to-do list for moving into a new apartment.",
    "Generate a random password policy for my team and explain it.",
    "Give me 20 vocabulary words for the SAT with definitions.",
    "List five pros and five cons of remote work.",
    "Write a cover letter for a marketing role; here is my CV: {t}",
    "Come up with a name for my Dungeons and Dragons character, a half-elf bard.",
    "Can you write 4 practice problems on fractions for my daughter, with answers at the end?",
    "Summarize the text below in five bullet points.\n\n{t}",
    "Give me some conversation starters for a first date.",
    "Generate test cases for this Python function: {t}",
    "Write the FAQ section for our website about {t}.",
]
_GEN_VERB = [
    "Generate", "Create", "Write", "Produce", "Come up with", "Synthesize", "Brainstorm",
    "Compose", "Invent", "Draft", "Develop", "Construct", "Output", "Build", "Make", "Simulate",
]  # fmt: skip
_GEN_COUNT = ["5", "10", "12", "20", "25", "30", "50", "100", "a set of", "a batch of", "{n}", "N"]
_GEN_QUAL = [
    "", "diverse ", "varied ", "new ", "synthetic ", "realistic ", "unique ", "high-quality ",
    "challenging ", "non-overlapping ", "distinct ", "creative ",
]  # fmt: skip
_GEN_OBJ = [
    "instructions", "task instructions", "user queries", "prompts", "questions with answers",
    "question-answer pairs", "instruction-response pairs", "conversations between a user and an AI assistant",
    "training examples", "labelled examples", "paraphrases", "math problems with solutions",
    "coding exercises with solutions", "tool-use examples", "search queries", "user requests",
    "seed tasks", "preference pairs (chosen and rejected responses)", "hard negatives",
    "evaluation questions", "role-play dialogues", "system prompts", "dialogues",
    "multi-turn chats", "sample conversations", "function calls with their arguments",
    "API call examples", "JSONL records of a user request and the tool call", "example inputs and outputs",
    "prompt-completion pairs", "reviews with sentiment labels", "reading-comprehension questions",
    "tasks a language model could perform, phrased as instructions", "harder rewrites of the prompt",
]  # fmt: skip
_DIALOGUE = ["dialogue", "conversation", "chat transcript", "multi-turn exchange", "role-play"]
_PARTIES = [
    "a user and an AI assistant", "a customer and a support agent", "a student and a tutor",
    "a patient and a doctor", "a developer and a coding assistant", "two people",
]  # fmt: skip
_GEN_ABOUT = [
    " about {t}",
    " based on the text below",
    " for the domain: {t}",
    " similar to the example",
    " covering {t}",
    "",
]
_GEN_PURPOSE = [
    "", " for fine-tuning a language model", " for an instruction-tuning dataset", " to train a chatbot",
    " for our training set", " for a benchmark", " for distillation", " for a classifier",
]  # fmt: skip
# (no bare format instructions such as "Output JSON lines": alone they are neutral)
_GEN_FORMAT = [
    "", "", "", " Return a JSON list with 'instruction' and 'output' fields.",
    " Do not repeat yourself.", " Vary the verbs and sentence structure.",
    " Include the answer after each one.", " Make each one different from the others.",
]  # fmt: skip
_ASK = [
    "Give me", "Suggest", "List", "Write", "Can you come up with", "I need", "Help me think of",
    "Create", "Generate",
]  # fmt: skip
_ASK_OBJ = [
    "name ideas for my {t} shop", "gift ideas for my sister", "questions to ask my landlord",
    "things to do in Lisbon this weekend", "interview questions for a nurse", "dinner recipes with {t}",
    "slogans for our charity run", "reasons to learn Python", "quiz questions for my class about {t}",
    "icebreakers for a team meeting", "examples of alliteration", "sample data to test my form",
    "titles for my thesis on {t}", "tips to sleep better", "excuses to leave a party early",
]  # fmt: skip


def datagen_grammar(rng: random.Random, n: int) -> list[str]:
    """n generated data-generation requests ({t} left for a topic or seed)."""
    out = []
    for _ in range(n):
        if rng.random() < 0.2:  # one or many synthetic conversations
            many = rng.random() < 0.5
            what = rng.choice(_DIALOGUE) + (
                "s" if many and not rng.choice(_DIALOGUE).endswith("y") else ""
            )
            count = f"{rng.choice(['5', '10', '20', '50', 'several'])} " if many else "a "
            s = (
                f"{rng.choice(_GEN_VERB)} {count}{rng.choice(['', 'realistic ', 'synthetic ', 'multi-turn '])}"
                f"{what} between {rng.choice(_PARTIES)}{rng.choice(_GEN_ABOUT)}{rng.choice(_GEN_PURPOSE)}."
                f"{rng.choice(_GEN_FORMAT)}"
            )
            out.append(s + ("\n\n{t}" if "text below" in s or "example" in s else ""))
            continue
        s = (
            f"{rng.choice(_GEN_VERB)} {rng.choice(_GEN_COUNT)} {rng.choice(_GEN_QUAL)}"
            f"{rng.choice(_GEN_OBJ)}{rng.choice(_GEN_ABOUT)}{rng.choice(_GEN_PURPOSE)}."
            f"{rng.choice(_GEN_FORMAT)}"
        )
        s = s.replace("{n}", str(rng.choice([8, 15, 40])))
        if "text below" in s or "example" in s:
            s += "\n\n{t}"
        out.append(s)
    return out


def ordinary_list_grammar(rng: random.Random, n: int) -> list[str]:
    """n ordinary list requests a person makes for their own use ({t} for a topic)."""
    return [
        f"{rng.choice(_ASK)} {rng.choice(['', 'a few ', '5 ', '10 ', 'some '])}{rng.choice(_ASK_OBJ)}"
        f"{rng.choice(['.', '?', ', please.', ' for tomorrow.'])}"
        for _ in range(n)
    ]


def fill(template: str, topic: str) -> str:
    """A phrasing with its topic slot filled (a topic is a prompt's first clause)."""
    return template.replace("{t}", topic)


def topic_of(prompt: str, rng: random.Random) -> str:
    """A short topic or a seed passage cut from a real prompt."""
    if rng.random() < 0.5:
        first = re.split(r"[.?!\n]", prompt.strip(), maxsplit=1)[0]
        return first[:120].strip() or prompt[:120]
    return prompt[: rng.randint(80, 600)]


def split(items: list[str]) -> tuple[list[str], list[str]]:
    return ph.split_half(items)
