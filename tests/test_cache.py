"""The response cache: replays what was paid for, sends only what is new."""

from __future__ import annotations

import json
import sqlite3

import pytest

from genetic_instruct.assemble import cache_path, make_backends
from genetic_instruct.config import validate_config
from genetic_instruct.evolution.loop import Evolution
from genetic_instruct.execution.fake import FakeExecutor
from genetic_instruct.fitness.execution import ExecutionFitness
from genetic_instruct.fitness.syntax import SyntaxFitness
from genetic_instruct.llm.base import ChatRequest, Sampling
from genetic_instruct.llm.cache import CachedBackend, ResponseCache
from genetic_instruct.llm.fake import FakeBackend
from genetic_instruct.seeds import load_seeds
from genetic_instruct.store import RunStore


def req(text: str, **sampling) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}],
                       sampling=Sampling(**{"seed": 1, **sampling}), tag="judge")


def request_key(r: ChatRequest) -> str:
    s = r.sampling
    return json.dumps([r.messages, r.prefill, s.seed, s.n, s.temperature, s.max_tokens])


def test_second_call_is_answered_from_the_cache(tmp_path):
    inner = FakeBackend()
    backend = CachedBackend(inner, ResponseCache(tmp_path / "c.sqlite"))
    reqs = [req("a"), req("b", n=3)]
    first = backend.generate(reqs)
    again = backend.generate(reqs)
    assert [c.texts for c in again] == [c.texts for c in first]
    assert [c.cached for c in first] == [False, False]
    assert [c.cached for c in again] == [True, True]
    assert len(inner.calls) == 1
    # token counts survive the round trip
    assert [c.completion_tokens for c in again] == [c.completion_tokens for c in first]
    assert [c.prompt_tokens for c in again] == [c.prompt_tokens for c in first]
    assert backend.stats == {"hits": 2, "misses": 2}


@pytest.mark.parametrize("change", [
    {"seed": 2}, {"temperature": 0.1}, {"max_tokens": 7}, {"stop": ["x"]}, {"n": 2},
])
def test_a_change_in_sampling_is_a_miss(tmp_path, change):
    inner = FakeBackend()
    backend = CachedBackend(inner, ResponseCache(tmp_path / "c.sqlite"))
    backend.generate([req("a")])
    out = backend.generate([req("a", **change)])
    assert not out[0].cached and len(inner.calls) == 2


def test_prefill_and_identity_are_part_of_the_key(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    a = CachedBackend(FakeBackend(model="m1"), cache)
    b = CachedBackend(FakeBackend(model="m2"), cache)
    a.generate([req("a")])
    assert not b.generate([req("a")])[0].cached
    r = req("a")
    r.prefill = "Sure: "
    assert not a.generate([r])[0].cached
    assert a.generate([req("a")])[0].cached


def test_fewer_samples_than_stored_are_replayed(tmp_path):
    inner = FakeBackend()
    backend = CachedBackend(inner, ResponseCache(tmp_path / "c.sqlite"))
    three = backend.generate([req("a", n=3)])[0]
    one = backend.generate([req("a", n=1)])[0]
    assert one.cached and one.texts == three.texts[:1]


def test_answers_before_a_crash_are_kept(tmp_path):
    path = tmp_path / "c.sqlite"
    reqs = [req(f"q{i}") for i in range(6)]
    crashing = CachedBackend(FakeBackend(fail_after=4), ResponseCache(path))
    with pytest.raises(RuntimeError, match="induced failure"):
        crashing.generate(reqs)
    inner = FakeBackend()
    backend = CachedBackend(inner, ResponseCache(path))
    out = backend.generate(reqs)
    assert [c.cached for c in out] == [True] * 4 + [False] * 2
    assert [r.messages[0]["content"] for r in inner.calls[0]] == ["q4", "q5"]


def test_the_cache_is_sqlite_in_wal_mode(tmp_path):
    path = tmp_path / "c.sqlite"
    CachedBackend(FakeBackend(), ResponseCache(path)).generate([req("a", n=2)])
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 2


def config(root, **extra):
    return validate_config({
        "seed": 5,
        "seeds": {"path": str(root / "seeds/python_core.jsonl"), "limit": 12},
        "backends": {"default": {"type": "fake"}},
        "evolution": {"colonies": 2, "offspring_per_colony": 5, "max_generations": 3,
                      "target_size": 1000},
        **extra,
    })


def run_loop(cfg, run_dir, inner, resume=False):
    backends = make_backends(cfg, cache_path(cfg, run_dir))
    for b in backends.values():  # the same instance for every role; swap in our fake
        b.inner = inner
    store = RunStore(run_dir)
    store.open(cfg) if resume else store.create(cfg)
    fitness = [SyntaxFitness(), ExecutionFitness(FakeExecutor())]
    return Evolution(cfg, backends, fitness, load_seeds(cfg.seeds), store).run(resume=resume)


def test_a_crashed_run_resumes_without_paying_twice(root, tmp_path):
    """Crash in the middle of generation 2's answer phase, resume: every call answered
    before the crash is a cache hit and no request reaches the backend twice."""
    cfg = config(root)
    whole = run_loop(cfg, tmp_path / "whole", FakeBackend())
    # generation 0 and 1: 2 phases of 10 + 20 requests each; crash after 7 answers of gen 2
    crashing = FakeBackend(fail_after=30 + 30 + 10 + 7)
    with pytest.raises(RuntimeError, match="induced failure"):
        run_loop(cfg, tmp_path / "run", crashing)
    paid_before = [request_key(r) for batch in crashing.calls for r in batch][:77]
    inner = FakeBackend()
    resumed = run_loop(cfg, tmp_path / "run", inner, resume=True)
    paid_after = [request_key(r) for batch in inner.calls for r in batch]
    assert not set(paid_before) & set(paid_after)
    # generation 2's instruct phase (10) and the first 7 answers came from the cache
    assert resumed.tokens["instructor"]["cached"] == 10
    assert (resumed.tokens["coder"]["cached"] + resumed.tokens["test_writer"]["cached"]) == 7
    # and the resumed run is the run that was never interrupted
    key = lambda r: sorted((c.id, c.solution, tuple(c.tests)) for c in r.corpus)  # noqa: E731
    assert key(resumed) == key(whole)


def test_cache_can_be_turned_off_or_shared(root, tmp_path):
    off = config(root, cache={"enabled": False})
    assert cache_path(off, tmp_path) is None
    shared = config(root, cache={"path": str(tmp_path / "shared.sqlite")})
    assert cache_path(shared, tmp_path / "run") == tmp_path / "shared.sqlite"
    assert cache_path(config(root), tmp_path) == tmp_path / "cache.sqlite"
    # where the cache lives does not change what the run is
    assert off.fingerprint() == shared.fingerprint() == config(root).fingerprint()


def test_roles_get_their_own_backends_and_share_equal_ones(root):
    cfg = config(root, backends={
        "big": {"type": "fake", "model": "big"},
        "big_again": {"type": "fake", "model": "big"},
        "small": {"type": "fake", "model": "small"},
        "unused": {"type": "fake", "model": "judge-model"},
    }, roles={"instructor": {"backend": "big"}, "coder": {"backend": "big_again"},
              "test_writer": {"backend": "small"}, "judge": {"backend": "unused"}})
    backends = make_backends(cfg)
    assert backends["big"] is backends["big_again"]
    assert backends["big"].model_name == "big" and backends["small"].model_name == "small"
    # no fitness function asks for the judge: its backend is not loaded
    assert "unused" not in backends
    cached = make_backends(cfg, cache_path(cfg, "/tmp/unused-run"))
    assert cached["big"] is cached["big_again"] and cached["big"] is not cached["small"]


def test_each_role_is_sent_to_its_backend(root, tmp_path):
    cfg = config(root, backends={"a": {"type": "fake", "model": "a"},
                                 "b": {"type": "fake", "model": "b"}},
                 roles={"instructor": {"backend": "a"}, "coder": {"backend": "b"},
                        "test_writer": {"backend": "b"}})
    a, b = FakeBackend(model="a"), FakeBackend(model="b")
    fitness = [SyntaxFitness(), ExecutionFitness(FakeExecutor())]
    Evolution(cfg, {"a": a, "b": b}, fitness, load_seeds(cfg.seeds)).run()
    assert {r.tag for batch in a.calls for r in batch} <= {"mutation", "crossover"}
    assert {r.tag for batch in b.calls for r in batch} == {"solve", "write_tests"}
