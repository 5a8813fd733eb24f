"""Build a run's parts from its config: backends per role, executor, fitness functions."""

from __future__ import annotations

import difflib
import inspect
import json
from pathlib import Path

from .config import ConfigError, RunConfig
from .execution import make_executor
from .execution.base import Executor
from .fitness.base import FitnessFunction
from .llm.base import Backend
from .llm.meter import Metered
from .registry import backends as backend_registry
from .registry import fitness_functions


def check_names(cfg: RunConfig) -> None:
    """Fail fast (before any model loads) on unknown backend or fitness names."""
    for bc in cfg.backends.values():
        backend_registry.get(bc.type)
    for spec in cfg.fitness.functions:
        check_options(spec, fitness_functions.get(spec.name))


LOOP_ROLES = ("instructor", "coder", "test_writer")


def roles_in_use(cfg: RunConfig) -> list[str]:
    """The loop's roles, plus those the configured fitness functions ask for (``roles``)."""
    roles = list(LOOP_ROLES)
    for spec in cfg.fitness.functions:
        for role in function_roles(fitness_functions.get(spec.name), spec.options):
            if role not in roles:
                roles.append(role)
    return roles


def function_roles(cls, options: dict) -> tuple[str, ...]:
    """The LLM roles a fitness function calls: ``roles_for(options)`` where it has one
    (the roles depend on its options), else its ``roles``."""
    if hasattr(cls, "roles_for"):
        return tuple(cls.roles_for(options))
    return tuple(getattr(cls, "roles", ()))


def cache_path(cfg: RunConfig, run_dir: str | Path) -> Path | None:
    """Where this run's response cache lives, or None when it is off."""
    if not cfg.cache.enabled:
        return None
    path = Path(cfg.cache.path) if cfg.cache.path else Path("cache.sqlite")
    return path if path.is_absolute() else Path(run_dir) / path


def make_backends(cfg: RunConfig, cache: Path | None = None) -> dict[str, Backend]:
    """One instance per distinct backend config; roles naming the same one share it.

    With ``cache`` (a SQLite file), every backend answers from it what it holds.
    """
    used = {cfg.roles[r].backend for r in roles_in_use(cfg)}
    made: dict[tuple, Backend] = {}
    out: dict[str, Backend] = {}
    for name in sorted(used):
        bc = cfg.backends[name]
        # options may nest (vllm's engine_args): compare them as canonical JSON
        key = (bc.type, bc.model, bc.device, bc.dtype, bc.batch_size,
               json.dumps(bc.options, sort_keys=True, default=str))
        if key not in made:
            cls = backend_registry.get(bc.type)
            made[key] = cls(model=bc.model, device=bc.device, dtype=bc.dtype,
                            batch_size=bc.batch_size, **bc.options)
        out[name] = made[key]
    if cache is not None:
        from .llm.cache import CachedBackend, ResponseCache

        store = ResponseCache(cache)
        wrapped = {id(b): CachedBackend(b, store) for b in made.values()}
        out = {name: wrapped[id(b)] for name, b in out.items()}
    return out


def needs_executor(cfg: RunConfig) -> bool:
    return any(getattr(fitness_functions.get(n), "needs_executor", n == "execution")
               for n in cfg.fitness.names())


def executor_from_config(cfg: RunConfig) -> Executor:
    ex = cfg.execution
    options: dict = {"timeout_s": ex.timeout_s, "memory_mb": ex.memory_mb}
    if ex.workers:
        options["workers"] = ex.workers
    return make_executor(ex.executor, **options)


def make_fitness(cfg: RunConfig, executor: Executor | None,
                 backends: dict[str, Backend] | None = None,
                 tokens: dict | None = None) -> list[FitnessFunction]:
    """The configured functions, in order, each with its spec (gate, floor) applied.

    A function receives, where its constructor names them: ``min_asserts``, ``executor``,
    ``timeout_s``, ``seed``, ``llms`` and ``role_configs`` (for its ``roles``), and the
    spec's ``options``; an option it does not take is a ConfigError. With ``tokens`` (the
    loop's per-role counts), the functions' LLM calls are counted there too.
    """
    backends = backends or {}
    out = []
    for spec in cfg.fitness.functions:
        cls = fitness_functions.get(spec.name)
        roles = function_roles(cls, spec.options)
        llms = {r: backends.get(cfg.roles[r].backend) for r in roles}
        if tokens is not None:
            llms = {r: Metered(b, r, tokens) if b is not None else None
                    for r, b in llms.items()}
        shared = {"min_asserts": cfg.fitness.min_asserts, "executor": executor,
                  "timeout_s": cfg.execution.timeout_s, "seed": cfg.seed, "llms": llms,
                  "role_configs": {r: cfg.roles[r] for r in roles}}
        named, takes_any = check_options(spec, cls)
        kwargs = {k: v for k, v in shared.items() if takes_any or k in named}
        try:
            fn = cls(**kwargs, **spec.options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"fitness.functions.{spec.name}: {exc}") from None
        if spec.gate is not None:
            fn.gate = spec.gate
        if spec.min_value is not None:
            fn.min_value = spec.min_value
        out.append(fn)
    return out


SHARED = ("min_asserts", "executor", "timeout_s", "seed", "llms", "role_configs")


def check_options(spec, cls) -> tuple[set[str], bool]:
    """The constructor's named parameters (and whether it takes ``**kwargs``); a ConfigError
    for an option it does not name."""
    params = inspect.signature(cls).parameters
    named = {k for k, p in params.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for key in spec.options:
        if key not in named or key in SHARED:
            known = sorted(named - set(SHARED))
            raise ConfigError(
                f"fitness.functions.{spec.name}.options.{key}: not an option of "
                f"{spec.name!r}{_hint(key, known)}; its options: {', '.join(known) or 'none'}")
    return named, takes_any


def fitness_weights(cfg: RunConfig) -> dict[str, float]:
    return {spec.name: spec.weight for spec in cfg.fitness.functions if spec.weight > 0}


def _hint(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
