"""Synthetic-data generation prompts: the generation stage of a distillation pipeline.

The distilabel generation templates the corpus carries (self-instruct, APIGen's
function-calling generator, the improving-text-embeddings generators and
brainstormers) rendered with real prompts in every slot; a corpus without them
(an older custom data directory) falls back on a few written requests.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.sim.corpus import Corpus
from distillwatch.sim.textgen import collapse_blocks, draw, join

# used only when the corpus carries no generation template ({} = a topic)
FALLBACK = (
    "Generate 20 diverse instructions a user might give an AI assistant about: {}",
    "Write 10 question-answer pairs for a fine-tuning dataset based on this text:\n\n{}",
    "Create 5 new tasks, harder than this one, each with a reference solution:\n{}",
)
SLOT = "\x01"


def render_generator(template: str) -> list[str]:
    """A jinja generation template as literal pieces around its slots (``SLOT``):
    loops and conditionals collapsed to their bodies, every ``{{ var }}`` a slot."""
    return re.sub(r"\{\{.*?\}\}", SLOT, collapse_blocks(template)).split(SLOT)


def datagen_prompts(corpus: Corpus, rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` generation requests: a template per row, its slots filled with snippets
    of real prompts (up to 300 characters each)."""
    templates = [render_generator(t) for t in corpus.generator_templates.values()]
    if not templates:
        templates = [f.split("{}") for f in FALLBACK]
    k = rng.integers(0, len(templates), size=n)
    out: list[pa.Array] = []
    order = np.argsort(k, kind="stable")
    for j, pieces in enumerate(templates):
        m = int((k == j).sum())
        if not m:
            continue
        if len(pieces) == 1:  # a template without slots (a brainstorming prompt)
            out.append(pa.array(pieces * m, pa.string()))
            continue
        args: list[pa.Array | str] = [pieces[0]]
        for piece in pieces[1:]:
            args.append(pc.utf8_slice_codeunits(draw(corpus, "chat", rng, m), 0, 300))
            args.append(piece)
        out.append(join(*args))
    if not out:
        return pa.array([], pa.string())
    return pa.concat_arrays(out).take(pa.array(np.argsort(order, kind="stable")))
