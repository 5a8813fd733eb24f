"""Build a run's parts from its config: backends per role, executor, fitness functions."""

from __future__ import annotations

import inspect

from .config import RunConfig
from .execution import make_executor
from .execution.base import Executor
from .fitness.base import FitnessFunction
from .llm.base import Backend
from .registry import backends as backend_registry
from .registry import fitness_functions


def check_names(cfg: RunConfig) -> None:
    """Fail fast (before any model loads) on unknown backend or fitness names."""
    for bc in cfg.backends.values():
        backend_registry.get(bc.type)
    for name in cfg.fitness.functions:
        fitness_functions.get(name)


def make_backends(cfg: RunConfig) -> dict[str, Backend]:
    """One instance per distinct backend config; roles naming the same one share it."""
    used = {cfg.roles[r].backend for r in cfg.roles}
    made: dict[tuple, Backend] = {}
    out: dict[str, Backend] = {}
    for name in sorted(used):
        bc = cfg.backends[name]
        key = (bc.type, bc.model, bc.device, bc.dtype, bc.batch_size,
               tuple(sorted(bc.options.items(), key=str)))
        if key not in made:
            cls = backend_registry.get(bc.type)
            made[key] = cls(model=bc.model, device=bc.device, dtype=bc.dtype,
                            batch_size=bc.batch_size, **bc.options)
        out[name] = made[key]
    return out


def needs_executor(cfg: RunConfig) -> bool:
    return "execution" in cfg.fitness.functions


def executor_from_config(cfg: RunConfig) -> Executor:
    ex = cfg.execution
    options: dict = {"timeout_s": ex.timeout_s, "memory_mb": ex.memory_mb}
    if ex.workers:
        options["workers"] = ex.workers
    return make_executor(ex.executor, **options)


def make_fitness(cfg: RunConfig, executor: Executor | None) -> list[FitnessFunction]:
    shared = {"min_asserts": cfg.fitness.min_asserts, "executor": executor,
              "timeout_s": cfg.execution.timeout_s}
    out = []
    for name in cfg.fitness.functions:
        cls = fitness_functions.get(name)
        params = inspect.signature(cls).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        out.append(cls(**{k: v for k, v in shared.items() if takes_any or k in params}))
    return out
