"""``ColonyActor``: one colony's sub-population, evolved by a one-colony ``Evolution``.

Colony c runs with its own seed (the run's seed for colony 0, so a one-colony Ray run is
the single-process run) and ``colony_index=c`` (so its ids and lineage name colony c).
Between generations the driver tells it what changed: duplicates it dropped, migrants
that left and arrived, and every colony's new instructions (so that its duplicate check
knows what the others wrote, exactly as a restore from the store would).
"""

from __future__ import annotations

import hashlib
from itertools import islice
from typing import Any

from ..assemble import make_fitness
from ..config import RunConfig
from ..evolution.loop import Evolution
from ..individual import Individual
from ..llm.meter import token_counts


class ColonyLost(RuntimeError):
    """The actor lost its state (Ray restarted it): the driver restores and reruns it."""


def colony_seed(run_seed: int, colony: int) -> int:
    if colony == 0:
        return run_seed
    digest = hashlib.sha256(repr((run_seed, "colony", colony)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def colony_config(cfg: RunConfig, colony: int) -> RunConfig:
    """The config one colony actor runs: one colony, its own seed."""
    out = cfg.model_copy(deep=True)
    out.seed = colony_seed(cfg.seed, colony)
    out.evolution.colonies = 1
    return out


class ColonyActor:
    """Runs colony ``index``; LLM and sandbox work go to other actors through proxies."""

    def __init__(self, cfg: RunConfig, index: int):
        self.cfg = colony_config(cfg, index)
        self.index = index
        self.seeds: list[Individual] = []
        self.backends: dict = {}  # name -> BackendProxy (roles sharing one share it)
        self.executor = None      # an ExecutorProxy, or None when no function runs code
        self.evo: Evolution | None = None
        self.fitness: list = []
        self.added: set[str] = set()  # keys of `seen` this colony added in its last step

    def reset(self, parts: dict[str, Any], state: dict[str, Any] | None,
              candidates: list[dict] | None) -> int:
        """Start afresh from ``parts["seeds"]`` (``state`` None) or restore a committed
        colony state; returns the generation the colony steps next. ``parts`` also holds
        ``seen`` (the other colonies' seeds, as (key, id)), the backend proxies and the
        executor proxy."""
        self.seeds = parts["seeds"]
        self.backends = parts["backends"]
        self.executor = parts["executor"]
        self.evo = None  # a reset that fails leaves the colony lost, not half restored
        self._close_fitness()
        tokens = token_counts()
        self.fitness = make_fitness(self.cfg, self.executor, self.backends, tokens)
        self.evo = Evolution(self.cfg, self.backends, self.fitness, self.seeds, tokens=tokens,
                             colony_index=self.index)
        if state is None:
            self.evo.start()
        else:
            self.evo.restore(state, [Individual.from_dict(d) for d in candidates or []])
        for key, seed_id in parts["seen"]:  # the other colonies' seeds
            self.evo.seen.setdefault(key, seed_id)
        self.added = set()
        return self.evo.generation

    def step(self, generation: int, adjust: dict | None = None,
             seen: list[tuple[str, str]] | None = None) -> tuple[list[dict], dict, dict]:
        """Apply the last generation's changes, run ``generation``; returns its candidates,
        this colony's state and its logbook row."""
        if self.evo is None:
            raise ColonyLost(f"colony {self.index} has no state (restarted)")
        if adjust is not None:
            self.apply(adjust, seen or [])
        if self.evo.generation != generation:
            raise ColonyLost(f"colony {self.index} is at generation {self.evo.generation}, "
                             f"not {generation}")
        before = len(self.evo.seen)
        children = self.evo.step()
        # keys only ever join `seen` during a step, at its end (dicts keep their order)
        self.added = set(islice(reversed(self.evo.seen), len(self.evo.seen) - before))
        self.evo.generation += 1
        row = self.evo.logbook.pop()
        state = self.evo.state()
        return [c.to_dict() for c in children], state, row

    def apply(self, adjust: dict, seen: list[tuple[str, str]]) -> None:
        """Drop rejected duplicates, let migrants go and come, and learn every colony's
        instructions of the last generation in store order (as ``restore`` reads them)."""
        evo = self.evo
        drop = set(adjust["drop"])
        gone = drop | set(adjust["leave"])
        arrivals = [Individual.from_dict(d) for d in adjust["arrive"]]
        evo.colonies = [[ind for ind in evo.colonies[0] if ind.id not in gone] + arrivals]
        evo.corpus = [ind for ind in evo.corpus if ind.id not in drop]
        for key in self.added:
            evo.seen.pop(key, None)
        for key, ind_id in seen:
            evo.seen.setdefault(key, ind_id)
        self.added = set()

    def _close_fitness(self) -> None:
        for fn in self.fitness:
            if hasattr(fn, "close"):
                fn.close()
        self.fitness = []
