"""``reward``: the five HelpSteer attributes of a solution, combined into one value.

The attributes (each on a 0-4 scale): helpfulness, correctness, coherence, complexity,
verbosity. Options:

- ``source``: ``llm`` (default): the judge role's backend rates them with the
  ``prompts/reward.j2`` prompt (lines ``helpfulness: 3``); ``endpoint``: a reward model
  behind an OpenAI-compatible API (NVIDIA's Nemotron reward NIMs), see reward_endpoint.py.
- ``weights``: ``{attribute: weight}``; it replaces the defaults (a left-out attribute
  weighs 0). Defaults, our own choice: helpfulness 1, correctness 1, coherence 0.5,
  complexity 0.25, verbosity -0.25 (a little credit for depth, a little penalty for
  padding). value = (sum of weight * score - lowest) / (highest - lowest), the scores
  clipped to [0, 4] and lowest/highest the sums reachable on that scale, so it lies in
  [0, 1].
- endpoint only: ``base_url`` (with ``/v1``), ``model``, ``api_key_env`` (the NAME of the
  variable holding the key; a literal key is refused), ``request_timeout_s`` (default 60;
  ``timeout_s`` is taken by the sandbox timeout every function is offered),
  ``concurrency`` (requests in flight, default 4), ``max_retries`` (default 2).

Not a gate by default (``passed`` None). A candidate whose scores cannot be read (or whose
request failed) gets value 0 and ``detail["reason"]``; made a gate, it fails.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from ..config import RoleConfig
from ..evolution.operators import render
from ..individual import FitnessRecord, Individual
from ..llm.base import Backend
from .prompting import find_scores, need_backend, request, seed_for, tail
from .reward_endpoint import RewardEndpoint, api_key_from_env, read_scores

ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
DEFAULT_WEIGHTS = {"helpfulness": 1.0, "correctness": 1.0, "coherence": 0.5,
                   "complexity": 0.25, "verbosity": -0.25}
TOP = 4.0


def check_weights(weights: dict | None) -> dict[str, float]:
    if weights is None:
        return dict(DEFAULT_WEIGHTS)
    if not isinstance(weights, dict):
        raise TypeError(f"weights must map attributes to numbers (got {weights!r})")
    out = {a: 0.0 for a in ATTRIBUTES}
    for key, w in weights.items():
        if key not in ATTRIBUTES:
            raise ValueError(f"weights: unknown attribute {key!r}; known: "
                             f"{', '.join(ATTRIBUTES)}")
        if isinstance(w, bool) or not isinstance(w, (int, float)):
            raise TypeError(f"weights.{key} must be a number (got {w!r})")
        out[key] = float(w)
    if not any(out.values()):
        raise ValueError("weights: at least one attribute needs a non-zero weight")
    return out


def combine_attributes(scores: dict[str, float], weights: dict[str, float]) -> float:
    """The weighted sum of the clipped scores, mapped onto [0, 1]."""
    high = sum(TOP * w for w in weights.values() if w > 0)
    low = sum(TOP * w for w in weights.values() if w < 0)
    total = sum(w * min(TOP, max(0.0, scores[a])) for a, w in weights.items() if w)
    return (total - low) / (high - low)


class RewardFitness:
    """HelpSteer-style reward (see the module docstring)."""

    name = "reward"
    gate = False
    roles = ("judge",)

    @classmethod
    def roles_for(cls, options: dict) -> tuple[str, ...]:
        """An endpoint needs no LLM role (so no judge model is loaded for it)."""
        return () if options.get("source") == "endpoint" else cls.roles

    def __init__(self, llms: dict[str, Backend | None] | None = None,
                 role_configs: dict[str, RoleConfig] | None = None, seed: int = 0,
                 source: str = "llm", weights: dict | None = None,
                 base_url: str | None = None, model: str | None = None,
                 api_key_env: str | None = None, request_timeout_s: float = 60.0,
                 concurrency: int = 4, max_retries: int = 2):
        self.weights = check_weights(weights)
        self.seed = seed
        self.source = source
        self.concurrency = max(1, int(concurrency))
        if source == "llm":
            given = [k for k, v in (("base_url", base_url), ("model", model),
                                    ("api_key_env", api_key_env)) if v is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: options of source 'endpoint', "
                                 f"not of source 'llm'")
            self.backend = need_backend(llms, "judge", self.name)
            self.role = (role_configs or {}).get("judge")
        elif source == "endpoint":
            if not base_url or not model:
                raise ValueError("source 'endpoint' needs base_url (e.g. "
                                 "https://integrate.api.nvidia.com/v1) and model")
            self.endpoint = RewardEndpoint(base_url, model, api_key_from_env(api_key_env),
                                           timeout_s=request_timeout_s,
                                           max_retries=max_retries)
        else:
            raise ValueError(f"source must be 'llm' or 'endpoint' (got {source!r})")

    def score(self, individuals: list[Individual]) -> list[FitnessRecord]:
        if not individuals:
            return []
        if self.source == "llm":
            reqs = [request(self.role, seed_for(self.seed, ind.id, self.name),
                            render("reward.j2", instruction=ind.instruction,
                                   solution=ind.solution), "reward")
                    for ind in individuals]
            texts = [c.text for c in self.backend.generate(reqs)]
            return [self._record(find_scores(t, {a: a for a in ATTRIBUTES}), tail(t))
                    for t in texts]
        with ThreadPoolExecutor(min(self.concurrency, len(individuals))) as pool:
            answers = list(pool.map(lambda ind: self.endpoint.post(ind.instruction,
                                                                   ind.solution), individuals))
        out = []
        for body, error in answers:
            if error is not None:
                out.append(self._record({}, "", error=f"reward endpoint: {error}"))
            else:
                excerpt = tail(json.dumps(body, default=str))
                out.append(self._record(read_scores(body, ATTRIBUTES), excerpt))
        return out

    def _record(self, scores: dict[str, float], excerpt: str,
                error: str | None = None) -> FitnessRecord:
        """value 0 and a reason where the request failed or a weighted score is missing."""
        detail: dict = {"source": self.source, "scores": scores}
        missing = [a for a, w in self.weights.items() if w and a not in scores]
        if error or missing:
            some = f" (missing {', '.join(missing)})" if scores else ""
            detail["reason"] = error or f"unparseable scores{some}: {excerpt}"
            return FitnessRecord(self.name, 0.0, passed=False if self.gate else None,
                                 detail=detail)
        return FitnessRecord(self.name, combine_attributes(scores, self.weights),
                             passed=True if self.gate else None, detail=detail)

    def close(self) -> None:
        if self.source == "endpoint":
            self.endpoint.close()
