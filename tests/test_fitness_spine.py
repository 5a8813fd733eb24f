"""Fitness specs (weights, gates, floors), NSGA-II selection and the operator bandit."""

from __future__ import annotations

import random

import pytest

from genetic_instruct.assemble import check_names, make_fitness
from genetic_instruct.config import ConfigError, validate_config
from genetic_instruct.evolution.adaptive import OperatorBandit, arms_for
from genetic_instruct.evolution.loop import Evolution
from genetic_instruct.evolution.selection import nsga2_order, select_nsga2
from genetic_instruct.execution.base import FAILED, PASSED, ExecResult
from genetic_instruct.execution.fake import FakeExecutor
from genetic_instruct.export import sft_row
from genetic_instruct.fitness.base import combine, evaluate
from genetic_instruct.individual import REJECTED, FitnessRecord, Individual
from genetic_instruct.llm.fake import FakeBackend
from genetic_instruct.registry import fitness_functions
from genetic_instruct.seeds import load_seeds
from genetic_instruct.store import RunStore


class Scored:
    """A test function: value by rule, optionally a gate."""

    name = "scored"
    gate = False

    def __init__(self, rule, name="scored", gate=False):
        self.rule, self.name, self.gate = rule, name, gate

    def score(self, individuals):
        return [FitnessRecord(self.name, self.rule(ind), passed=None) for ind in individuals]


def ind(i, **values):
    out = Individual(id=f"i{i}", instruction=f"task {i}")
    for name, v in values.items():
        out.fitness[name] = FitnessRecord(name, v)
    return out


def config(root, fitness=None, **evo):
    data = {
        "seed": 2,
        "seeds": {"path": str(root / "seeds/python_core.jsonl"), "limit": 12},
        "backends": {"default": {"type": "fake"}},
        "evolution": {"colonies": 2, "offspring_per_colony": 8, "max_generations": 3,
                      "target_size": 1000, **evo},
    }
    if fitness is not None:
        data["fitness"] = {"functions": fitness}
    return validate_config(data)


def test_specs_accept_names_and_mappings():
    cfg = validate_config({"fitness": {"functions": [
        "syntax", {"name": "execution", "gate": True, "weight": 2, "min_value": 0.5}]}})
    assert cfg.fitness.names() == ["syntax", "execution"]
    spec = cfg.fitness.spec("execution")
    assert (spec.weight, spec.gate, spec.min_value) == (2.0, True, 0.5)


@pytest.mark.parametrize("functions, message", [
    (["syntax", "syntax"], "listed twice"),
    ([{"name": "judge", "weight": -1}], "weight"),
    ([{"name": "judge", "min_value": 2}], "min_value"),
    ([{"name": "judge", "colour": 1}], "colour"),
])
def test_bad_specs_are_config_errors(functions, message):
    with pytest.raises(ConfigError, match=message):
        validate_config({"fitness": {"functions": functions}})


def test_unknown_option_is_named_before_anything_loads():
    cfg = validate_config({"fitness": {"functions": [
        "syntax", {"name": "execution", "options": {"timeout": 3}}]}})
    with pytest.raises(ConfigError, match=r"execution\.options\.timeout: not an option"):
        check_names(cfg)


def test_spec_overrides_gate_and_sets_a_floor(root):
    cfg = config(root, [{"name": "execution", "gate": False},
                        {"name": "syntax", "min_value": 0.5}])
    fns = make_fitness(cfg, FakeExecutor())
    assert [f.name for f in fns] == ["execution", "syntax"]
    assert fns[0].gate is False and fns[1].min_value == 0.5


def test_gate_floor_and_plain_score():
    a, b, c = ind(1), ind(2), ind(3)
    gate = Scored(lambda i: 0.0 if i.id == "i1" else 1.0, "g", gate=True)
    gate_rec = gate.score
    gate.score = lambda inds: [FitnessRecord("g", r.value, passed=r.value > 0)
                               for r in gate_rec(inds)]
    floor = Scored(lambda i: 0.2 if i.id == "i2" else 0.9, "f")
    floor.min_value = 0.5
    plain = Scored(lambda i: 0.1, "p")
    evaluate([a, b, c], [gate, floor, plain])
    assert a.status == REJECTED and a.reason.startswith("g:")
    assert "f" not in a.fitness  # later functions do not see a rejected candidate
    assert b.status == REJECTED and b.reason == "f: value 0.20 below 0.50"
    assert c.status != REJECTED and c.fitness["p"].value == 0.1


def test_values_are_clipped_and_counts_checked():
    x = ind(1)
    evaluate([x], [Scored(lambda i: 7.0)])
    assert x.fitness["scored"].value == 1.0
    broken = Scored(lambda i: 0.5)
    broken.score = lambda inds: []
    with pytest.raises(RuntimeError, match="returned 0 records for 1"):
        evaluate([ind(2)], [broken])


def test_combined_value_is_the_weighted_mean():
    x = ind(1, a=1.0, b=0.0)
    assert combine(x, {"a": 3, "b": 1}) == 0.75
    assert combine(x, {"a": 1, "missing": 5}) == 1.0
    assert combine(ind(2), {"a": 1}) is None


def test_the_loop_sets_values_and_export_carries_every_detail(root):
    cfg = config(root, ["syntax", "execution"], max_generations=1)
    fns = make_fitness(cfg, FakeExecutor())
    result = Evolution(cfg, {"default": FakeBackend()}, fns, load_seeds(cfg.seeds)).run()
    assert result.corpus and all(c.value == 1.0 for c in result.corpus)
    row = sft_row(result.corpus[0])
    assert set(row["fitness"]) == set(row["fitness_detail"]) == {"syntax", "execution"}
    assert row["fitness_detail"]["execution"]["tests_total"] == 3
    assert row["score"] == 1.0


def test_nsga2_order_fronts_and_crowding():
    pop = [ind(0, a=1.0, b=0.0), ind(1, a=0.0, b=1.0), ind(2, a=0.5, b=0.5),
           ind(3, a=0.2, b=0.2), ind(4, a=0.1, b=0.1)]
    rank, crowd = nsga2_order(pop, ["a", "b"])
    assert rank == [0, 0, 0, 1, 2]
    assert crowd[0] == crowd[1] == float("inf") and crowd[2] < crowd[0]


def test_nsga2_selection_prefers_the_front():
    pop = [ind(i, a=i / 20, b=1 - i / 20) for i in range(10)]  # one front
    pop += [ind(10 + i, a=0.0, b=0.0) for i in range(10)]       # dominated by all
    rng = random.Random(0)
    picks = [p.id for _ in range(200) for p in select_nsga2(pop, 1, rng, ["a", "b"], size=2)]
    front = sum(int(p[1:]) < 10 for p in picks)
    assert front > 140  # a dominated one wins only against another dominated one


def test_bandits_shift_toward_the_rewarding_arm():
    for method in ("ucb1", "thompson"):
        rng = random.Random(1)
        bandit = OperatorBandit(arms_for(["a", "b"]), method, rng)
        for _ in range(300):
            arm = bandit.choose()
            bandit.update(arm, 1.0 if arm == "mutation:b" and rng.random() < 0.6 else 0.0)
        assert max(bandit.pulls, key=bandit.pulls.get) == "mutation:b", method
        assert bandit.rates()["mutation:b"] > 0.4
        again = OperatorBandit(arms_for(["a", "b"]), method, random.Random(1))
        again.restore(bandit.state())
        assert again.pulls == bandit.pulls and again.wins == bandit.wins
    with pytest.raises(ValueError, match="unknown bandit"):
        OperatorBandit(["x"], "greedy", random.Random())


def run_adaptive(root, tmp_path, adaptive, generations=6):
    cfg = config(root, ["syntax", "execution"], adaptive=adaptive, colonies=1,
                 offspring_per_colony=20, max_generations=generations)
    winners: set[str] = set()
    executor = FakeExecutor(lambda job: ExecResult(
        job.id, PASSED if job.id in winners else FAILED, 3, 3))
    evo = Evolution(cfg, {"default": FakeBackend()}, make_fitness(cfg, executor),
                    load_seeds(cfg.seeds), RunStore(tmp_path))
    evo.store.create(cfg)
    original = evo.answer

    def answer(children):  # only children of the "complexity" heuristic can pass
        winners.update(c.id for c in children if c.lineage.heuristic == "complexity")
        original(children)
    evo.answer = answer
    return evo.run()


def test_the_bandit_moves_the_mix_and_the_logbook_records_it(root, tmp_path):
    on = run_adaptive(root, tmp_path / "on", "thompson")
    off = run_adaptive(root, tmp_path / "off", "off")
    share = lambda result, gen: (  # noqa: E731
        result.logbook[gen]["mix"].get("mutation:complexity", {}).get("proposed", 0)
        / result.logbook[gen]["proposed"])
    assert all("mix" in row and row["adaptive"] in ("thompson", "off") for row in on.logbook)
    assert share(on, 5) > 0.5 > share(off, 5)
    assert len(on.corpus) > len(off.corpus)


def test_a_resumed_adaptive_run_is_the_same_run(root, tmp_path):
    whole = run_adaptive(root, tmp_path / "whole", "ucb1", generations=4)
    first = run_adaptive(root, tmp_path / "part", "ucb1", generations=2)
    assert first.generations == 2
    cfg = config(root, ["syntax", "execution"], adaptive="ucb1", colonies=1,
                 offspring_per_colony=20, max_generations=4)
    store = RunStore(tmp_path / "part")
    state = store.latest_checkpoint()
    assert state["bandit"]["pulls"]
    winners: set[str] = set()
    executor = FakeExecutor(lambda job: ExecResult(
        job.id, PASSED if job.id in winners else FAILED, 3, 3))
    evo = Evolution(cfg, {"default": FakeBackend()}, make_fitness(cfg, executor),
                    load_seeds(cfg.seeds), store)
    original = evo.answer

    def answer(children):
        winners.update(c.id for c in children if c.lineage.heuristic == "complexity")
        original(children)
    evo.answer = answer
    resumed = evo.run(resume=True)
    assert sorted(c.id for c in resumed.corpus) == sorted(c.id for c in whole.corpus)


def test_builtin_functions_are_registered():
    assert {"syntax", "execution", "judge", "reward", "difficulty", "novelty"} <= set(
        fitness_functions.names())


def test_adaptive_off_survives_yaml():
    from genetic_instruct.config import load_config

    assert load_config(None, ["evolution.adaptive=off"]).evolution.adaptive == "off"
    with pytest.raises(ConfigError, match="adaptive"):
        load_config(None, ["evolution.adaptive=on"])


def test_fitness_llm_calls_are_counted_per_role(root):
    from genetic_instruct.assemble import make_backends, roles_in_use
    from genetic_instruct.llm.meter import token_counts

    cfg = config(root, ["syntax", "execution", "judge"], max_generations=1)
    assert "judge" in roles_in_use(cfg)
    tokens = token_counts()
    backends = make_backends(cfg)
    fns = make_fitness(cfg, FakeExecutor(), backends, tokens)
    result = Evolution(cfg, backends, fns, load_seeds(cfg.seeds), tokens=tokens).run()
    judged = sum("judge" in c.fitness for c in result.corpus)
    assert judged and tokens["judge"]["calls"] == judged and tokens["judge"]["out"] > 0
    assert result.tokens["judge"] == tokens["judge"] and tokens["instructor"]["calls"] == 16


def test_a_reward_endpoint_loads_no_judge_model(root):
    from genetic_instruct.assemble import roles_in_use

    endpoint = config(root, ["syntax", {"name": "reward", "options": {
        "source": "endpoint", "base_url": "http://127.0.0.1:9/v1", "model": "rm"}}])
    assert "judge" not in roles_in_use(endpoint)
    assert "judge" in roles_in_use(config(root, ["syntax", "reward"]))
