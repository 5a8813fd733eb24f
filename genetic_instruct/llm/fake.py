"""A deterministic scripted backend for logic tests: no model, same input, same output.

By default it answers each role's prompt with a well-formed response derived from a hash
of the prompt (so different prompts give different but reproducible answers). A ``script``
maps a role tag to a list of answers used in turn, or to a callable
``(request, sample_index) -> str`` for full control.
"""

from __future__ import annotations

import hashlib
import time
from typing import Callable

from .base import ChatRequest, Completion, apply_stop

Answer = str | Callable[[ChatRequest, int], str]


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def default_answer(req: ChatRequest, k: int) -> str:
    """A plausible answer for the request's role (its ``tag``)."""
    prompt = "\n".join(m["content"] for m in req.messages) + req.prefill + str(k)
    h = _h(prompt)
    role = req.tag
    if role in ("mutation", "crossover"):
        a, b = h % 7 + 1, h % 5 + 2
        return (
            f"Write a Python function `scale_{h % 1000}(x: int) -> int` that returns x "
            f"multiplied by {a} plus {b}."
        )
    if role == "solve":
        name, a, b = _parse_scale(prompt)
        return f"```python\ndef {name}(x):\n    return x * {a} + {b}\n```"
    if role == "write_tests":
        name, a, b = _parse_scale(prompt)
        lines = [f"assert {name}({x}) == {x * a + b}" for x in (0, 1, 5)]
        return "```python\n" + "\n".join(lines) + "\n```"
    if role == "judge":
        return "The code is correct. \\boxed{Yes}"
    if role == "judge_graded":
        return ("The code meets the task and handles the usual inputs.\n"
                f"conformance: {4 + h % 2}\ncorrectness: 4\nedge_cases: {3 + h % 2}")
    if role == "reward":
        return (f"helpfulness: {3 + h % 2}\ncorrectness: 3\ncoherence: 4\n"
                f"complexity: {1 + h % 3}\nverbosity: 2")
    return f"answer {h}"


def _parse_scale(prompt: str) -> tuple[str, int, int]:
    import re

    m = re.search(r"`(scale_\d+)\(x: int\) -> int` that returns x multiplied by (\d+) plus (\d+)",
                  prompt)
    if not m:
        return "f", 1, 0
    return m.group(1), int(m.group(2)), int(m.group(3))


def join_prefill(prefill: str, text: str) -> str:
    """Continue ``prefill`` with ``text``, overlapping where text repeats its end."""
    if text.startswith(prefill):
        return text
    for k in range(min(len(prefill), len(text)), 0, -1):
        if prefill.endswith(text[:k]):
            return prefill + text[k:]
    return prefill + text


class FakeBackend:
    """Scripted, deterministic; records every request it was given."""

    name = "fake"

    def __init__(self, model: str = "fake", script: dict[str, list[Answer] | Answer] | None = None,
                 delay_s: float = 0.0, fail_after: int | None = None, **_: object):
        """``fail_after``: raise after answering that many requests in all (a crash in the
        middle of a batch, for resume tests)."""
        self.model_name = model
        self.delay_s = delay_s
        self.fail_after = fail_after
        self.answered = 0
        self.script = script or {}
        self._turn: dict[str, int] = {}
        self.calls: list[list[ChatRequest]] = []
        self.stats = {"prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}

    def _answer(self, req: ChatRequest, k: int) -> str:
        entry = self.script.get(req.tag)
        if entry is None:
            return default_answer(req, k)
        if callable(entry):
            return entry(req, k)
        i = self._turn.get(req.tag, 0)
        self._turn[req.tag] = i + 1
        item = entry[i % len(entry)]
        return item(req, k) if callable(item) else item

    def generate(self, requests: list[ChatRequest], progress=None,
                 on_done=None) -> list[Completion]:
        self.calls.append(list(requests))
        if self.delay_s:
            time.sleep(self.delay_s)
        out = []
        for i, req in enumerate(requests):
            if self.fail_after is not None and self.answered >= self.fail_after:
                raise RuntimeError(f"fake backend: induced failure after {self.answered}")
            texts = []
            for k in range(req.sampling.n):
                text = self._answer(req, k)
                text = join_prefill(req.prefill, text)
                text, _ = apply_stop(text, req.sampling.stop)
                texts.append(text)
            prompt_tokens = sum(len(m["content"].split()) for m in req.messages)
            comp = Completion(
                texts=texts,
                prompt_tokens=prompt_tokens,
                completion_tokens=sum(len(t.split()) for t in texts),
                finish_reasons=["stop"] * len(texts),
            )
            self.stats["prompt_tokens"] += comp.prompt_tokens
            self.stats["completion_tokens"] += comp.completion_tokens
            self.answered += 1
            out.append(comp)
            if on_done:
                on_done(i, comp)
            if progress:
                progress(1)
        return out
