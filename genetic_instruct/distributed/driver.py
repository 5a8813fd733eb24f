"""``RayEvolution``: the generation loop over colony actors, and ``run_with_ray``.

Each generation the driver calls ``step`` on every colony actor at once, then, with all
their candidates in hand: rejects cross-colony duplicates, moves migrants (ring), writes
the one run store (every candidate, a checkpoint holding every colony's state, the
logbook) and tells each colony what changed along with its next ``step``.

A colony actor that dies (or comes back from a Ray restart without its state) is
restored from the last committed checkpoint and reruns the generation; the others'
results are kept. Nothing reaches the store before every colony has finished, so no
accepted sample is lost or written twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from ..assemble import cache_path, needs_executor, roles_in_use
from ..config import BackendConfig, RunConfig
from ..evolution.loop import Reporter, RunResult, normalize
from ..individual import ACCEPTED, Individual
from ..store import RunStore, StoreError
from . import RayUnavailable, import_ray
from .colony import ColonyActor, ColonyLost
from .merge import adjust_state, dedup, merge_tokens, migrate, seen_entries, summarize
from .workers import BackendActor, BackendProxy, ExecutorActor, ExecutorProxy

log = logging.getLogger(__name__)

MIGRANTS = 2   # accepted samples that move from each colony to the next, per generation
MAX_TRIES = 3  # reruns of one colony's generation before the run gives up
LOCAL_MODEL_TYPES = ("transformers", "vllm")


def backend_groups(cfg: RunConfig) -> list[list[str]]:
    """The backend names in use, grouped as ``make_backends`` shares one instance."""
    groups: dict[tuple, list[str]] = {}
    for name in sorted({cfg.roles[r].backend for r in roles_in_use(cfg)}):
        bc = cfg.backends[name]
        key = (bc.type, bc.model, bc.device, bc.dtype, bc.batch_size,
               json.dumps(bc.options, sort_keys=True, default=str))
        groups.setdefault(key, []).append(name)
    return list(groups.values())


def gpus_for(bc: BackendConfig, cluster_gpus: float) -> float:
    """GPUs a backend actor asks Ray for: its tensor-parallel size on CUDA, else none."""
    on_gpu = bc.device.startswith("cuda") or (
        bc.device == "auto" and bc.type in LOCAL_MODEL_TYPES and cluster_gpus > 0)
    if not on_gpu:
        return 0
    return float(bc.options.get("tensor_parallel_size") or 1) if bc.type == "vllm" else 1.0


def replicas_for(need: list[float], cluster_gpus: float, colonies: int) -> int:
    """How many copies of each GPU backend: as many full sets as the cluster's GPUs
    hold, at most one per colony; 1 when no backend asks for a GPU."""
    per_set = sum(need)
    if not per_set:
        return 1
    return max(1, min(colonies, int(cluster_gpus // per_set)))


def executor_cpus(cfg: RunConfig) -> int:
    return cfg.execution.workers or 1


def is_lost(exc: BaseException) -> bool:
    from ray.exceptions import RayActorError, RayTaskError

    return isinstance(exc, RayActorError) or (
        isinstance(exc, RayTaskError) and isinstance(exc.cause, ColonyLost))


def unwrap(exc: BaseException) -> BaseException:
    """The error an actor raised, without Ray's wrapping (nested calls included)."""
    from ray.exceptions import RayTaskError

    while isinstance(exc, RayTaskError) and exc.cause is not None:
        exc = exc.cause
    return exc


class RayEvolution:
    """Evolves ``cfg.evolution.colonies`` colony actors; writes one run store."""

    def __init__(self, cfg: RunConfig, store: RunStore, seeds: list[Individual],
                 reporter: Reporter | None = None, migrants: int = MIGRANTS,
                 replicas: int | None = None, window_s: float = 0.05):
        self.ray = import_ray()
        self.cfg = cfg
        self.store = store
        self.seeds = seeds
        self.reporter = reporter
        self.migrants = migrants
        self.replicas = replicas  # of each backend; None: GPU backends as many as GPUs allow
        self.window_s = window_s
        self.n = cfg.evolution.colonies
        self.backends: list = []   # BackendActor handles
        self.executors: list = []  # ExecutorActor handles, one per colony
        self.proxies: list[dict[str, BackendProxy]] = []
        self.colonies: list = []   # ColonyActor handles
        self.committed: list[dict | None] = [None] * self.n  # colony states on disk
        self.logbook: list[dict[str, Any]] = []
        self._candidates = None    # ObjectRef of the store's candidates, for restores
        self.parts: list = []      # ObjectRefs: each colony's seeds, backends, executor
        self.recoveries = 0

    # -- actors ----------------------------------------------------------------------------
    def launch(self) -> None:
        ray = self.ray
        gpus = ray.cluster_resources().get("GPU", 0)
        cache = cache_path(self.cfg, self.store.path)
        groups = backend_groups(self.cfg)
        need = [gpus_for(self.cfg.backends[names[0]], gpus) for names in groups]
        if sum(need) > gpus:  # Ray would wait for them forever
            raise RayUnavailable(
                f"the backends ({', '.join(n[0] for n in groups)}) ask for {sum(need):g} GPUs "
                f"and the Ray cluster has {gpus:g}: add GPU nodes, or set their device to cpu")
        auto = replicas_for(need, gpus, self.n)
        # per colony: backend name -> the proxy of the replica that serves it
        self.proxies = [{} for _ in range(self.n)]
        for names, num_gpus in zip(groups, need):
            bc = self.cfg.backends[names[0]]
            # given: every backend has that many copies; else GPU backends as many as fit
            r_count = min(self.n, self.replicas or (auto if num_gpus else 1))
            for r in range(r_count):
                served = len(range(r, self.n, r_count))  # colonies r, r + R, ...
                actor = ray.remote(BackendActor).options(
                    num_cpus=0, num_gpus=num_gpus, max_restarts=-1, max_task_retries=3,
                    max_concurrency=served + 1,
                ).remote(self.cfg, names[0], cache, served, self.window_s)
                self.backends.append(actor)
                proxy = BackendProxy(actor, bc.type)
                for c in range(r, self.n, r_count):
                    self.proxies[c].update({name: proxy for name in names})
        if needs_executor(self.cfg):
            self.executors = [ray.remote(ExecutorActor).options(
                num_cpus=executor_cpus(self.cfg), max_restarts=-1, max_task_retries=3,
            ).remote(self.cfg) for _ in range(self.n)]
        self._get([a.setup.remote() for a in self.backends + self.executors])
        # what a colony is given with each reset (after a restart too): its share of the
        # seeds (dealt as the single-process loop deals its population), the others'
        # instructions (for its duplicate check), the proxies
        self.parts = []
        for c in range(self.n):
            share = self.seeds[c::self.n]
            mine = {s.id for s in share}
            others = [(normalize(s.instruction), s.id) for s in self.seeds if s.id not in mine]
            executor = ExecutorProxy(self.executors[c]) if self.executors else None
            self.parts.append(ray.put({"seeds": share, "seen": others,
                                       "backends": self.proxies[c], "executor": executor}))
        self.colonies = [self.new_colony(c) for c in range(self.n)]

    def new_colony(self, c: int):
        return self.ray.remote(ColonyActor).options(
            num_cpus=0, max_restarts=MAX_TRIES, max_task_retries=0,
        ).remote(self.cfg, c)

    def close(self) -> None:
        ray = self.ray
        try:
            ray.get([e.close.remote() for e in self.executors], timeout=30)
        except Exception as exc:  # noqa: BLE001 - best effort: the actors are killed next
            log.debug("closing the sandbox actors: %s", exc)
        for actor in self.colonies + self.executors + self.backends:
            ray.kill(actor, no_restart=True)
        self.colonies, self.executors, self.backends = [], [], []

    def _get(self, refs):
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayTaskError as exc:
            raise unwrap(exc) from None

    def candidates(self):
        """The committed candidates in the object store (for restoring colonies)."""
        if self._candidates is None:
            self._candidates = self.ray.put([c.to_dict() for c in self.store.iter_candidates()])
        return self._candidates

    # -- the loop --------------------------------------------------------------------------
    def run(self, resume: bool = False) -> RunResult:
        t0 = time.perf_counter()
        state = self.store.latest_checkpoint() if resume else None
        if state is not None and "colony_states" not in state:
            raise StoreError(f"{self.store.path} was made without --ray-address: resume it "
                             "without --ray-address")
        keys = {normalize(s.instruction): s.id for s in self.seeds}
        corpus: list[Individual] = []
        generation = 0
        tokens: dict = {}
        llm_seconds = 0.0
        if state:
            corpus = [c for c in self.store.iter_candidates() if c.status == ACCEPTED]
            for c in corpus:
                keys.setdefault(normalize(c.instruction), c.id)
            generation = state["generation"] + 1
            self.logbook = list(state["logbook"])
            self.committed = [dict(s, generation=state["generation"])
                              for s in state["colony_states"]]
            tokens, llm_seconds = state.get("tokens", {}), state.get("llm_seconds", 0.0)
        self.launch()
        refs = self.candidates() if state else None
        self._get([a.reset.remote(self.parts[c], self.committed[c], refs)
                   for c, a in enumerate(self.colonies)])
        adjust: list[dict | None] = [None] * self.n
        seen = None
        evo = self.cfg.evolution
        while generation < evo.max_generations and len(corpus) < evo.target_size:
            g0 = time.perf_counter()
            results = self.step_all(generation, adjust, seen)
            colonies = [[Individual.from_dict(d) for d in r[0]] for r in results]
            dropped = dedup(colonies, keys)
            leave, arrive = migrate(colonies, self.migrants, self.cfg.seed, generation)
            states = [adjust_state(r[1], dropped[c], leave[c], arrive[c])
                      for c, r in enumerate(results)]
            flat = [ind for cands in colonies for ind in cands]
            corpus.extend(ind for ind in flat if ind.status == ACCEPTED)
            tokens = merge_tokens(states)
            llm_seconds = sum(s.get("llm_seconds", 0.0) for s in states)
            row = summarize(generation, colonies, [r[2] for r in results], len(corpus),
                            sum(len(s["colonies"][0]) for s in states),
                            sum(map(len, leave)), evo.adaptive, time.perf_counter() - g0)
            self.logbook.append(row)
            self.store.commit(generation, flat, {
                "colony_states": states, "logbook": self.logbook, "tokens": tokens,
                "llm_seconds": llm_seconds, "migrants": self.migrants})
            self.committed = [dict(s, generation=generation) for s in states]
            self._candidates = None
            adjust = [{"drop": dropped[c], "leave": leave[c],
                       "arrive": [ind.to_dict() for ind in arrive[c]]} for c in range(self.n)]
            seen = self.ray.put(seen_entries(flat))
            if self.reporter:
                self.reporter.generation(row)
            generation += 1
        return RunResult(generation, corpus, self.logbook, tokens, llm_seconds,
                         time.perf_counter() - t0)

    def step_all(self, generation: int, adjust: list, seen) -> list[tuple]:
        """Every colony's ``step``, in parallel; a lost colony is restored and rerun."""
        ray = self.ray
        tick = self.reporter.phase("colonies", self.n) if self.reporter else None
        owner = {a.step.remote(generation, adjust[c], seen): c
                 for c, a in enumerate(self.colonies)}
        results: list = [None] * self.n
        tries = [0] * self.n
        pending = list(owner)
        while pending:
            [ref], pending = ray.wait(pending, num_returns=1)
            c = owner.pop(ref)
            try:
                results[c] = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - sorted below
                if not is_lost(exc) or tries[c] >= MAX_TRIES:
                    raise unwrap(exc) from None
                tries[c] += 1
                ref = self.rerun(c, generation)
                owner[ref] = c
                pending.append(ref)
                continue
            if tick:
                tick(1)
        return results

    def rerun(self, c: int, generation: int):
        """Restore colony ``c`` from the last commit (a new actor if it stays dead) and
        start its ``generation`` again."""
        ray = self.ray
        self.recoveries += 1
        state = self.committed[c]
        refs = self.candidates() if state else None
        for attempt in range(MAX_TRIES):
            try:
                ray.get(self.colonies[c].reset.remote(self.parts[c], state, refs))
                break
            except ray.exceptions.RayActorError:
                ray.kill(self.colonies[c], no_restart=True)
                self.colonies[c] = self.new_colony(c)
            except ray.exceptions.RayTaskError as exc:
                raise unwrap(exc) from None
        return self.colonies[c].step.remote(generation)


# -- entry point -------------------------------------------------------------------------------
def connect(address: str, cfg: RunConfig) -> bool:
    """Join the cluster at ``address`` (``auto``, ``HOST:PORT``) or start one in this
    process (``local``); True when this call started Ray (and should shut it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    try:
        if address == "local":
            need = cfg.evolution.colonies * executor_cpus(cfg) if needs_executor(cfg) else 1
            ray.init(num_cpus=max(os.cpu_count() or 1, need), include_dashboard=False,
                     logging_level=logging.WARNING)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RayUnavailable(f"--ray-address {address}: cannot reach a Ray cluster ({first}); "
                             "start one with `ray start --head`, or pass --ray-address local")\
            from None
    return True


def check_resources(cfg: RunConfig) -> None:
    """Fail at once, not hang, when the cluster cannot hold the sandbox actors."""
    import ray

    cpus = ray.cluster_resources().get("CPU", 0)
    need = cfg.evolution.colonies * executor_cpus(cfg) if needs_executor(cfg) else 0
    if need > cpus:
        raise RayUnavailable(
            f"the Ray cluster has {cpus:g} CPUs but {cfg.evolution.colonies} colonies' "
            f"sandboxes ask for {need} (execution.workers={executor_cpus(cfg)} each): "
            "lower execution.workers or evolution.colonies, or add nodes")


def run_with_ray(cfg: RunConfig, store: RunStore, seeds: list[Individual], address: str,
                 reporter: Reporter | None = None, resume: bool = False,
                 migrants: int = MIGRANTS, replicas: int | None = None) -> RunResult:
    """``evolve --ray-address``: the run in ``store`` (created here unless ``resume``)."""
    started = connect(address, cfg)
    try:
        check_resources(cfg)
        if resume:
            store.open(cfg)
        else:
            store.create(cfg)
        evo = RayEvolution(cfg, store, seeds, reporter, migrants, replicas)
        try:
            return evo.run(resume)
        finally:
            evo.close()
    finally:
        if started:
            import_ray().shutdown()
