"""The LLM fitness functions: ``judge`` (binary and graded) and ``reward`` (LLM and endpoint)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from genetic_instruct.assemble import make_backends, make_fitness
from genetic_instruct.config import ConfigError, RoleConfig, validate_config
from genetic_instruct.execution.fake import FakeExecutor
from genetic_instruct.fitness.base import evaluate
from genetic_instruct.fitness.execution import ExecutionFitness
from genetic_instruct.fitness.judge import JudgeFitness, parse_grades, parse_verdict
from genetic_instruct.fitness.reward import RewardFitness
from genetic_instruct.fitness.syntax import SyntaxFitness
from genetic_instruct.individual import PENDING, REJECTED, Individual
from genetic_instruct.llm.base import BackendError
from genetic_instruct.llm.fake import FakeBackend


def ind(i: int = 0) -> Individual:
    return Individual(id=f"c{i}", instruction=f"Write a Python function `add_{i}(a: int, b: int) "
                      f"-> int` that returns the sum of a and b.", entry_point=f"add_{i}",
                      solution=f"def add_{i}(a, b):\n    return a + b",
                      tests=[f"assert add_{i}(1, 2) == 3", f"assert add_{i}(0, 0) == 0",
                             f"assert add_{i}(-4, 1) == -3"])


def judge(script=None, **options) -> tuple[JudgeFitness, FakeBackend]:
    backend = FakeBackend(script=script)
    return JudgeFitness(llms={"judge": backend}, **options), backend


def judged(answers: list[str], **options) -> tuple[list[Individual], FakeBackend]:
    """Each candidate through ``evaluate`` with the judge answering ``answers`` in turn."""
    tag = "judge_graded" if options.get("style") == "graded" else "judge"
    fn, backend = judge({tag: answers}, **options)
    pop = [ind(i) for i in range(len(answers))]
    evaluate(pop, [fn])
    return pop, backend


# ---------------------------------------------------------------- binary verdicts

@pytest.mark.parametrize("text, verdict", [
    ("Looks right. \\boxed{Yes}", True),
    ("\\boxed{ yes }", True),
    ("The loop is off by one. \\boxed{NO}", False),
    ("\\boxed{\\text{Yes}}", True),
    ("It answers the task.\n\n**Yes**", True),
    ("It answers the task. **No.**", False),
    ("Reasoning here.\nFinal answer: No", False),
    ("final verdict is yes", True),
    ("Verdict: **yes**.", True),
    ("The code crashes on empty input.\nNo.", False),
    ("At first \\boxed{Yes}, but it mutates the input, so \\boxed{No}", False),
    ("Answer: no ... on reflection the fix is there. Final answer: Yes", True),
    ("Final answer: No, it fails on empty lists.", False),
    ("\\boxed{Yes}\nAnswer: no changes needed.", True),
])
def test_verdicts_are_read_and_the_last_one_wins(text, verdict):
    assert parse_verdict(text) is verdict


@pytest.mark.parametrize("text", [
    "", "   ", "The code looks fine to me.", "yes, though it could be shorter",
    "Yes and no", "\\boxed{maybe}", "I would say the answer is probably fine",
])
def test_no_verdict_is_none(text):
    assert parse_verdict(text) is None


def test_binary_accepts_rejects_and_never_passes_garbage():
    long = "The function adds its two arguments as asked and has no needless parts. " * 20
    pop, backend = judged([long + "\\boxed{Yes}", "It subtracts. \\boxed{No}",
                           "I am not sure what to make of this code at all", ""])
    assert [p.status for p in pop] == [PENDING, REJECTED, REJECTED, REJECTED]
    yes, no, garbage, _ = (p.fitness["judge"] for p in pop)
    assert yes.passed is True and yes.value == 1.0 and yes.detail["verdict"] == "yes"
    assert len(yes.detail["reasoning"]) <= 300
    assert no.value == 0.0 and pop[1].reason == "judge: verdict No (1/1 samples)"
    assert garbage.passed is False and garbage.detail["verdict"] is None
    assert pop[2].reason.startswith("judge: unparseable verdict: ")
    assert "make of this code" in pop[2].reason
    assert pop[3].reason == "judge: unparseable verdict: empty output"
    # the whole batch went to the backend in one call
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 4


def test_the_prompt_shows_the_candidate_and_uses_the_judge_sampling():
    role = RoleConfig(temperature=0.1, top_p=0.9, max_tokens=77, n=5)
    fn, backend = judge(seed=11, role_configs={"judge": role})
    fn.score([ind(0), ind(1)])
    first, second = backend.calls[0]
    prompt = first.messages[-1]["content"]
    assert "add_0(a: int, b: int)" in prompt and "return a + b" in prompt
    assert "assert add_0(1, 2) == 3" in prompt and "\\boxed{Yes}" in prompt
    s = first.sampling
    assert (s.temperature, s.top_p, s.max_tokens, s.n) == (0.1, 0.9, 77, 1)
    assert first.tag == "judge"
    # seeds: stable per (run seed, candidate), different between candidates
    again, backend2 = judge(seed=11, role_configs={"judge": role})
    again.score([ind(0)])
    assert backend2.calls[0][0].sampling.seed == s.seed != second.sampling.seed


@pytest.mark.parametrize("votes, passed, value, agreement", [
    (["Sure. \\boxed{Yes}", "\\boxed{No}", "\\boxed{Yes}"], True, 2 / 3, 0.667),
    (["\\boxed{No}", "garbled", "\\boxed{Yes}"], False, 1 / 3, 0.667),
    (["\\boxed{Yes}", "\\boxed{No}"], False, 0.5, 0.5),  # a tie is not a majority
    (["\\boxed{Yes}"] * 3, True, 1.0, 1.0),
])
def test_samples_take_the_majority(votes, passed, value, agreement):
    fn, backend = judge({"judge": lambda req, k: votes[k]}, samples=len(votes))
    [rec] = fn.score([ind()])
    assert backend.calls[0][0].sampling.n == len(votes)
    assert rec.passed is passed and rec.value == pytest.approx(value)
    assert rec.detail["agreement"] == agreement and len(rec.detail["votes"]) == len(votes)


def test_bad_options_and_a_missing_backend_are_clear():
    with pytest.raises(ValueError, match="style"):
        judge(style="stars")
    with pytest.raises(ValueError, match="samples"):
        judge(samples=0)
    with pytest.raises(ValueError, match="pass_score"):
        judge(style="graded", pass_score=9)
    with pytest.raises(ValueError, match="roles.judge.backend"):
        JudgeFitness(llms={"judge": None})


# ---------------------------------------------------------------- graded

@pytest.mark.parametrize("text, scores", [
    ("ok\nconformance: 4\ncorrectness: 5\nedge_cases: 3",
     {"conformance": 4, "correctness": 5, "edge_cases": 3}),
    ("**Requirement conformance**: 4/5\n- Logical correctness = 5\nEdge-case handling: 2",
     {"conformance": 4, "correctness": 5, "edge_cases": 2}),
    (("CONFORMANCE: 1\nCorrectness: 1\nEdge cases: 1\n\nOn a second look:\n"
      "conformance: 5\ncorrectness: 5\nedge_cases: 5"),
     {"conformance": 5, "correctness": 5, "edge_cases": 5}),
])
def test_grades_are_read(text, scores):
    assert parse_grades(text) == scores


@pytest.mark.parametrize("text", [
    "conformance: 4\ncorrectness: 5",  # one missing
    "conformance: 4\ncorrectness: 7\nedge_cases: 3",  # out of range
    "conformance: good\ncorrectness: fine\nedge_cases: ok",
    "",
])
def test_bad_grades_are_none(text):
    assert parse_grades(text) is None


def test_graded_value_threshold_and_rejection():
    pop, backend = judged(["conformance: 5\ncorrectness: 4\nedge_cases: 3",
                           "conformance: 5\ncorrectness: 4\nedge_cases: 2",
                           "The code is fine, I give it a five."], style="graded")
    good, low, garbage = (p.fitness["judge"] for p in pop)
    assert backend.calls[0][0].tag == "judge_graded" and len(backend.calls) == 1
    assert good.passed is True and good.value == pytest.approx((4 + 3 + 2) / 12)
    assert good.detail["scores"] == {"conformance": 5, "correctness": 4, "edge_cases": 3}
    assert low.passed is False and pop[1].reason == "judge: scores below 3: edge_cases 2"
    assert garbage.passed is False and garbage.value == 0.0
    assert pop[2].reason.startswith("judge: unparseable verdict: ")
    # a stricter threshold
    [strict], _ = judged(["conformance: 5\ncorrectness: 4\nedge_cases: 3"], style="graded",
                         pass_score=4)
    assert strict.status == REJECTED and strict.reason.endswith("edge_cases 3")


def test_graded_samples_are_averaged():
    answers = ["conformance: 5\ncorrectness: 4\nedge_cases: 2",
               "conformance: 5\ncorrectness: 4\nedge_cases: 4",
               "no scores in this one"]
    fn, _ = judge({"judge_graded": lambda req, k: answers[k]}, style="graded", samples=3)
    [rec] = fn.score([ind()])
    assert rec.detail["scores"] == {"conformance": 5, "correctness": 4, "edge_cases": 3}
    assert rec.passed is True and rec.detail["parsed"] == "2/3"
    assert rec.detail["agreement"] == pytest.approx(0.333)


# ---------------------------------------------------------------- reward (LLM)

def reward(script=None, **options) -> tuple[RewardFitness, FakeBackend]:
    backend = FakeBackend(script=script)
    return RewardFitness(llms={"judge": backend}, **options), backend


def scores_text(h, cr, co, cx, v, sep="\n"):
    return sep.join([f"helpfulness: {h}", f"correctness: {cr}", f"coherence: {co}",
                     f"complexity: {cx}", f"verbosity: {v}"])


def test_reward_from_the_llm_weights_and_normalisation():
    fn, backend = reward({"reward": [scores_text(4, 4, 4, 4, 0), scores_text(2, 2, 2, 2, 2),
                                     scores_text(0, 0, 0, 0, 4),
                                     ("**Helpfulness**: 3.5, Correctness = 9, coherence: 4, "
                                      "complexity: 1, verbosity: -1")]})
    best, mid, worst, messy = fn.score([ind(i) for i in range(4)])
    assert len(backend.calls) == 1 and backend.calls[0][0].tag == "reward"
    assert "return a + b" in backend.calls[0][0].messages[-1]["content"]
    assert best.value == 1.0 and worst.value == 0.0 and best.passed is None
    # defaults 1, 1, .5, .25, -.25 on the 0-4 scale: lowest -1, highest 11
    assert mid.value == pytest.approx((2 * 2.5 + 1) / 12)
    # scores kept as given, clipped only for the value
    assert messy.detail["scores"]["correctness"] == 9 and messy.detail["scores"]["verbosity"] == -1
    assert messy.value == pytest.approx((3.5 + 4 + 2 + 0.25 + 1) / 12)

    custom, _ = reward({"reward": [scores_text(4, 1, 4, 4, 4)]},
                       weights={"correctness": 1.0})
    assert custom.score([ind()])[0].value == pytest.approx(0.25)
    with pytest.raises(ValueError, match="unknown attribute 'style'"):
        reward(weights={"style": 1})
    with pytest.raises(ValueError, match="non-zero"):
        reward(weights={"helpfulness": 0})


def test_unparseable_reward_is_zero_and_fails_only_as_a_gate():
    fn, _ = reward({"reward": ["helpfulness: 3\ncorrectness: 3", "I like it."]})
    partial, none = fn.score([ind(0), ind(1)])
    assert partial.value == 0.0 and partial.passed is None
    assert partial.detail["reason"].startswith("unparseable scores (missing coherence")
    assert none.detail["reason"] == "unparseable scores: I like it."
    # zero-weight attributes need not be there
    only, _ = reward({"reward": ["helpfulness: 3\ncorrectness: 3"]},
                     weights={"helpfulness": 1, "correctness": 1})
    assert only.score([ind()])[0].value == pytest.approx(0.75)

    gate, _ = reward({"reward": [scores_text(3, 3, 3, 3, 3), "no numbers"]})
    gate.gate = True
    pop = [ind(0), ind(1)]
    evaluate(pop, [gate])
    assert pop[0].status == PENDING and pop[0].fitness["reward"].passed is True
    assert pop[1].status == REJECTED and pop[1].reason == "reward: unparseable scores: no numbers"


def test_reward_llm_needs_a_backend_and_refuses_endpoint_options():
    with pytest.raises(ValueError, match="roles.judge.backend"):
        RewardFitness(llms={})
    with pytest.raises(ValueError, match="base_url"):
        reward(base_url="http://localhost:1/v1")
    with pytest.raises(ValueError, match="source"):
        reward(source="oracle")


def test_fake_backend_defaults_parse():
    fn, _ = reward()
    [rec] = fn.score([ind()])
    assert set(rec.detail["scores"]) == {"helpfulness", "correctness", "coherence",
                                         "complexity", "verbosity"} and rec.value > 0
    graded, _ = judge(style="graded")
    binary, _ = judge()
    assert graded.score([ind()])[0].passed and binary.score([ind()])[0].passed


# ---------------------------------------------------------------- reward (endpoint)

class RewardServer:
    """A stdlib HTTP server; ``answers`` is a list of (status, body) served in turn
    (the last one repeats)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.seen: list[tuple[str, dict, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.seen.append((self.path, dict(self.headers), body))
                status, answer = outer.answers[min(len(outer.seen), len(outer.answers)) - 1]
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    made = []

    def start(*answers):
        made.append(RewardServer(answers))
        return made[-1]

    yield start
    for s in made:
        s.close()


SCORES = {"helpfulness": 3.9, "correctness": 3.6, "coherence": 3.8, "complexity": 1.2,
          "verbosity": 1.0}


def logprobs_body(scores):
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": ""},
                         "logprobs": {"content": [{"token": k, "logprob": v, "bytes": None,
                                                   "top_logprobs": []}
                                                  for k, v in scores.items()]}}]}


def content_body(scores):
    text = ",".join(f"{k}:{v}" for k, v in scores.items())
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None}]}


def endpoint(url, **options):
    return RewardFitness(source="endpoint", base_url=url, model="nvidia/reward-test",
                         **options)


@pytest.mark.parametrize("make_body", [logprobs_body, content_body])
def test_endpoint_reads_both_response_formats(server, make_body, monkeypatch):
    monkeypatch.setenv("TEST_REWARD_KEY", "nvapi-secret")
    srv = server((200, make_body(SCORES)))
    fn = endpoint(srv.url, api_key_env="TEST_REWARD_KEY")
    recs = fn.score([ind(0), ind(1)])
    assert [r.detail["scores"] for r in recs] == [SCORES, SCORES]
    expected = (3.9 + 3.6 + 0.5 * 3.8 + 0.25 * 1.2 - 0.25 * 1.0 + 1) / 12
    assert recs[0].value == pytest.approx(expected) and recs[0].passed is None
    path, headers, body = srv.seen[0]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer nvapi-secret"
    assert body["model"] == "nvidia/reward-test"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
    assert {b["messages"][0]["content"] for _, _, b in srv.seen} == {ind(0).instruction,
                                                                     ind(1).instruction}
    assert "return a + b" in body["messages"][1]["content"]


def test_endpoint_server_errors_are_retried_then_recorded(server):
    srv = server((500, {"error": "model crashed"}))
    fn = endpoint(srv.url, max_retries=1)
    fn.endpoint.backoff_s = 0.0
    [rec] = fn.score([ind()])
    assert len(srv.seen) == 2  # one retry
    assert rec.value == 0.0 and rec.passed is None
    assert rec.detail["reason"].startswith("reward endpoint: HTTP 500: ")
    assert "model crashed" in rec.detail["reason"]
    # made a gate, the failure rejects
    fn.gate = True
    pop = [ind()]
    evaluate(pop, [fn])
    assert pop[0].status == REJECTED and "HTTP 500" in pop[0].reason
    # a retry that succeeds is fine
    flaky = server((503, b"busy"), (200, logprobs_body(SCORES)))
    fn = endpoint(flaky.url)
    fn.endpoint.backoff_s = 0.0
    assert fn.score([ind()])[0].detail["scores"] == SCORES


def test_endpoint_config_errors_raise(server):
    srv = server((401, {"error": "bad key"}))
    with pytest.raises(BackendError, match="HTTP 401"):
        endpoint(srv.url).score([ind()])
    assert len(srv.seen) == 1  # not retried
    odd = server((200, {"choices": [{"message": {"content": "I cannot score this."}}]}))
    [rec] = endpoint(odd.url).score([ind()])
    assert rec.value == 0.0 and rec.detail["reason"].startswith("unparseable scores: ")


def test_endpoint_api_key_must_be_a_variable_name(monkeypatch):
    for literal in ("nvapi-AbC123xyz", "sk-proj-123", "hf_abcdef0123"):
        with pytest.raises(ValueError, match="NAME of an environment variable"):
            endpoint("http://127.0.0.1:9/v1", api_key_env=literal)
    monkeypatch.delenv("TEST_REWARD_UNSET", raising=False)
    with pytest.raises(ValueError, match="TEST_REWARD_UNSET is not set"):
        endpoint("http://127.0.0.1:9/v1", api_key_env="TEST_REWARD_UNSET")
    with pytest.raises(ValueError, match="base_url"):
        RewardFitness(source="endpoint", model="m")


# ---------------------------------------------------------------- from a config

def run_config(functions, **extra):
    return validate_config({"seed": 3, "backends": {"default": {"type": "fake"}},
                            "roles": {"judge": {"temperature": 0.0, "max_tokens": 99}},
                            "fitness": {"functions": functions}, **extra})


def test_built_from_a_config():
    cfg = run_config(["syntax", "execution", {"name": "judge", "options": {"style": "graded"}},
                      {"name": "reward", "options": {"weights": {"correctness": 1}}}])
    backends = make_backends(cfg)
    fns = make_fitness(cfg, FakeExecutor(), backends)
    syntax, execution, jf, rf = fns
    assert isinstance(syntax, SyntaxFitness) and isinstance(execution, ExecutionFitness)
    assert isinstance(jf, JudgeFitness) and jf.style == "graded" and jf.gate
    assert jf.backend is backends["default"] and jf.seed == 3
    assert isinstance(rf, RewardFitness) and not rf.gate and rf.weights["helpfulness"] == 0
    pop = [ind(0), ind(1)]
    evaluate(pop, fns)
    for p in pop:
        assert p.status == PENDING and set(p.fitness) == {"syntax", "execution", "judge",
                                                          "reward"}
    sent = backends["default"].calls[0][0]
    assert (sent.sampling.temperature, sent.sampling.max_tokens) == (0.0, 99)


def test_config_errors_name_the_option():
    cfg = run_config([{"name": "judge", "options": {"stlye": "graded"}}])
    with pytest.raises(ConfigError, match="did you mean 'style'"):
        make_fitness(cfg, None, make_backends(cfg))
    cfg = run_config([{"name": "judge", "options": {"style": "stars"}}])
    with pytest.raises(ConfigError, match="fitness.functions.judge: style"):
        make_fitness(cfg, None, make_backends(cfg))
    cfg = run_config(["judge"])
    with pytest.raises(ConfigError, match="roles.judge.backend"):
        make_fitness(cfg, None, {})
    cfg = run_config([{"name": "reward", "options": {"source": "endpoint",
                                                     "base_url": "http://127.0.0.1:9/v1",
                                                     "model": "m",
                                                     "api_key_env": "nvapi-123"}}])
    with pytest.raises(ConfigError, match="never the key itself"):
        make_fitness(cfg, None, make_backends(cfg))
