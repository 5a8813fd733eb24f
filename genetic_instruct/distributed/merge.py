"""What the driver does between generations, as plain functions (no Ray here).

- ``dedup``: an accepted sample whose normalized instruction is already in the corpus (a
  sample another colony accepted in the same generation) is rejected as a duplicate;
- ``migrate``: ``migrants`` of each colony's newly accepted samples, drawn with a seeded
  generator, move to the next colony (a ring);
- ``adjust_state``: a colony's state with those changes, as the checkpoint keeps it;
- ``seen_entries``: the instructions a colony's duplicate check learns from a generation;
- ``summarize``: the run's logbook row for a generation, from every colony's candidates.
"""

from __future__ import annotations

import random
from typing import Any

from ..evolution.loop import _seed_for, logbook_row, normalize
from ..individual import ACCEPTED, Individual


def dedup(colonies: list[list[Individual]], keys: dict[str, str]) -> list[list[str]]:
    """Reject accepted candidates whose instruction ``keys`` already holds (colonies in
    order, so the first colony's sample wins); returns the dropped ids per colony."""
    dropped: list[list[str]] = [[] for _ in colonies]
    for c, cands in enumerate(colonies):
        for ind in cands:
            if ind.status != ACCEPTED:
                continue
            key = normalize(ind.instruction)
            if key in keys:
                ind.reject(f"duplicate: same instruction as an accepted one ({keys[key]})")
                dropped[c].append(ind.id)
            else:
                keys[key] = ind.id
    return dropped


def migrate(colonies: list[list[Individual]], migrants: int, seed: int,
            generation: int) -> tuple[list[list[str]], list[list[Individual]]]:
    """Who leaves each colony and who arrives in each: ``migrants`` accepted samples of
    this generation from colony c to colony c+1 (mod n). Nothing moves with one colony."""
    n = len(colonies)
    leave: list[list[str]] = [[] for _ in range(n)]
    arrive: list[list[Individual]] = [[] for _ in range(n)]
    if n < 2 or migrants <= 0:
        return leave, arrive
    rng = random.Random(_seed_for(seed, "migration", generation))
    for c, cands in enumerate(colonies):
        pool = [ind for ind in cands if ind.status == ACCEPTED]
        chosen = rng.sample(pool, min(migrants, len(pool)))
        leave[c] = [ind.id for ind in chosen]
        arrive[(c + 1) % n] = chosen
    return leave, arrive


def adjust_state(state: dict[str, Any], drop: list[str], leave: list[str],
                 arrive: list[Individual]) -> dict[str, Any]:
    """A colony's state after the driver's changes (what ``ColonyActor.apply`` does)."""
    gone = set(drop) | set(leave)
    [members] = state["colonies"]
    return dict(state, colonies=[[i for i in members if i not in gone]
                                 + [ind.id for ind in arrive]])


def seen_entries(candidates: list[Individual]) -> list[tuple[str, str]]:
    """(normalized instruction, id) in store order, as ``Evolution.restore`` reads them."""
    return [(normalize(c.instruction), c.id) for c in candidates
            if c.instruction and not (c.reason or "").startswith(("instruction:", "duplicate:"))]


def merge_tokens(states: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    total: dict[str, dict[str, int]] = {}
    for state in states:
        for role, counts in state.get("tokens", {}).items():
            acc = total.setdefault(role, {})
            for k, v in counts.items():
                acc[k] = acc.get(k, 0) + v
    return total


def summarize(generation: int, colonies: list[list[Individual]], rows: list[dict],
              corpus: int, population: int, moved: int, adaptive: str,
              seconds: float) -> dict[str, Any]:
    """The logbook row (same fields as ``Evolution.record``), plus per-colony counts."""
    children = [c for cands in colonies for c in cands]
    return {
        **logbook_row(generation, children, adaptive, corpus, population, seconds),
        "migrants": moved,
        "colonies": [{"accepted": sum(c.status == ACCEPTED for c in cands),
                      "seconds": row.get("seconds", 0.0)}
                     for cands, row in zip(colonies, rows)],
    }
