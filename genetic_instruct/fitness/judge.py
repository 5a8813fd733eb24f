"""``judge``: an LLM reviews each candidate (instruction, solution, tests).

Options:

- ``style``: ``binary`` (default): the judge reasons briefly and ends with ``\\boxed{Yes}``
  or ``\\boxed{No}``; value = share of Yes votes, passed = a strict majority of Yes.
  ``graded``: the judge scores ``conformance``, ``correctness`` and ``edge_cases`` from 1
  to 5; value = the mean score mapped to [0, 1] ((s - 1) / 4); passed when every (mean)
  score is at least ``pass_score``.
- ``pass_score`` (graded, default 3).
- ``samples`` (default 1): judge samples per candidate (the request's ``n``); binary takes
  the majority, graded the mean of each score; ``detail["agreement"]`` is the share of
  samples whose own decision matches the final one.

The whole batch goes to the judge backend in one ``generate`` call, with the judge role's
sampling. A verdict that cannot be read counts as a No: a candidate none of whose samples
can be read is rejected with ``unparseable verdict: ...``, never passed.
"""

from __future__ import annotations

import re

from ..config import RoleConfig
from ..evolution.operators import render
from ..individual import FitnessRecord, Individual
from ..llm.base import Backend
from .prompting import find_scores, need_backend, request, seed_for, tail, trim

YES_NO = r"(yes|no)\b"
VERDICTS = [
    # \boxed{Yes}, \boxed{ no }, boxed{\text{Yes}}
    re.compile(r"\\?boxed\s*\{\s*(?:\\text(?:bf)?\s*\{\s*)?[*\s]*" + YES_NO,
               re.IGNORECASE),
    # "Final answer: No", "Verdict: **yes**", "the final verdict is yes" (not "Answer: no
    # issues", where a word follows)
    re.compile(r"(?:(?:final\s+)?(?:answer|verdict|decision)\s*\**\s*:"
               r"|final\s+(?:answer|verdict|decision)\s+is)[\s*]*" + YES_NO
               + r"(?![ \t]*[a-z])", re.IGNORECASE),
    # a last line that is only the word: "**Yes**", "No."
    re.compile(r"(?:^|\n|\*\*)[\s*]*" + r"(yes|no)[\s.!*]*\Z", re.IGNORECASE),
]

CRITERIA = {
    "conformance": r"(?:requirements?[ _-])?conformance",
    "correctness": r"(?:logical[ _-])?correctness",
    "edge_cases": r"edge[ _-]?cases?(?:[ _-]handling)?",
}


def parse_verdict(text: str) -> bool | None:
    """True for Yes, False for No, None when no verdict is found; the last one wins."""
    text = text.strip()
    best: tuple[int, str] | None = None
    for rx in VERDICTS:
        for m in rx.finditer(text):
            if best is None or m.start(1) > best[0]:
                best = (m.start(1), m.group(1).lower())
    return None if best is None else best[1] == "yes"


def parse_grades(text: str) -> dict[str, float] | None:
    """The three 1-5 scores, or None when one is missing or out of range."""
    scores = find_scores(text, CRITERIA)
    if len(scores) < len(CRITERIA) or any(not 1 <= s <= 5 for s in scores.values()):
        return None
    return scores


class JudgeFitness:
    """Gate: an LLM judge accepts or rejects each candidate (see the module docstring)."""

    name = "judge"
    gate = True
    roles = ("judge",)

    def __init__(self, llms: dict[str, Backend | None] | None = None,
                 role_configs: dict[str, RoleConfig] | None = None, seed: int = 0,
                 style: str = "binary", samples: int = 1, pass_score: float = 3):
        if style not in ("binary", "graded"):
            raise ValueError(f"style must be 'binary' or 'graded' (got {style!r})")
        if not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be a whole number >= 1 (got {samples!r})")
        if not 1 <= pass_score <= 5:
            raise ValueError(f"pass_score must lie in 1..5 (got {pass_score!r})")
        self.backend = need_backend(llms, "judge", self.name)
        self.role = (role_configs or {}).get("judge")
        self.seed = seed
        self.style = style
        self.samples = samples
        self.pass_score = pass_score

    def score(self, individuals: list[Individual]) -> list[FitnessRecord]:
        if not individuals:
            return []
        template, tag = (("judge_binary.j2", "judge") if self.style == "binary"
                         else ("judge_graded.j2", "judge_graded"))
        reqs = [request(self.role, seed_for(self.seed, ind.id, self.name),
                        render(template, instruction=ind.instruction, solution=ind.solution,
                               tests=ind.tests), tag, n=self.samples)
                for ind in individuals]
        completions = self.backend.generate(reqs)
        read = self._binary if self.style == "binary" else self._graded
        return [read(list(c.texts)) for c in completions]

    def _binary(self, texts: list[str]) -> FitnessRecord:
        votes = [parse_verdict(t) for t in texts]
        yes = sum(v is True for v in votes)
        passed = yes * 2 > len(texts)
        detail = {"style": "binary", "verdict": "yes" if passed else "no",
                  "votes": ["yes" if v else "no" if v is False else "unparseable"
                            for v in votes],
                  "agreement": round(sum(bool(v) == passed for v in votes) / len(texts), 3),
                  "reasoning": trim(_pick(texts, votes, passed))}
        if all(v is None for v in votes):
            detail["verdict"] = None
            detail["reason"] = f"unparseable verdict: {tail(texts[0] if texts else '')}"
        elif not passed:
            detail["reason"] = f"verdict No ({len(texts) - yes}/{len(texts)} samples)"
        return FitnessRecord(self.name, yes / len(texts), passed=passed, detail=detail)

    def _graded(self, texts: list[str]) -> FitnessRecord:
        grades = [parse_grades(t) for t in texts]
        good = [g for g in grades if g is not None]
        if not good:
            reason = f"unparseable verdict: {tail(texts[0] if texts else '')}"
            return FitnessRecord(self.name, 0.0, passed=False, detail={
                "style": "graded", "scores": None, "reason": reason,
                "reasoning": trim(texts[0] if texts else "")})
        means = {k: round(sum(g[k] for g in good) / len(good), 3) for k in CRITERIA}
        passed = all(s >= self.pass_score for s in means.values())
        own = [g is not None and all(s >= self.pass_score for s in g.values()) for g in grades]
        value = sum((s - 1) / 4 for s in means.values()) / len(means)
        detail = {"style": "graded", "scores": means, "pass_score": self.pass_score,
                  "parsed": f"{len(good)}/{len(texts)}",
                  "agreement": round(sum(o == passed for o in own) / len(texts), 3),
                  "reasoning": trim(_pick(texts, own, passed))}
        if not passed:
            low = [f"{k} {s:g}" for k, s in means.items() if s < self.pass_score]
            detail["reason"] = f"scores below {self.pass_score:g}: {', '.join(low)}"
        return FitnessRecord(self.name, value, passed=passed, detail=detail)


def _pick(texts: list[str], decisions: list, passed: bool) -> str:
    """The first sample whose own decision matches the final one (its reasoning explains)."""
    for text, d in zip(texts, decisions):
        if bool(d) == passed:
            return text
    return texts[0] if texts else ""
