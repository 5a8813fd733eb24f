"""The one record every stage shares: an Individual (a coding instruction and its answer)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

PENDING = "pending"
ACCEPTED = "accepted"
REJECTED = "rejected"


@dataclass
class Lineage:
    """Where an individual came from."""

    parents: list[str] = field(default_factory=list)
    operator: str = "seed"  # seed | mutation | crossover
    heuristic: str | None = None
    generation: int = 0
    colony: int = 0


@dataclass
class FitnessRecord:
    """One fitness function's verdict on one individual.

    ``value`` lies in [0, 1]; ``passed`` is the gate decision (None where the function is
    not a gate); ``detail`` holds whatever explains the value (counts, parse errors, ...).
    """

    name: str
    value: float
    passed: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Individual:
    """A coding instruction with its solution and assert-style tests."""

    id: str
    instruction: str
    entry_point: str = ""
    solution: str = ""
    tests: list[str] = field(default_factory=list)
    language: str = "python"
    fitness: dict[str, FitnessRecord] = field(default_factory=dict)
    lineage: Lineage = field(default_factory=Lineage)
    status: str = PENDING
    reason: str | None = None
    raw: dict[str, str] = field(default_factory=dict)
    value: float | None = None  # the combined fitness: weighted mean of the functions' values

    @property
    def fitness_valid(self) -> bool:
        """DEAP's notion: evaluated once, never again."""
        return self.status != PENDING

    @property
    def score(self) -> float:
        """The combined fitness where set, else the mean of the values (0 when none)."""
        if self.value is not None:
            return self.value
        if not self.fitness:
            return 0.0
        return sum(r.value for r in self.fitness.values()) / len(self.fitness)

    def reject(self, reason: str) -> Individual:
        self.status = REJECTED
        self.reason = reason
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Individual:
        data = dict(data)
        data["lineage"] = Lineage(**data.get("lineage") or {})
        data["fitness"] = {
            k: FitnessRecord(**v) for k, v in (data.get("fitness") or {}).items()
        }
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def make_id(*parts: object) -> str:
    """A short stable id from the things that determine an individual."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:16]
