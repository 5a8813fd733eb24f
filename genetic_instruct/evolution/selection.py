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


def select_nsga2(population: list[Individual], k: int, rng: random.Random,
                 objectives: list[str], size: int = 2) -> list[Individual]:
    """k parents by tournament on NSGA-II's order: Pareto front first (DEAP's
    ``sortNondominated``), then larger crowding distance (``assignCrowdingDist``).

    Objectives are fitness function names (maximized); a missing value counts as 0.
    """
    if len(population) <= k:
        return list(population)
    rank, crowd = nsga2_order(population, objectives)
    chosen: list[Individual] = []
    pool = list(range(len(population)))
    for _ in range(k):
        entrants = rng.sample(pool, min(size, len(pool)))
        best = min(entrants, key=lambda i: (rank[i], -crowd[i]))
        chosen.append(population[best])
        pool.remove(best)
    return chosen


def nsga2_order(population: list[Individual], objectives: list[str]):
    """Front index and crowding distance of each individual (by position)."""
    from deap import base, tools

    class _Fitness(base.Fitness):
        weights = (1.0,) * max(1, len(objectives))

    class _Wrapped:
        def __init__(self, i: int, values: tuple[float, ...]):
            self.i = i
            self.fitness = _Fitness(values)

    wrapped = []
    for i, ind in enumerate(population):
        values = tuple(ind.fitness[o].value if o in ind.fitness else 0.0 for o in objectives)
        wrapped.append(_Wrapped(i, values or (ind.score,)))
    rank = [0] * len(population)
    crowd = [0.0] * len(population)
    for r, front in enumerate(tools.sortNondominated(wrapped, len(wrapped))):
        tools.emo.assignCrowdingDist(front)
        for w in front:
            rank[w.i] = r
            crowd[w.i] = w.fitness.crowding_dist
    return rank, crowd
