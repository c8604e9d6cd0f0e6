"""Labelled traffic simulator: legitimate archetypes and distillation attacks.

``simulate(scenario, out_dir, scale, seed, fmt, data_dir)`` writes contract
events plus account and request labels; ``SCENARIOS`` lists the scenarios.
See ``docs/simulator.md``.
"""

from distillwatch.sim.scenarios import HELD_OUT_SEEDS, SCENARIOS, Scenario
from distillwatch.sim.simulate import SimSummary, simulate

__all__ = ["HELD_OUT_SEEDS", "SCENARIOS", "Scenario", "SimSummary", "simulate"]
