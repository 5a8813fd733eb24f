"""The generation loop, in the style of DEAP's ``eaSimple``.

Pseudocode (one run)::

    population <- seeds, dealt into C colonies
    for g in 0 .. max_generations-1 while |corpus| < target_size:
        for each colony, for j in 1..offspring_per_colony:
            with probability p_mut: child <- mutate(select(colony, 1), random heuristic)
            else:                   child <- crossover(select(colony, k))
        instruct  all children             (Instructor, one batch across colonies)
        answer    all surviving children    (Coder + Test writer, one batch)
        evaluate  children without valid fitness (syntax gate, execution gate, ...)
        accepted children join the corpus and the population; all are written to the store
        merge the colonies and deal the population into C colonies again
        commit generation g (candidates + checkpoint)

Genetic-Instruct: Majumdar et al. 2024, "Genetic Instruct: Scaling up Synthetic Generation
of Coding Instructions for Large Language Models" (arXiv:2407.21077). As in DEAP, only
individuals whose fitness is invalid are evaluated, the operators live in a ``Toolbox``
and every random choice draws from one seeded ``random.Random``.
"""

from __future__ import annotations

import hashlib
import inspect
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from deap import base

from ..config import RunConfig
from ..fitness.base import FitnessFunction, combine, evaluate
from ..individual import ACCEPTED, PENDING, Individual, Lineage, make_id
from ..llm.base import Backend, ChatRequest
from ..llm.meter import count, token_counts
from ..store import RunStore
from .adaptive import CROSSOVER, OperatorBandit, arms_for
from . import operators as ops
from .selection import select_nsga2, select_random, select_tournament


class Reporter(Protocol):
    """Progress display; the CLI draws bars, tests pass None."""

    def phase(self, name: str, total: int) -> Callable[[int], None]: ...

    def generation(self, row: dict[str, Any]) -> None: ...


@dataclass
class RunResult:
    generations: int
    corpus: list[Individual]
    logbook: list[dict[str, Any]]
    tokens: dict[str, dict[str, int]] = field(default_factory=dict)
    llm_seconds: float = 0.0
    seconds: float = 0.0


def normalize(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _seed_for(run_seed: int, *parts: object) -> int:
    digest = hashlib.sha256(repr((run_seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class Evolution:
    """Evolves a population of instructions; writes every candidate to the store."""

    def __init__(
        self,
        cfg: RunConfig,
        backends: dict[str, Backend],
        fitness: list[FitnessFunction],
        seeds: list[Individual],
        store: RunStore | None = None,
        reporter: Reporter | None = None,
        tokens: dict[str, dict[str, int]] | None = None,
        colony_index: int = 0,
    ):
        self.cfg = cfg
        # the index of this loop's first colony: a Ray colony actor runs colony c alone
        self.colony_index = colony_index
        self.evo = cfg.evolution
        self.backends = backends
        self.fitness = fitness
        self.seeds = seeds
        self.store = store
        self.reporter = reporter
        self.rng = random.Random(cfg.seed)
        self.toolbox = base.Toolbox()
        self.weights = {f.name: f.weight for f in cfg.fitness.functions if f.weight > 0}
        self.objectives = [f.name for f in cfg.fitness.functions
                           if f.objective or (f.objective is None and f.weight > 0)]
        if self.evo.selection == "tournament":
            self.toolbox.register("select", select_tournament, rng=self.rng,
                                  size=self.evo.tournament_size)
        elif self.evo.selection == "nsga2":
            self.toolbox.register("select", select_nsga2, rng=self.rng,
                                  objectives=self.objectives,
                                  size=max(2, self.evo.tournament_size))
        else:
            self.toolbox.register("select", select_random, rng=self.rng)
        self.toolbox.register("mutate", self.mutate)
        self.toolbox.register("mate", self.crossover)
        self.toolbox.register("evaluate", evaluate, functions=fitness)
        self.bandit = (OperatorBandit(arms_for(self.evo.heuristics), self.evo.adaptive, self.rng)
                       if self.evo.adaptive != "off" else None)
        self.colonies: list[list[Individual]] = []
        self.corpus: list[Individual] = []
        self.seen: dict[str, str] = {}
        self.logbook: list[dict[str, Any]] = []
        # per role: calls, cache hits, and the tokens paid for (cache hits cost none);
        # pass the dict make_fitness metered the fitness functions' LLM calls into
        self.tokens = tokens if tokens is not None else token_counts()
        self.llm_seconds = 0.0
        self.generation = 0

    # -- state -----------------------------------------------------------------------------
    def start(self) -> None:
        population = list(self.seeds)
        self.rng.shuffle(population)
        self.colonies = self.deal(population)
        self.seen = {normalize(s.instruction): s.id for s in self.seeds}

    def deal(self, population: list[Individual]) -> list[list[Individual]]:
        n = self.evo.colonies
        return [population[c::n] for c in range(n)]

    def state(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {
            "rng": [version, list(internal), gauss],
            "colonies": [[ind.id for ind in col] for col in self.colonies],
            "logbook": self.logbook,
            "tokens": dict(self.tokens),
            "llm_seconds": self.llm_seconds,
            "bandit": self.bandit.state() if self.bandit else None,
        }

    def restore(self, state: dict[str, Any], candidates: list[Individual]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        by_id = {s.id: s for s in self.seeds}
        self.seen = {normalize(s.instruction): s.id for s in self.seeds}
        for c in candidates:
            if c.status == ACCEPTED:
                by_id[c.id] = c
                self.corpus.append(c)
            if c.instruction and not (c.reason or "").startswith(("instruction:", "duplicate:")):
                self.seen.setdefault(normalize(c.instruction), c.id)  # as instruct() had it
        self.colonies = [[by_id[i] for i in col] for col in state["colonies"]]
        self.logbook = list(state["logbook"])
        self.tokens.update({k: dict(v) for k, v in state.get("tokens", {}).items()})
        self.llm_seconds = state.get("llm_seconds", 0.0)
        if self.bandit and state.get("bandit"):
            self.bandit.restore(state["bandit"])
        self.generation = state["generation"] + 1

    # -- operators -------------------------------------------------------------------------
    def mutate(self, parent: Individual, child: Individual,
               heuristic: str | None = None) -> ChatRequest:
        heuristic = heuristic or self.rng.choice(self.evo.heuristics)
        child.lineage.operator, child.lineage.heuristic = "mutation", heuristic
        child.lineage.parents = [parent.id]
        return ops.mutation_request(parent, heuristic, self.sampling("instructor", child))

    def crossover(self, parents: list[Individual], child: Individual) -> ChatRequest:
        child.lineage.operator = "crossover"
        child.lineage.parents = [p.id for p in parents]
        return ops.crossover_request(parents, self.sampling("instructor", child))

    def sampling(self, role: str, ind: Individual):
        return ops.sampling_for(self.cfg.roles[role], _seed_for(self.cfg.seed, ind.id, role), [])

    def vary(self) -> list[tuple[Individual, ChatRequest]]:
        """Make this generation's children (unevaluated) and their Instructor requests."""
        out = []
        for c, colony in enumerate(self.colonies):
            for j in range(self.evo.offspring_per_colony):
                child = Individual(
                    id=make_id(self.cfg.seed, self.generation, self.colony_index + c, j),
                    instruction="",
                    lineage=Lineage(generation=self.generation, colony=self.colony_index + c))
                arm = self.choose_operator(len(colony))
                if arm != CROSSOVER:
                    [parent] = self.toolbox.select(colony, 1)
                    heuristic = arm.partition(":")[2] or None
                    out.append((child, self.toolbox.mutate(parent, child, heuristic)))
                else:
                    parents = self.toolbox.select(colony, self.evo.crossover_k)
                    out.append((child, self.toolbox.mate(parents, child)))
        return out

    def choose_operator(self, colony_size: int) -> str:
        """"crossover", "mutation:<heuristic>", or "mutation" (heuristic drawn later)."""
        if self.bandit is None:
            if self.rng.random() < self.evo.mutation_prob or colony_size < 2:
                return "mutation"
            return CROSSOVER
        allowed = [a for a in self.bandit.arms if a != CROSSOVER or colony_size >= 2]
        return self.bandit.choose(allowed)

    # -- LLM phases ------------------------------------------------------------------------
    def generate(self, phase: str, items: list[tuple[str, ChatRequest]]) -> list[list[str]]:
        """Send one phase's requests, one batch per backend; the n answers of each, in order."""
        texts: list[list[str]] = [[""]] * len(items)
        by_backend: dict[int, list[int]] = defaultdict(list)
        for i, (role, _) in enumerate(items):
            by_backend[id(self.backends[self.cfg.roles[role].backend])].append(i)
        tick = self.reporter.phase(phase, len(items)) if self.reporter else None
        for idx in by_backend.values():
            backend = self.backends[self.cfg.roles[items[idx[0]][0]].backend]
            reqs = [items[i][1] for i in idx]
            t0 = time.perf_counter()
            comps = _call_generate(backend, reqs, tick)
            self.llm_seconds += time.perf_counter() - t0
            for i, comp in zip(idx, comps):
                texts[i] = comp.texts or [""]
                count(self.tokens[items[i][0]], comp)
        return texts

    def instruct(self, children: list[tuple[Individual, ChatRequest]]) -> None:
        texts = self.generate("instruct", [("instructor", req) for _, req in children])
        for (child, _), answers in zip(children, texts):
            ops.apply_instruction(child, answers[0])
            if child.status != PENDING:
                continue
            key = normalize(child.instruction)
            if key in self.seen:
                child.reject(f"duplicate: same instruction as an earlier one ({self.seen[key]})")
            else:
                self.seen[key] = child.id

    def answer(self, children: list[Individual]) -> None:
        alive = [c for c in children if c.status == PENDING]
        items = []
        for c in alive:
            items.append(("coder", ops.solve_request(c, self.sampling("coder", c))))
            items.append(("test_writer", ops.tests_request(
                c, self.sampling("test_writer", c), self.cfg.fitness.min_asserts)))
        texts = self.generate("answer", items)
        for k, c in enumerate(alive):
            ops.apply_solution(c, texts[2 * k][0])
            if c.status == PENDING:
                ops.apply_tests(c, texts[2 * k + 1], self.cfg.fitness.max_asserts)
            else:
                c.raw["tests"] = "\n\n".join(texts[2 * k + 1])

    # -- the loop --------------------------------------------------------------------------
    def step(self) -> list[Individual]:
        """One generation; returns its candidates (accepted and rejected)."""
        t0 = time.perf_counter()
        pairs = self.vary()
        children = [child for child, _ in pairs]
        self.instruct(pairs)
        self.answer(children)
        tick = self.reporter.phase("evaluate", len(children)) if self.reporter else None
        population = [ind for col in self.colonies for ind in col]
        for fn in self.fitness:  # population-aware functions (novelty) see who is there
            if hasattr(fn, "observe"):
                fn.observe(population)
        self.toolbox.evaluate(children)
        if tick:
            tick(len(children))
        for c in children:
            if c.status == PENDING:
                c.status = ACCEPTED
            c.value = combine(c, self.weights)
            if self.bandit:
                self.bandit.update(_arm(c), 1.0 if c.status == ACCEPTED else 0.0)
        accepted = [c for c in children if c.status == ACCEPTED]
        self.corpus.extend(accepted)
        population = [ind for col in self.colonies for ind in col] + accepted
        self.rng.shuffle(population)
        self.colonies = self.deal(population)
        row = self.record(children, time.perf_counter() - t0)
        if self.reporter:
            self.reporter.generation(row)
        return children

    def record(self, children: list[Individual], seconds: float) -> dict[str, Any]:
        row = logbook_row(self.generation, children, self.evo.adaptive, len(self.corpus),
                          sum(len(c) for c in self.colonies), seconds)
        self.logbook.append(row)
        return row

    def run(self, resume: bool = False) -> RunResult:
        t0 = time.perf_counter()
        state = self.store.latest_checkpoint() if (resume and self.store) else None
        if state:
            self.restore(state, list(self.store.iter_candidates()))
        else:
            self.start()
        while (self.generation < self.evo.max_generations
               and len(self.corpus) < self.evo.target_size):
            candidates = self.step()
            if self.store:
                self.store.commit(self.generation, candidates, self.state())
            self.generation += 1
        return RunResult(self.generation, self.corpus, self.logbook, dict(self.tokens),
                         self.llm_seconds, time.perf_counter() - t0)


def logbook_row(generation: int, children: list[Individual], adaptive: str, corpus: int,
                population: int, seconds: float) -> dict[str, Any]:
    """One generation's logbook row: counts per operator and per arm, rejection reasons."""
    ops_count: dict[str, Counter] = defaultdict(Counter)
    mix: dict[str, Counter] = defaultdict(Counter)
    for c in children:
        ops_count[c.lineage.operator]["proposed"] += 1
        ops_count[c.lineage.operator][c.status] += 1
        mix[_arm(c)]["proposed"] += 1
        mix[_arm(c)][c.status] += 1
    reasons = Counter(_reason_kind(c.reason) for c in children if c.reason)
    return {
        "generation": generation,
        "proposed": len(children),
        "accepted": sum(c.status == ACCEPTED for c in children),
        "operators": {k: dict(v) for k, v in ops_count.items()},
        "mix": {k: dict(v) for k, v in sorted(mix.items())},
        "adaptive": adaptive,
        "reasons": dict(reasons.most_common()),
        "corpus": corpus,
        "population": population,
        "seconds": round(seconds, 3),
    }


def _arm(ind: Individual) -> str:
    if ind.lineage.operator == "mutation":
        return f"mutation:{ind.lineage.heuristic}"
    return ind.lineage.operator


def _reason_kind(reason: str) -> str:
    """Group reasons: drop the details after the first '(' and names of functions."""
    return re.sub(r"\b\w+\(\)", "f()", reason).split("(")[0].strip()


def _call_generate(backend: Backend, reqs: list[ChatRequest], tick) -> list:
    if tick and "progress" in inspect.signature(backend.generate).parameters:
        return backend.generate(reqs, progress=tick)
    comps = backend.generate(reqs)
    if tick:
        tick(len(reqs))
    return comps
