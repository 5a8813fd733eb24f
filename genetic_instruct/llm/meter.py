"""Counting LLM use per role: calls, cache hits, and the tokens actually paid for."""

from __future__ import annotations

import inspect
from collections import defaultdict
from typing import Callable

from .base import Backend, ChatRequest, Completion


def token_counts() -> defaultdict[str, dict[str, int]]:
    return defaultdict(lambda: {"calls": 0, "cached": 0, "in": 0, "out": 0})


def count(counts: dict[str, int], comp: Completion) -> None:
    """Add one answered request to a role's counts; a cache hit costs no tokens."""
    counts["calls"] = counts.get("calls", 0) + 1
    if getattr(comp, "cached", False):
        counts["cached"] = counts.get("cached", 0) + 1
    else:
        counts["in"] += comp.prompt_tokens
        counts["out"] += comp.completion_tokens


class Metered:
    """A backend seen through one role: every answer is counted under that role."""

    def __init__(self, inner: Backend, role: str, tokens: dict[str, dict[str, int]]):
        self.inner = inner
        self.role = role
        self.tokens = tokens
        self.name = inner.name

    def generate(self, requests: list[ChatRequest], progress: Callable | None = None,
                 on_done: Callable | None = None) -> list[Completion]:
        params = inspect.signature(self.inner.generate).parameters
        kwargs = {k: v for k, v in (("progress", progress), ("on_done", on_done))
                  if v is not None and k in params}
        comps = self.inner.generate(requests, **kwargs)
        for comp in comps:
            count(self.tokens[self.role], comp)
        return comps

    def __getattr__(self, attr: str):
        return getattr(self.inner, attr)
