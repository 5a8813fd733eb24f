"""The FitnessFunction protocol and the base class that owns the batch loop."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..individual import FitnessRecord, Individual


@runtime_checkable
class FitnessFunction(Protocol):
    """Scores a batch; one record per individual, in order.

    ``gate`` functions reject an individual whose record has ``passed=False``.
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
        for ind, rec in zip(todo, fn.score(todo)):
            ind.fitness[fn.name] = rec
            if fn.gate and rec.passed is False:
                ind.reject(f"{fn.name}: {rec.detail.get('reason', 'failed')}")
