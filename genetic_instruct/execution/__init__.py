"""Executors: run untrusted solutions against their asserts, batch in, batch out.

``make_executor("auto")`` picks Docker when an engine answers and the sandbox image exists,
else bubblewrap, else refuses with one line saying how to install either. ``"local"`` (plain
host processes, not a sandbox) is used only when named.
"""

from __future__ import annotations

import difflib
import inspect
from importlib import import_module
from importlib.metadata import entry_points

from genetic_instruct.execution._pool import ExecutorUnavailable
from genetic_instruct.execution.base import (CRASHED, ERROR, FAILED, MEMORY, OUTPUT_LIMIT, PASSED,
                                             STATUSES, TIMEOUT, ExecJob, ExecResult, Executor)

BUILTIN = {
    "docker": "genetic_instruct.execution.docker:DockerExecutor",
    "bwrap": "genetic_instruct.execution.bwrap:BwrapExecutor",
    "local": "genetic_instruct.execution.local:LocalExecutor",
    "fake": "genetic_instruct.execution.fake:FakeExecutor",  # logic tests: runs nothing
}
ENTRY_POINT_GROUP = "genetic_instruct.executors"
NO_SANDBOX = ("no sandbox available: install and start Docker (apt-get install docker.io, "
              "then `genetic-instruct sandbox build`) or install bubblewrap (apt-get install "
              "bubblewrap); executor 'local' runs code unsandboxed and only when named")

__all__ = ["CRASHED", "ERROR", "FAILED", "MEMORY", "OUTPUT_LIMIT", "PASSED", "STATUSES", "TIMEOUT",
           "ExecJob", "ExecResult", "Executor", "ExecutorUnavailable", "available_executors",
           "make_executor"]


def available_executors() -> dict[str, str]:
    """Executor names and their ``module:attr``: built-ins, then entry-point plugins."""
    found = dict(BUILTIN)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, point.value)
    return found


def _load(target: str) -> type:
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


def _build(name: str, target: str, options: dict, *, strict: bool) -> Executor:
    cls = _load(target)
    accepted = inspect.signature(cls).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    unknown = sorted(k for k in options if k not in accepted)
    if unknown and strict and not takes_any:
        raise ValueError(f"executor {name!r} has no option {unknown[0]!r}; "
                         f"it takes: {', '.join(accepted)}")
    return cls(**{k: v for k, v in options.items() if takes_any or k in accepted})


def make_executor(name: str = "auto", **options: object) -> Executor:
    """Make an executor by name: ``auto``, ``docker``, ``bwrap``, ``local`` or a plugin.

    Common options: ``workers`` (default: one per core), ``timeout_s`` (per job; default:
    each job's own), ``memory_mb``, ``recycle_after``. Options an executor does not take
    are an error when it is named, and ignored by ``auto``.

    Raises:
        ExecutorUnavailable: the named sandbox (or, for ``auto``, every sandbox) is
            missing; the message says how to install it.
        ValueError: unknown executor name or option.
    """
    known = available_executors()
    if name == "auto":
        reasons = []
        for candidate in ("docker", "bwrap"):
            try:
                return _build(candidate, known[candidate], options, strict=False)
            except ExecutorUnavailable as exc:  # "docker: what is missing: how to fix it"
                reasons.append(":".join(str(exc).split(":")[:2]))
        raise ExecutorUnavailable(f"{NO_SANDBOX} ({'; '.join(reasons)})")
    if name not in known:
        close = difflib.get_close_matches(name, [*known, "auto"], n=1)
        hint = (f"; did you mean {close[0]!r}?" if close
                else f"; choose one of: auto, {', '.join(known)}")
        raise ValueError(f"unknown executor {name!r}{hint}")
    return _build(name, known[name], options, strict=True)
