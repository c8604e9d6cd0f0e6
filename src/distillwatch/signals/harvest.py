"""Harvest signals: what the traffic is trying to extract.

Distillation needs outputs worth training on: reasoning traces, grades,
long high-capability answers, token probabilities. These signals measure how
much of an entity's traffic asks for exactly that.
"""

from __future__ import annotations

import numpy as np

from distillwatch.features.classifiers import CAPABILITIES
from distillwatch.signals.base import RampSignal, ShareSignal
from distillwatch.signals.state import StateView

HIGH_VALUE = ("coding", "agentic", "math", "reasoning")
_HV_IDX = [CAPABILITIES.index(c) for c in HIGH_VALUE]


class CotElicitation(ShareSignal):
    """Share of requests that coerce the model to write out its chain of thought.

    Catches: "articulate the internal reasoning behind a completed response",
    Orca-style "think step-by-step and justify your steps" system prompts,
    show-your-work demands at volume. Misses: attackers who harvest reasoning
    through the API's own reasoning output without asking in the prompt (see
    ``ReasoningHarvest``) or phrase the demand in ways the classifier has not
    seen. Eval harnesses appending "Let's think step by step" score moderately.
    """

    name = "cot_elicitation"
    group = "harvest"
    unit = " of requests"

    share_of = "cot_hi"
    ramp_lo = 0.15
    ramp_hi = 0.6

    def detail(self, value: float) -> str:
        return f"{value:.0%} of requests demand a written-out chain of thought"


class RubricShare(ShareSignal):
    """Share of requests that ask the model to grade or score responses.

    Catches: reward-model data collection (LLM-as-judge prompts, rubric
    scoring, pairwise preference). Misses: grading disguised as ordinary
    questions; legitimate eval teams running LLM-as-judge also score high, so
    this never acts alone.
    """

    name = "rubric_share"
    group = "harvest"
    unit = " of requests"

    share_of = "rubric_hi"
    ramp_lo = 0.1
    ramp_hi = 0.5

    def detail(self, value: float) -> str:
        return f"{value:.0%} of requests ask to grade or score a response against criteria"


class DatagenShare(ShareSignal):
    """Share of requests that ask the model to manufacture training data.

    Catches: the generation stage of a distillation pipeline, the one that
    writes the prompts a harvest then answers: self-instruct / Alpaca-style
    "come up with 20 diverse task instructions", Evol-style rewrites into
    harder variants, batches of question-answer or instruction-response pairs,
    synthetic dialogues, function-calling samples (APIGen), embedding-data
    generators (queries with positive and hard-negative passages), sentence
    pairs, and bare chat-template continuations (Magpie pre-query templates).
    The classifier is trained on real distilabel and Magpie templates and
    hand-written requests (docs/classifiers.md). Misses: generation requests
    worded like ordinary questions one item at a time, and languages other
    than English. A person asking for "10 names for my bakery" or a quiz for a
    class scores low, but a product that generates test data or quizzes for
    its users all day scores high, so this never acts alone.
    """

    name = "datagen_share"
    group = "harvest"
    unit = " of requests"

    share_of = "datagen_hi"
    ramp_lo = 0.1
    ramp_hi = 0.5

    def detail(self, value: float) -> str:
        return f"{value:.0%} of requests ask the model to generate training data"


class CapabilityConcentration(RampSignal):
    """Share of requests in high-value areas (coding, agentic/tool use, math, reasoning).

    Catches: capability sweeps that focus on what makes a frontier model
    valuable. Misses: broad general-purpose harvesting; coding-assistant users
    also concentrate on coding, so the weight is modest.
    """

    name = "capability_concentration"
    group = "harvest"
    unit = " of requests"

    ramp_lo = 0.55
    ramp_hi = 0.95

    def measure(self, v: StateView) -> np.ndarray:
        n = v["n"]
        hv = np.add.reduce(v["cap"][:, _HV_IDX], axis=1)  # .sum(axis=1), no wrapper
        return np.divide(hv, n, out=np.zeros(n.shape, n.dtype), where=n > 0)

    def detail(self, value: float) -> str:
        return f"{value:.0%} of requests target coding, agentic, math or reasoning"


class MaxLengthShare(ShareSignal):
    """Share of answers cut off at the length limit (``finish_reason: length``).

    Catches: harvesting of long solutions and traces that run into the output
    cap again and again. Misses: harvesters who size ``max_tokens`` generously.
    A large ``max_tokens`` alone is not counted: agent frameworks and SDK
    defaults set it high for everyone. Long-form writers also hit limits, so
    this needs other harvest evidence to matter.
    """

    name = "max_length_share"
    group = "harvest"
    unit = " of requests"

    share_of = "maxlen_hit"
    ramp_lo = 0.2
    ramp_hi = 0.7

    def detail(self, value: float) -> str:
        return f"{value:.0%} of answers stopped at the length limit"


class ProbabilityHarvest(ShareSignal):
    """Share of requests asking for logprobs, top_logprobs or n > 1.

    Catches: soft-label distillation (token probabilities) and best-of-n
    sampling for data generation. Misses: everyone not using these options;
    eval harnesses use logprobs legitimately, so the weight is small.
    """

    name = "probability_harvest"
    group = "harvest"
    unit = " of requests"

    share_of = "prob_harvest"
    ramp_lo = 0.2
    ramp_hi = 0.7

    def detail(self, value: float) -> str:
        return f"{value:.0%} of requests ask for token probabilities or several samples"


class ReasoningHarvest(ShareSignal):
    """Share of requests that set a high reasoning effort or receive reasoning text.

    Catches: collection of the API's own reasoning output. Misses: models
    without exposed reasoning; many legitimate users want deep reasoning too.
    """

    name = "reasoning_harvest"
    group = "harvest"
    unit = " of requests"

    share_of = "reasoning_harvest"
    ramp_lo = 0.4
    ramp_hi = 0.95

    def detail(self, value: float) -> str:
        return f"{value:.0%} of requests ask for high reasoning effort or receive reasoning"


class ModelLaunchRush(ShareSignal):
    """Share of requests sent to a model within a day of its first appearance.

    Catches: campaigns that move to a newly released model within hours (the
    public reports). Misses: attackers that wait; early adopters also rush,
    so it only adds to other harvest evidence.
    """

    name = "model_launch_rush"
    group = "harvest"
    unit = " of requests"

    share_of = "new_model"
    ramp_lo = 0.3
    ramp_hi = 0.8

    def detail(self, value: float) -> str:
        return f"{value:.0%} of requests hit a model within 24 h of its release"
