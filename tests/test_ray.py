"""Colonies as Ray actors (`evolve --ray-address`): one consistent store, the same run as
the single process for one colony, a killed colony restored, resume, and the CLI."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from test_cli import run_cli, sets

from genetic_instruct.assemble import executor_from_config, make_fitness
from genetic_instruct.config import validate_config
from genetic_instruct.distributed.driver import RayEvolution, run_with_ray
from genetic_instruct.evolution.loop import Evolution, normalize
from genetic_instruct.individual import ACCEPTED
from genetic_instruct.llm.fake import FakeBackend
from genetic_instruct.seeds import load_seeds
from genetic_instruct.store import RunStore

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)
    yield
    ray.shutdown()


def config(root, seed=0, colonies=2, options=None, **evo):
    return validate_config({
        "seed": seed,
        "seeds": {"path": str(root / "seeds/python_core.jsonl"), "limit": 12},
        "backends": {"default": {"type": "fake", "options": options or {}}},
        "execution": {"executor": "local", "workers": 1},
        "evolution": {"colonies": colonies, "offspring_per_colony": 5, "max_generations": 3,
                      "target_size": 1000, **evo},
    })


def ray_run(cfg, path, reporter=None):
    store = RunStore(path)
    store.create(cfg)
    evo = RayEvolution(cfg, store, load_seeds(cfg.seeds), reporter)
    try:
        return evo.run(), store, evo
    finally:
        evo.close()


def summary(corpus):
    return [(c.id, c.instruction, c.solution, tuple(c.tests), c.lineage.operator,
             tuple(c.lineage.parents), c.lineage.colony) for c in corpus]


def check_store(store, result, generations):
    cands = list(store.iter_candidates())
    ids = [c.id for c in cands]
    assert len(ids) == len(set(ids))
    accepted = [c for c in cands if c.status == ACCEPTED]
    assert [c.id for c in accepted] == [c.id for c in result.corpus]
    keys = [normalize(c.instruction) for c in accepted]
    assert len(keys) == len(set(keys)), "a duplicate instruction was accepted twice"
    state = store.latest_checkpoint()
    assert state["generation"] == generations - 1
    assert len(list(store.checkpoints.glob("gen-*.json"))) == generations
    logbook = [json.loads(x) for x in (store.path / "logbook.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in logbook] == list(range(generations))
    assert sum(r["accepted"] for r in logbook) == len(accepted)
    return cands, state


def test_two_colonies_write_one_consistent_store(root, tmp_path):
    cfg = config(root, seed=1, max_generations=4)
    result, store, _ = ray_run(cfg, tmp_path / "run")
    assert result.generations == 4 and result.corpus
    cands, state = check_store(store, result, 4)
    assert len(cands) == 4 * 2 * 5
    assert {c.lineage.colony for c in cands} == {0, 1}
    assert len(state["colony_states"]) == 2
    known = {s.id for s in load_seeds(cfg.seeds)} | {c.id for c in result.corpus}
    members = [set(s["colonies"][0]) for s in state["colony_states"]]
    assert all(m <= known for m in members)
    assert not members[0] & members[1]  # an individual lives in one colony
    by_id = {c.id: c for c in result.corpus}
    moved = [i for c, m in enumerate(members) for i in m
             if i in by_id and by_id[i].lineage.colony != c]
    assert moved, "no migrant reached another colony"
    assert all(r["migrants"] == 4 for r in result.logbook)
    assert state["tokens"]["instructor"]["calls"] == 4 * 2 * 5


def test_one_colony_is_the_single_process_run(root, tmp_path):
    cfg = config(root, seed=3, colonies=1, max_generations=3)
    executor = executor_from_config(cfg)
    try:
        single = Evolution(cfg, {"default": FakeBackend()}, make_fitness(cfg, executor),
                           load_seeds(cfg.seeds)).run()
    finally:
        executor.close()
    result, _, _ = ray_run(cfg, tmp_path / "run")
    assert len(single.corpus) > 0
    assert summary(result.corpus) == summary(single.corpus)


class KillColony:
    """After generation ``after`` is committed, kills colony ``colony`` during the next."""

    def __init__(self, after: int, colony: int, delay_s: float):
        self.after, self.colony, self.delay_s = after, colony, delay_s
        self.evo = None
        self.killed = False

    def phase(self, name, total):
        return lambda n: None

    def generation(self, row):
        if row["generation"] == self.after:
            actor = self.evo.colonies[self.colony]
            threading.Timer(self.delay_s, self.kill, (actor,)).start()

    def kill(self, actor):
        ray.kill(actor, no_restart=False)  # Ray restarts it: without its state
        self.killed = True


def test_killed_colony_is_restored_and_rerun(root, tmp_path):
    # each batch takes 0.2 s: the kill, 0.1 s into generation 2, lands inside it
    cfg = config(root, seed=2, max_generations=5, options={"delay_s": 0.2})
    clean, _, _ = ray_run(cfg, tmp_path / "clean")
    killer = KillColony(after=1, colony=1, delay_s=0.1)
    store = RunStore(tmp_path / "killed")
    store.create(cfg)
    evo = RayEvolution(cfg, store, load_seeds(cfg.seeds), killer)
    killer.evo = evo
    try:
        result = evo.run()
    finally:
        evo.close()
    assert killer.killed and evo.recoveries >= 1
    check_store(store, result, 5)
    # nothing lost, nothing twice: the very run the untouched cluster made
    assert summary(result.corpus) == summary(clean.corpus)


def test_resume_under_ray(root, tmp_path):
    cfg = config(root, seed=5, max_generations=4)
    full, _, _ = ray_run(cfg, tmp_path / "full")
    store = RunStore(tmp_path / "run")
    store.create(cfg)
    short = cfg.model_copy(deep=True)
    short.evolution.max_generations = 2  # stops after two generations, as a crash would
    first = RayEvolution(short, store, load_seeds(cfg.seeds))
    try:
        first.run()
    finally:
        first.close()
    result = run_with_ray(cfg, store, load_seeds(cfg.seeds), "local", resume=True)
    assert result.generations == 4
    check_store(store, result, 4)
    assert summary(result.corpus) == summary(full.corpus)


def test_cross_colony_duplicates_are_rejected(root, tmp_path):
    texts = [f"Write a Python function `scale_{k}(x: int) -> int` that returns x "
             f"multiplied by {k} plus 1." for k in (2, 3, 4, 5)]
    cfg = config(root, options={"script": {"mutation": texts, "crossover": texts}})
    result, store, _ = ray_run(cfg, tmp_path / "run")
    cands, _ = check_store(store, result, 3)
    assert len(result.corpus) == 4  # four distinct instructions, one sample each
    assert any(c.reason.startswith("duplicate: same instruction as an accepted one")
               for c in cands if c.reason)


def test_cli_ray_address_local(root, tmp_path, fake_overrides):
    out = tmp_path / "run"
    overrides = fake_overrides + ["evolution.max_generations=2", "execution.workers=1"]
    proc = run_cli("evolve", "--config", str(root / "configs/quickstart.yaml"), "--out",
                   str(out), "--ray-address", "local", *sets(overrides))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dataset:" in proc.stdout
    state = json.loads(max((out / "checkpoints").glob("gen-*.json")).read_text())
    assert len(state["colony_states"]) == 2
    again = run_cli("evolve", "--config", str(root / "configs/quickstart.yaml"), "--out",
                    str(out), "--resume", *sets(overrides + ["evolution.max_generations=3"]))
    assert again.returncode == 2  # a different config
    plain = run_cli("evolve", "--config", str(root / "configs/quickstart.yaml"), "--out",
                    str(out), "--resume", *sets(overrides))
    assert plain.returncode == 2 and "made with --ray-address" in plain.stderr


@pytest.mark.model
def test_embedded_model_under_ray(root, tmp_path):
    from test_quickstart_model import best_executor

    out = tmp_path / "run"
    overrides = ["evolution.colonies=1", "evolution.offspring_per_colony=4",
                 "evolution.max_generations=1", f"execution.executor={best_executor()}"]
    proc = run_cli("evolve", "--config", str(root / "configs/quickstart.yaml"), "--out",
                   str(out), "--ray-address", "local", *sets(overrides), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(x) for x in (out / "candidates.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    assert all(r["status"] in ("accepted", "rejected") for r in rows)


def test_backend_replicas_do_not_change_the_run(root, tmp_path):
    cfg = config(root, seed=4, max_generations=2)
    one, _, _ = ray_run(cfg, tmp_path / "one")
    store = RunStore(tmp_path / "two")
    store.create(cfg)
    evo = RayEvolution(cfg, store, load_seeds(cfg.seeds), replicas=2)
    try:
        two = evo.run()
        assert len(evo.backends) == 2
    finally:
        evo.close()
    assert summary(two.corpus) == summary(one.corpus)
