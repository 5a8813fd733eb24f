"""The operators: mutate, crossover (Instructor), solve (Coder), write_tests (Test writer).

Each operator has two halves, as in distilabel's format_input/format_output: ``*_request``
builds a ChatRequest for one individual, ``apply_*`` parses the answer into it. The loop
sends all requests of one phase as a single batch. A parse failure rejects the individual
with the reason and keeps the raw answer; it never raises.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..config import RoleConfig
from ..individual import Individual
from ..llm.base import ChatRequest, Sampling
from .parsing import (
    ParseError,
    extract_asserts,
    extract_instruction,
    extract_solution,
    instruction_signature,
)

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
SYSTEM = "You are an expert Python programmer who writes clear, correct code and tasks."
INSTRUCTION_OPENING = "Write a Python function `"


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(PROMPTS), undefined=StrictUndefined, keep_trailing_newline=False
    )


@lru_cache(maxsize=1)
def heuristic_texts() -> dict[str, str]:
    return yaml.safe_load((PROMPTS / "heuristics.yaml").read_text())


def render(template: str, **kw) -> str:
    return _env().get_template(template).render(**kw).strip()


def sampling_for(role: RoleConfig, seed: int, stop: list[str]) -> Sampling:
    return Sampling(
        temperature=role.temperature,
        top_p=role.top_p,
        max_tokens=role.max_tokens,
        n=role.n,
        seed=seed,
        stop=stop,
    )


def _chat(user: str, sampling: Sampling, prefill: str, tag: str) -> ChatRequest:
    return ChatRequest(
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        sampling=sampling,
        prefill=prefill,
        tag=tag,
    )


def mutation_request(parent: Individual, heuristic: str, sampling: Sampling) -> ChatRequest:
    user = render("mutation.j2", parent=parent, heuristic_text=heuristic_texts()[heuristic])
    sampling.stop = ["\n\n", "\nTask"]
    return _chat(user, sampling, "New task: " + INSTRUCTION_OPENING, "mutation")


def crossover_request(parents: list[Individual], sampling: Sampling) -> ChatRequest:
    user = render("crossover.j2", parents=parents)
    sampling.stop = ["\n\n", "\nTask"]
    prefill = f"Task {len(parents) + 1}: " + INSTRUCTION_OPENING
    return _chat(user, sampling, prefill, "crossover")


def apply_instruction(ind: Individual, text: str) -> Individual:
    ind.raw["instruction"] = text
    try:
        ind.instruction, ind.entry_point = extract_instruction(text)
    except ParseError as err:
        ind.reject(f"instruction: {err}")
    return ind


def solve_request(ind: Individual, sampling: Sampling) -> ChatRequest:
    user = render("solve.j2", instruction=ind.instruction, entry_point=ind.entry_point)
    sampling.stop = ["\n```"]
    return _chat(user, sampling, f"```python\ndef {ind.entry_point}(", "solve")


def apply_solution(ind: Individual, text: str) -> Individual:
    ind.raw["solution"] = text
    try:
        ind.solution = extract_solution(text, ind.entry_point)
    except ParseError as err:
        ind.reject(f"solution: {err}")
    return ind


def tests_request(ind: Individual, sampling: Sampling, n_asserts: int = 3) -> ChatRequest:
    user = render(
        "write_tests.j2",
        instruction=ind.instruction,
        signature=instruction_signature(ind.instruction),
        n_asserts=n_asserts,
    )
    sampling.stop = ["\n```"]
    return _chat(user, sampling, f"```python\nassert {ind.entry_point}(", "write_tests")


def apply_tests(ind: Individual, texts: list[str], max_asserts: int = 8) -> Individual:
    """Pool the asserts of the test writer's samples (``n`` of them)."""
    ind.raw["tests"] = "\n\n".join(texts)
    try:
        ind.tests = extract_asserts(texts, ind.entry_point, limit=max_asserts)
    except ParseError as err:
        ind.reject(f"tests: {err}")
    return ind
