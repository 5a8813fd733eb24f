"""Helpers shared by tests/execution and tests/hostile: one cache of live executors.

Every real executor is tried; one that cannot start is skipped with its reason, except
under CI=true, where Docker and bubblewrap must work and a missing one fails the test.
The cache is a module global (this module is imported once, from both directories), so
the leftover-process checks see every executor the session started; executors left open
are closed at interpreter exit. No conftest.py here on purpose: a second module named
``conftest`` would shadow tests/conftest.py for ``from conftest import ...``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from genetic_instruct.execution import ExecJob, ExecutorUnavailable, make_executor

# A secret in the test process's environment, set before any sandbox starts: no job may see it.
HOST_SECRET_NAME = "GI_HOSTILE_SECRET"
HOST_SECRET_VALUE = "s3cr3t-5d41402abc4b2a76"
os.environ[HOST_SECRET_NAME] = HOST_SECRET_VALUE

EXECUTORS = ("docker", "bwrap", "local")
# As pytest params: the Docker ones carry the `docker` marker (-m "not docker" leaves them out).
EXECUTOR_PARAMS = [pytest.param(name, marks=[pytest.mark.docker] if name == "docker" else [])
                   for name in EXECUTORS]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ADD = "def add(a, b):\n    return a + b\n"
ADD_TESTS = ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-1, 1) == 0"]


def ordinary_job(job_id: str = "ordinary") -> ExecJob:
    return ExecJob(id=job_id, solution=ADD, tests=list(ADD_TESTS), timeout_s=20)


CACHE: dict = {}


def open_executor(name: str, cache: dict = CACHE, **options):
    """Start (once per session and options) the named executor, or skip/fail with why."""
    key = (name, tuple(sorted(options.items())))
    if key not in cache:
        try:
            extra = {"acknowledge_unsafe": True} if name == "local" else {}
            cache[key] = make_executor(name, **extra, **options)
        except ExecutorUnavailable as exc:
            cache[key] = exc
    found = cache[key]
    if isinstance(found, ExecutorUnavailable):
        if IN_CI and name != "local":
            pytest.fail(f"CI=true and the {name} sandbox is unavailable: {found}")
        pytest.skip(f"{name} sandbox unavailable: {found}")
    return found


def descendants(pid: int | None = None) -> list[int]:
    """Live processes below ``pid`` (default: this test process)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    root, found = pid or os.getpid(), []
    frontier = [root]
    while frontier:
        current = frontier.pop()
        kids = [p for p, parent in parents.items() if parent == current]
        found += kids
        frontier += kids
    return found


# Host processes a live runner may have below it: bwrap's monitor and the sandbox's init.
RUNNER_CHILDREN = {"local": 0, "bwrap": 2, "docker": 0}


def assert_clean(executor, before: set[int], cache: dict = CACHE) -> None:
    """No sandbox holds a leftover process or file, and no process started since ``before``
    (a ``set(descendants())`` taken earlier) runs on the host, but the live runners."""
    allowed: set[int] = set()
    for other in cache.values():
        if isinstance(other, Exception):
            continue
        other.pool.wait_retired()
        for runner in list(other.pool._runners):
            below = descendants(runner.proc.pid)
            assert len(below) <= RUNNER_CHILDREN[other.name], (runner.label, below)
            allowed.update([runner.proc.pid, *below])
    assert executor.pool.health() == []
    stray = set(descendants()) - before - allowed
    assert not stray, f"processes left on the host: {sorted(stray)}"
    if executor.name == "docker":
        from genetic_instruct.execution.docker import LABEL, OWNER_LABEL, _docker
        listed = _docker("ps", "-aq", "--filter", f"label={LABEL}",
                         "--filter", f"label={OWNER_LABEL}={executor.owner}")
        assert len(listed.stdout.split()) <= executor.pool.workers, listed.stdout
