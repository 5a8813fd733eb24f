"""Preference pairs (DPO, reward-aware preference optimization) from a run's samples.

The ``difficulty`` fitness function samples several independent solutions per instruction
and runs each against the instruction's tests; it records them in
``fitness["difficulty"].detail["samples"]`` as ``{"solution", "status", "tests_passed",
"tests_total"}``. A pair puts the accepted solution (``chosen``) against one of those
samples that passes fewer tests (``rejected``).

Rewards are execution pass fractions, so both sides are on the same scale: the chosen
reward is the accepted candidate's ``execution`` value (1.0: it passed every test), a
sample's is ``tests_passed / tests_total``. Samples that pass as many tests as the chosen
solution, or repeat it, carry no preference and are skipped; the worst-scoring samples are
paired first, at most ``pairs_per_prompt`` per instruction.
"""

from __future__ import annotations

from typing import Any

from .individual import Individual

SAMPLER = "difficulty"


class NoSamples(ValueError):
    """The run recorded no sampled solutions to pair with its accepted ones."""


def samples(ind: Individual) -> list[dict[str, Any]]:
    rec = ind.fitness.get(SAMPLER)
    found = rec.detail.get("samples") if rec else None
    return [s for s in found or [] if isinstance(s, dict) and isinstance(s.get("solution"), str)]


def sample_reward(sample: dict[str, Any]) -> float:
    total = sample.get("tests_total") or 0
    if total > 0:
        return max(0.0, min(1.0, (sample.get("tests_passed") or 0) / total))
    return 1.0 if sample.get("status") == "passed" else 0.0


def chosen_reward(ind: Individual) -> float:
    rec = ind.fitness.get("execution")
    return rec.value if rec is not None else 1.0


def _code(solution: str) -> str:
    return "\n".join(line.rstrip() for line in solution.strip().splitlines())


def pairs(ind: Individual, pairs_per_prompt: int = 1) -> list[tuple[dict[str, Any], float]]:
    """The samples to reject against ``ind``'s solution, worst first, with their rewards."""
    top = chosen_reward(ind)
    mine = _code(ind.solution)
    scored = [(sample_reward(s), i, s) for i, s in enumerate(samples(ind))
              if _code(s["solution"]) != mine]
    scored = sorted((r, i, s) for r, i, s in scored if r < top)
    return [(s, r) for r, _, s in scored[:pairs_per_prompt]]


def has_samples(individuals: list[Individual]) -> bool:
    return any(samples(ind) for ind in individuals)
