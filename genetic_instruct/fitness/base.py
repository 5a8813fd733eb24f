"""The FitnessFunction protocol and the base class that owns the batch loop."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..individual import FitnessRecord, Individual


@runtime_checkable
class FitnessFunction(Protocol):
    """Scores a batch; one record per individual, in order, each with a value in [0, 1]
    and a detail dict that explains it.

    ``gate`` functions reject an individual whose record has ``passed=False`` (and, where
    ``min_value`` is set, one whose value is below it). Optional class attributes:
    ``roles`` (the LLM roles it calls, e.g. ``("judge",)``: it then receives ``llms`` and
    ``role_configs`` for them) and ``needs_executor`` (it then receives ``executor``).
    A function with an ``observe(population)`` method is shown the current population
    (seeds and accepted samples) before each generation's candidates are scored.
    Third parties register one under the entry-point group ``genetic_instruct.fitness``.
    """

    name: str
    gate: bool

    def score(self, individuals: list[Individual]) -> list[FitnessRecord]: ...


class PerItemFitness:
    """Base for functions that judge one individual at a time: write ``score_one``."""

    name = "base"
    gate = True

    def score(self, individuals: list[Individual]) -> list[FitnessRecord]:
        return [self.score_one(ind) for ind in individuals]

    def score_one(self, ind: Individual) -> FitnessRecord:  # pragma: no cover - abstract
        raise NotImplementedError


def evaluate(individuals: list[Individual], functions: list[FitnessFunction]) -> None:
    """Score the pending individuals with each function in turn (cheap ones first).

    A gate that fails rejects the individual with ``"<name>: <reason>"``; later functions
    do not see it. Only individuals without valid fitness are evaluated.
    """
    for fn in functions:
        todo = [ind for ind in individuals if not ind.fitness_valid]
        if not todo:
            return
        records = fn.score(todo)
        if len(records) != len(todo):
            raise RuntimeError(f"fitness function {fn.name!r} returned {len(records)} "
                               f"records for {len(todo)} candidates")
        floor = getattr(fn, "min_value", None)
        for ind, rec in zip(todo, records):
            rec.value = min(1.0, max(0.0, float(rec.value)))
            ind.fitness[fn.name] = rec
            if fn.gate and rec.passed is False:
                ind.reject(f"{fn.name}: {rec.detail.get('reason', 'failed')}")
            elif floor is not None and rec.value < floor:
                rec.passed = False
                ind.reject(f"{fn.name}: value {rec.value:.2f} below {floor:.2f}")


def combine(ind: Individual, weights: dict[str, float]) -> float | None:
    """The weighted mean of an individual's fitness values (None when it has none)."""
    total = sum(w for name, w in weights.items() if name in ind.fitness)
    if not total:
        return None
    return sum(w * ind.fitness[name].value for name, w in weights.items()
               if name in ind.fitness) / total
