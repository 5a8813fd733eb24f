"""Every abusive program against every executor: the expected outcome, then a clean sandbox.

After each program the next ordinary job must pass in the same sandbox (or its
replacement: one worker per executor here), and no process, file or container may be left.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hostile_programs import HOST_SECRET_VALUE, NOT_PASSED, PROGRAMS

from genetic_instruct.execution import ExecJob

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "execution"))
import sandbox_helpers  # noqa: E402
from sandbox_helpers import (EXECUTORS, assert_clean, descendants, open_executor,  # noqa: E402
                             ordinary_job)

CASES = [pytest.param(name, program, id=f"{name}-{program.id}",
                      marks=[pytest.mark.docker] if name == "docker" else [])
         for name in EXECUTORS for program in PROGRAMS
         if not (name == "local" and program.sandbox_only)]


def test_the_host_secret_is_in_our_environment():
    assert sandbox_helpers.HOST_SECRET_VALUE == HOST_SECRET_VALUE
    assert HOST_SECRET_VALUE in str(dict(__import__("os").environ))


def test_there_are_at_least_forty_programs():
    assert len(PROGRAMS) >= 40
    assert len({p.id for p in PROGRAMS}) == len(PROGRAMS)
    assert all(p.expect <= NOT_PASSED | {"passed"} for p in PROGRAMS)


@pytest.mark.parametrize(("executor_name", "program"), CASES)
def test_hostile_program(executor_name, program):
    executor = open_executor(executor_name, workers=1, grace_s=2.0)
    before = set(descendants())
    job = ExecJob(id=program.id, solution=program.solution, tests=list(program.tests),
                  timeout_s=program.timeout_s)
    [result] = executor.run([job])
    assert result.status in program.expect, (
        f"{program.id}: got {result.status} ({result.error}); expected {sorted(program.expect)}; "
        f"stdout {result.stdout_tail[-200:]!r} stderr {result.stderr_tail[-300:]!r}")
    if program.then:
        source, tests = program.then
        [after] = executor.run([ExecJob(id=f"{program.id}-after", solution=source, tests=tests)])
        assert after.status == "passed", f"the job after {program.id}: {after}"
    [ordinary] = executor.run([ordinary_job(f"{program.id}-next")])
    assert ordinary.status == "passed", f"the ordinary job after {program.id}: {ordinary}"
    assert_clean(executor, before)
