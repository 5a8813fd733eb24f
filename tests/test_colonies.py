"""The Ray path's logic without Ray: the driver's merge steps, and a colony actor's state
after the driver's changes equal to the state restored from the store."""

from __future__ import annotations

import pytest

from genetic_instruct.config import validate_config
from genetic_instruct.distributed.colony import ColonyActor, ColonyLost, colony_seed
from genetic_instruct.distributed.driver import gpus_for, replicas_for
from genetic_instruct.distributed.merge import (
    adjust_state,
    dedup,
    migrate,
    seen_entries,
)
from genetic_instruct.evolution.loop import normalize
from genetic_instruct.execution.fake import FakeExecutor
from genetic_instruct.individual import ACCEPTED, REJECTED, Individual, Lineage
from genetic_instruct.llm.fake import FakeBackend
from genetic_instruct.seeds import load_seeds


def ind(i, text, colony):
    return Individual(id=i, instruction=text, status=ACCEPTED, lineage=Lineage(colony=colony))


def test_dedup_migrate_adjust():
    cols = [[ind("a", "Sum two numbers.", 0), ind("b", "Reverse a list", 0)],
            [ind("c", "sum two NUMBERS", 1), ind("d", "Sort a list", 1)]]
    keys: dict[str, str] = {}
    dropped = dedup(cols, keys)
    assert dropped == [[], ["c"]] and cols[1][0].status == REJECTED
    assert cols[1][0].reason == "duplicate: same instruction as an accepted one (a)"
    leave, arrive = migrate(cols, 5, seed=0, generation=0)
    assert sorted(leave[0]) == ["a", "b"] and leave[1] == ["d"]  # "c" is no longer accepted
    assert [i.id for i in arrive[1]] == leave[0] and [i.id for i in arrive[0]] == ["d"]
    assert migrate(cols, 5, seed=0, generation=0) == (leave, arrive)  # seeded
    state = {"colonies": [["s1", "c", "d"]], "rng": None}
    assert adjust_state(state, dropped[1], leave[1], arrive[1])["colonies"] == \
        [["s1"] + leave[0]]
    assert migrate(cols[:1], 5, seed=0, generation=0) == ([[]], [[]])
    assert [k for k, _ in seen_entries(cols[1])] == ["sort a list"]  # the duplicate is out


def test_placement_arithmetic():
    cuda = validate_config({"backends": {"default": {"type": "transformers", "device": "cuda"}}})
    vllm = validate_config({"backends": {"default": {
        "type": "vllm", "options": {"tensor_parallel_size": 4}}}})
    fake = validate_config({"backends": {"default": {"type": "fake"}}})
    assert gpus_for(cuda.backends["default"], 0) == 1
    assert gpus_for(vllm.backends["default"], 8) == 4
    assert gpus_for(vllm.backends["default"], 0) == 0  # auto without GPUs: none asked
    assert gpus_for(fake.backends["default"], 8) == 0
    assert replicas_for([4.0], 8, colonies=16) == 2
    assert replicas_for([1.0, 1.0], 8, colonies=3) == 3
    assert replicas_for([0.0], 8, colonies=4) == 1
    assert colony_seed(7, 0) == 7 and colony_seed(7, 1) != colony_seed(7, 2)


@pytest.fixture
def cfg(root):
    return validate_config({
        "seed": 6,
        "seeds": {"path": str(root / "seeds/python_core.jsonl"), "limit": 12},
        "backends": {"default": {"type": "fake"}},
        "evolution": {"colonies": 2, "offspring_per_colony": 6},
    })


def parts(seeds, c, n=2):
    share = seeds[c::n]
    mine = {s.id for s in share}
    texts = [f"Write a Python function `scale_{k}(x: int) -> int` that returns x "
             f"multiplied by {k} plus 1." for k in (2, 3, 4)]
    def pick(req, k):  # stateless, so a restored colony's backend answers alike
        return texts[len(req.messages[-1]["content"]) % len(texts)]

    backend = FakeBackend(script={"mutation": pick, "crossover": pick})
    return {"seeds": share, "seen": [(normalize(s.instruction), s.id) for s in seeds
                                     if s.id not in mine],
            "backends": {"default": backend}, "executor": FakeExecutor()}


def test_live_colony_equals_a_restored_one(cfg):
    """What the driver tells a live colony leaves it as a restore from the store would."""
    seeds = load_seeds(cfg.seeds)
    live = [ColonyActor(cfg, c) for c in range(2)]
    with pytest.raises(ColonyLost):
        live[0].step(0)
    for c, actor in enumerate(live):
        actor.reset(parts(seeds, c), None, None)
    results = [actor.step(0) for actor in live]
    colonies = [[Individual.from_dict(d) for d in r[0]] for r in results]
    assert {c.lineage.colony for c in colonies[1]} == {1}
    keys = {normalize(s.instruction): s.id for s in seeds}
    dropped = dedup(colonies, keys)
    assert dropped[1], "the scripted backend makes colony 1 repeat colony 0"
    leave, arrive = migrate(colonies, 2, cfg.seed, 0)
    states = [dict(adjust_state(r[1], dropped[c], leave[c], arrive[c]), generation=0)
              for c, r in enumerate(results)]
    flat = [c for col in colonies for c in col]  # the store, in order
    seen = seen_entries(flat)
    for c, actor in enumerate(live):
        actor.apply({"drop": dropped[c], "leave": leave[c],
                     "arrive": [a.to_dict() for a in arrive[c]]}, seen)
    for c, actor in enumerate(live):
        restored = ColonyActor(cfg, c)
        assert restored.reset(parts(seeds, c), states[c], [x.to_dict() for x in flat]) == 1
        assert restored.evo.seen == actor.evo.seen
        assert ([i.id for i in restored.evo.colonies[0]]
                == [i.id for i in actor.evo.colonies[0]] == states[c]["colonies"][0])
        assert restored.evo.rng.getstate() == actor.evo.rng.getstate()
        # and the next generation is the same one
        assert restored.step(1)[0] == actor.step(1)[0]


def test_without_ray_one_line_saying_how(cfg, monkeypatch, tmp_path):
    import sys

    from genetic_instruct.distributed import RayUnavailable, run_with_ray
    from genetic_instruct.store import RunStore

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(RayUnavailable, match=r"^Ray is not installed: pip install -e '\.\[ray\]'$"):
        run_with_ray(cfg, RunStore(tmp_path / "run"), [], "local")
    assert not (tmp_path / "run").exists()
