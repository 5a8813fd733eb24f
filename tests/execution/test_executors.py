"""The Executor contract, checked the same way on every executor (docker, bwrap, local)."""

from __future__ import annotations

import pytest

from sandbox_helpers import (ADD, ADD_TESTS, EXECUTOR_PARAMS, EXECUTORS, assert_clean, descendants,
                             open_executor, ordinary_job)
from genetic_instruct.execution import ExecJob, ExecResult, Executor, make_executor


@pytest.fixture(params=EXECUTOR_PARAMS)
def executor(request):
    return open_executor(request.param, workers=2, timeout_s=None)


def test_is_an_executor(executor):
    assert isinstance(executor, Executor)
    assert executor.name in EXECUTORS


def test_correct_solution_passes_every_assert(executor):
    [result] = executor.run([ordinary_job()])
    assert isinstance(result, ExecResult)
    assert (result.status, result.tests_passed, result.tests_total) == ("passed", 3, 3)
    assert result.passed and result.error == ""


def test_wrong_solution_fails_with_counts(executor):
    job = ExecJob(id="wrong", solution="def add(a, b):\n    return a - b\n", tests=ADD_TESTS)
    [result] = executor.run([job])
    assert (result.status, result.tests_passed, result.tests_total) == ("failed", 1, 3)
    assert "test 0" in result.error


def test_syntax_error_is_an_error(executor):
    job = ExecJob(id="syntax", solution="def add(a, b)\n    return a + b\n", tests=ADD_TESTS)
    [result] = executor.run([job])
    assert (result.status, result.tests_passed) == ("error", 0)
    assert "SyntaxError" in result.error


def test_infinite_loop_times_out(executor):
    job = ExecJob(id="loop", solution="while True:\n    pass\n", tests=["assert True"],
                  timeout_s=1.0)
    [result] = executor.run([job])
    assert result.status == "timeout"
    assert 0.9 <= result.duration_s < 5


def test_a_failing_test_does_not_stop_the_others(executor):
    tests = ["assert add(1, 1) == 3", "assert add(1, 2) == 3", "assert undefined_name",
             "assert add(2, 2) == 4"]
    [result] = executor.run([ExecJob(id="mixed", solution=ADD, tests=tests)])
    assert (result.status, result.tests_passed, result.tests_total) == ("failed", 2, 4)


def test_setup_runs_before_the_solution(executor):
    job = ExecJob(id="setup", setup="import math\nSCALE = 2\n",
                  solution="def area(r):\n    return SCALE * math.pi * r\n",
                  tests=["assert round(area(1), 2) == 6.28"])
    assert executor.run([job])[0].status == "passed"


def test_output_is_captured_and_tailed(executor):
    job = ExecJob(id="print", tests=ADD_TESTS,
                  solution="import sys\nprint('hello')\nprint('oops', file=sys.stderr)\n" + ADD)
    [result] = executor.run([job])
    assert result.status == "passed"
    assert result.stdout_tail == "hello\n" and result.stderr_tail == "oops\n"


def test_no_tests_is_not_a_pass(executor):
    [result] = executor.run([ExecJob(id="none", solution=ADD, tests=[])])
    assert result.status == "failed" and result.tests_total == 0 and not result.passed


def test_batch_keeps_order_and_ids(executor):
    before = set(descendants())
    jobs = [ExecJob(id=f"j{i}", solution=ADD,
                    tests=[f"assert add({i}, 1) == {i + 1 - (i % 3 == 0)}"]) for i in range(12)]
    results = executor.run(jobs)
    assert [r.id for r in results] == [j.id for j in jobs]
    assert [r.status for r in results] == ["failed" if i % 3 == 0 else "passed" for i in range(12)]
    assert_clean(executor, before)


def test_result_round_trips_to_dict(executor):
    [result] = executor.run([ordinary_job()])
    data = result.to_dict()
    assert set(data) >= {"id", "status", "tests_passed", "tests_total", "duration_s",
                         "stdout_tail", "stderr_tail"}


def test_recycles_after_n_jobs():
    executor = open_executor("local", workers=1, recycle_after=3)
    before = executor.pool.recycled
    results = executor.run([ordinary_job(str(i)) for i in range(7)])
    assert all(r.passed for r in results)
    assert executor.pool.recycled - before == 2


def test_executor_timeout_option_overrides_the_job():
    executor = open_executor("local", workers=1, timeout_s=0.5)
    job = ExecJob(id="sleep", solution="import time\ntime.sleep(30)\n", tests=["assert True"],
                  timeout_s=30)
    [result] = executor.run([job])
    assert result.status == "timeout" and result.duration_s < 3


def test_context_manager_closes_and_leaves_nothing():
    before = set(descendants())
    with make_executor("local", workers=2, acknowledge_unsafe=True) as executor:
        assert executor.run([ordinary_job()])[0].passed
        assert len(set(descendants()) - before) == 2
    assert set(descendants()) - before == set()
    with pytest.raises(RuntimeError):
        executor.run([ordinary_job()])


def test_local_warns_that_it_is_not_a_sandbox():
    from genetic_instruct.execution.local import UnsafeExecutorWarning
    with pytest.warns(UnsafeExecutorWarning, match="not a sandbox"):
        make_executor("local", workers=1, warm=False).close()


def test_unknown_executor_name_suggests_one():
    with pytest.raises(ValueError, match="did you mean 'docker'"):
        make_executor("dokcer")


def test_unknown_option_is_one_clear_line():
    with pytest.raises(ValueError, match="has no option 'colour'"):
        make_executor("local", colour="red", acknowledge_unsafe=True)


def test_honest_objects_from_the_stdlib_still_compare(executor):
    solution = ("from collections import Counter, OrderedDict\nfrom dataclasses import dataclass\n"
                "@dataclass\nclass P:\n    x: int\n"
                "def count(s):\n    return Counter(s)\ndef point():\n    return P(1)\n")
    tests = ["assert count('aab') == {'a': 2, 'b': 1}", "assert point() == P(1)",
             "assert count('') != {'a': 1}", "assert OrderedDict(a=1) == {'a': 1}"]
    [result] = executor.run([ExecJob(id="honest", solution=solution, tests=tests)])
    assert (result.status, result.tests_passed) == ("passed", 4), result.error


def test_a_sandbox_killed_under_a_batch_blames_only_its_killer(executor):
    killer = ExecJob(id="killer", tests=ADD_TESTS,
                     solution="import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + ADD)
    jobs = [ordinary_job(f"ok{i}") for i in range(40)]
    jobs[15] = killer
    results = executor.run(jobs)
    assert [r.id for r in results] == [j.id for j in jobs]
    assert results[15].status == "crashed"
    assert all(r.status == "passed" for i, r in enumerate(results) if i != 15)


def test_interpreter_exit_cleans_up_an_executor_never_closed(executor):
    import json
    import subprocess
    import sys
    import time
    from pathlib import Path
    script = ("import json, sys\nfrom genetic_instruct.execution import make_executor, ExecJob\n"
              f"ex = make_executor({executor.name!r}, workers=2, "
              f"**({{'acknowledge_unsafe': True}} if {executor.name!r} == 'local' else {{}}))\n"
              "ex.run([ExecJob(id='a', solution='x = 1', tests=['assert x == 1'])])\n"
              "import os\n"
              "print(json.dumps({'pids': [r.proc.pid for r in ex.pool._runners],\n"
              "                  'owner': getattr(ex, 'owner', ''), 'pid': os.getpid()}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    left = json.loads(done.stdout.splitlines()[-1])
    time.sleep(0.5)
    assert [p for p in left["pids"] if Path(f"/proc/{p}").exists()] == []
    if executor.name == "docker":
        from genetic_instruct.execution.docker import OWNER_LABEL, _docker
        listed = _docker("ps", "-aq", "--filter", f"label={OWNER_LABEL}={left['owner']}")
        assert listed.stdout.split() == []
    for controller in ("pids", "memory"):  # bwrap's cgroups, where it could make them
        base = Path("/sys/fs/cgroup", controller)
        if base.exists():
            assert not list(base.rglob(f"genetic-instruct-{left['pid']}-*"))
