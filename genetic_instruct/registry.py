"""A small registry: built-ins named by lazy "module:attr" strings, plugins by entry points."""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from typing import Any


class UnknownName(Exception):
    """An unregistered name; the message suggests the closest known one."""


class Registry:
    """Maps names to objects that are imported only when asked for.

    Third parties register through the entry-point group ``group`` in their own package's
    metadata; built-ins are given as ``"module:attr"`` strings so heavy imports (torch,
    vllm, docker) happen only when that name is chosen.
    """

    def __init__(self, kind: str, group: str, builtins: dict[str, str]):
        self.kind = kind
        self.group = group
        self._lazy = dict(builtins)
        self._loaded: dict[str, Any] = {}

    def register(self, name: str, obj: Any) -> None:
        self._loaded[name] = obj

    def names(self) -> list[str]:
        plugins = [ep.name for ep in entry_points(group=self.group)]
        return sorted(set(self._lazy) | set(self._loaded) | set(plugins))

    def get(self, name: str) -> Any:
        if name in self._loaded:
            return self._loaded[name]
        if name in self._lazy:
            module, _, attr = self._lazy[name].partition(":")
            obj = getattr(importlib.import_module(module), attr)
        else:
            found = [ep for ep in entry_points(group=self.group) if ep.name == name]
            if not found:
                close = difflib.get_close_matches(name, self.names(), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise UnknownName(
                    f"unknown {self.kind} {name!r}{hint}; known: {', '.join(self.names())}"
                )
            obj = found[0].load()
        self._loaded[name] = obj
        return obj


backends = Registry(
    "backend",
    "genetic_instruct.backends",
    {
        "transformers": "genetic_instruct.llm.transformers:TransformersBackend",
        "fake": "genetic_instruct.llm.fake:FakeBackend",
        "vllm": "genetic_instruct.llm.vllm:VLLMBackend",
        "openai": "genetic_instruct.llm.openai:OpenAIBackend",
    },
)

fitness_functions = Registry(
    "fitness function",
    "genetic_instruct.fitness",
    {
        "syntax": "genetic_instruct.fitness.syntax:SyntaxFitness",
        "execution": "genetic_instruct.fitness.execution:ExecutionFitness",
        "judge": "genetic_instruct.fitness.judge:JudgeFitness",
        "reward": "genetic_instruct.fitness.reward:RewardFitness",
        "difficulty": "genetic_instruct.fitness.difficulty:DifficultyFitness",
        "novelty": "genetic_instruct.fitness.novelty:NoveltyFitness",
    },
)
