from __future__ import annotations

import pytest

from genetic_instruct.config import validate_config
from genetic_instruct.evolution.loop import Evolution
from genetic_instruct.execution.fake import FakeExecutor, fail_all
from genetic_instruct.fitness.execution import ExecutionFitness
from genetic_instruct.fitness.syntax import SyntaxFitness
from genetic_instruct.individual import ACCEPTED, REJECTED
from genetic_instruct.llm.fake import FakeBackend
from genetic_instruct.seeds import load_seeds
from genetic_instruct.store import RunStore


def make(root, tmp_path=None, seed=0, executor=None, backend=None, **evo):
    cfg = validate_config({
        "seed": seed,
        "seeds": {"path": str(root / "seeds/python_core.jsonl"), "limit": 12},
        "backends": {"default": {"type": "fake"}},
        "evolution": {"colonies": 2, "offspring_per_colony": 5, "max_generations": 3,
                      "target_size": 1000, **evo},
    })
    backend = backend or FakeBackend()
    executor = executor or FakeExecutor()
    fitness = [SyntaxFitness(), ExecutionFitness(executor)]
    store = None
    if tmp_path is not None:
        store = RunStore(tmp_path)
        store.create(cfg)
    evo_ = Evolution(cfg, {"default": backend}, fitness, load_seeds(cfg.seeds), store)
    return evo_, backend, executor


def summary(result):
    return [(c.id, c.instruction, c.solution, tuple(c.tests), c.lineage.operator,
             tuple(c.lineage.parents), c.lineage.heuristic) for c in result.corpus]


def test_same_seed_same_run(root):
    a = make(root, seed=3)[0].run()
    b = make(root, seed=3)[0].run()
    c = make(root, seed=4)[0].run()
    assert summary(a) == summary(b)
    assert summary(a) != summary(c)
    assert len(a.corpus) > 0


def test_one_batch_per_phase_across_colonies(root):
    evo, backend, _ = make(root, max_generations=2)
    evo.run()
    # two phases (instruct, answer) per generation, all colonies in each call
    assert len(backend.calls) == 4
    instruct = backend.calls[0]
    assert len(instruct) == 10 and {r.tag for r in instruct} <= {"mutation", "crossover"}
    answer = backend.calls[1]
    assert {r.tag for r in answer} == {"solve", "write_tests"}


def test_mutation_probability_and_lineage(root):
    evo, _, _ = make(root, offspring_per_colony=50, max_generations=1, colonies=1)
    result = evo.run()
    ops = [row["operators"] for row in result.logbook][0]
    assert 15 <= ops["mutation"]["proposed"] <= 35  # p = 0.5 of 50
    for c in result.corpus:
        if c.lineage.operator == "crossover":
            assert len(c.lineage.parents) == 3
        else:
            assert len(c.lineage.parents) == 1 and c.lineage.heuristic


def test_execution_failures_are_rejected_with_reason(root, tmp_path):
    evo, _, _ = make(root, tmp_path, executor=FakeExecutor(fail_all), max_generations=1)
    result = evo.run()
    assert result.corpus == []
    rejected = list(RunStore(tmp_path).iter_candidates())
    assert rejected and all(c.status == REJECTED for c in rejected)
    assert any(c.reason.startswith("execution: failed") for c in rejected)


def test_unparseable_answers_become_rejections(root):
    backend = FakeBackend(script={"solve": ["I do not know."]})
    evo, _, executor = make(root, backend=backend, max_generations=1)
    result = evo.run()
    assert result.corpus == []
    assert executor.jobs == []  # nothing reached the executor
    assert list(result.logbook[0]["reasons"]) == ["solution: the code does not parse"]


def test_only_unevaluated_individuals_are_evaluated(root):
    evo, _, executor = make(root, max_generations=3)
    result = evo.run()
    ids = [job.id for job in executor.jobs]
    assert len(ids) == len(set(ids))  # nobody is evaluated twice
    assert len(result.corpus) == len(ids)


def test_target_size_stops_the_run(root):
    evo, _, _ = make(root, target_size=4, max_generations=10)
    result = evo.run()
    assert result.generations == 1 and len(result.corpus) >= 4


def test_accepted_join_the_population(root):
    evo, _, _ = make(root, max_generations=2)
    result = evo.run()
    members = {ind.id for col in evo.colonies for ind in col}
    assert {c.id for c in result.corpus} <= members
    assert len(members) == 12 + len(result.corpus)


def test_resume_restores_the_exact_state(root, tmp_path):
    full = make(root, seed=5)[0].run()
    first, _, _ = make(root, tmp_path, seed=5, max_generations=3)
    first.evo.max_generations = 1  # stop after one generation, as a crash would
    first.run()
    first.evo.max_generations = 3
    store = RunStore(tmp_path)
    store.open(first.cfg)
    second = Evolution(first.cfg, {"default": FakeBackend()}, first.fitness, first.seeds, store)
    result = second.run(resume=True)
    assert [c.id for c in result.corpus] == [c.id for c in full.corpus]
    assert summary(result) == summary(full)
    ids = [c.id for c in store.iter_candidates()]
    assert len(ids) == len(set(ids))
    assert all(c.status in (ACCEPTED, REJECTED) for c in store.iter_candidates())


@pytest.mark.parametrize("selection", ["random", "tournament"])
def test_selection_choices_run(root, selection):
    evo, _, _ = make(root, selection=selection, max_generations=1)
    assert evo.run().corpus
