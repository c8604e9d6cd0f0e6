"""Per-entity signals over running state; :data:`ALL_SIGNALS` is the catalogue."""

from __future__ import annotations

from distillwatch.signals.automation import (
    AroundTheClock,
    ParamUniformity,
    SingleTurnShare,
    TemplateReuse,
    TimingRegularity,
    VolumeRate,
)
from distillwatch.signals.base import Signal
from distillwatch.signals.harvest import (
    CapabilityConcentration,
    CotElicitation,
    DatagenShare,
    MaxLengthShare,
    ModelLaunchRush,
    ProbabilityHarvest,
    ReasoningHarvest,
    RubricShare,
)
from distillwatch.signals.identity import AccountAgeRamp, InfraRotation, TierTrust

ALL_SIGNALS: tuple[type[Signal], ...] = (
    CotElicitation,
    RubricShare,
    DatagenShare,
    CapabilityConcentration,
    MaxLengthShare,
    ProbabilityHarvest,
    ReasoningHarvest,
    ModelLaunchRush,
    VolumeRate,
    AroundTheClock,
    TimingRegularity,
    SingleTurnShare,
    TemplateReuse,
    ParamUniformity,
    TierTrust,
    AccountAgeRamp,
    InfraRotation,
)

__all__ = ["ALL_SIGNALS", "Signal"]
