"""Adaptive operators: a bandit over crossover and the mutation heuristics.

Each arm ("crossover", "mutation:<heuristic>") is rewarded 1 when the child it made is
accepted and 0 otherwise, so the mix shifts toward what yields accepted samples. Draws
come from the run's seeded ``random.Random``; the counts are part of the checkpoint.
"""

from __future__ import annotations

import math
import random
from typing import Any

CROSSOVER = "crossover"


def arms_for(heuristics: list[str]) -> list[str]:
    return [CROSSOVER] + [f"mutation:{h}" for h in heuristics]


class OperatorBandit:
    """UCB1 or Thompson sampling (Beta(1 + accepted, 1 + rejected)) over the arms."""

    def __init__(self, arms: list[str], method: str, rng: random.Random):
        if method not in ("ucb1", "thompson"):
            raise ValueError(f"unknown bandit {method!r}: use ucb1 or thompson")
        self.arms = list(arms)
        self.method = method
        self.rng = rng
        self.pulls = {a: 0 for a in self.arms}
        self.wins = {a: 0 for a in self.arms}

    def choose(self, allowed: list[str] | None = None) -> str:
        arms = allowed or self.arms
        if self.method == "thompson":
            draws = {a: self.rng.betavariate(1 + self.wins[a], 1 + self.pulls[a] - self.wins[a])
                     for a in arms}
            return max(arms, key=lambda a: draws[a])
        untried = [a for a in arms if self.pulls[a] == 0]
        if untried:
            return self.rng.choice(untried)
        total = sum(self.pulls[a] for a in arms)
        return max(arms, key=lambda a: self.wins[a] / self.pulls[a]
                   + math.sqrt(2 * math.log(total) / self.pulls[a]))

    def update(self, arm: str, reward: float) -> None:
        if arm in self.pulls:
            self.pulls[arm] += 1
            self.wins[arm] += reward

    def rates(self) -> dict[str, float]:
        return {a: round(self.wins[a] / self.pulls[a], 4) if self.pulls[a] else 0.0
                for a in self.arms}

    def state(self) -> dict[str, Any]:
        return {"pulls": dict(self.pulls), "wins": dict(self.wins)}

    def restore(self, state: dict[str, Any]) -> None:
        for a in self.arms:
            self.pulls[a] = state.get("pulls", {}).get(a, 0)
            self.wins[a] = state.get("wins", {}).get(a, 0)
