"""Parent selection. Every draw comes from the run's one seeded ``random.Random``."""

from __future__ import annotations

import random

from ..individual import Individual


def select_random(population: list[Individual], k: int, rng: random.Random) -> list[Individual]:
    """k distinct parents uniformly at random (as in Genetic-Instruct); fewer if too few."""
    return rng.sample(population, min(k, len(population)))


def select_tournament(population: list[Individual], k: int, rng: random.Random,
                      size: int = 3) -> list[Individual]:
    """k parents, each the fittest of ``size`` drawn at random (distinct where possible)."""
    chosen: list[Individual] = []
    pool = list(population)
    for _ in range(min(k, len(pool))):
        entrants = rng.sample(pool, min(size, len(pool)))
        best = max(entrants, key=lambda ind: ind.score)
        chosen.append(best)
        pool.remove(best)
    return chosen
