"""Sandbox throughput: executions per second of one small job set through several paths.

Used by ``benchmarks/sandbox_throughput.py`` and ``genetic-instruct sandbox bench``. The
paths: one ``docker run`` per job (the naive baseline), bare ``fork`` in warm interpreters
(the ceiling: no isolation, no protocol, no limits), and our executors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from genetic_instruct.execution.base import ExecJob

# Small, MBPP-like problems: what a generation of the evolution loop mostly runs.
PROBLEMS = [
    ("def add(a, b):\n    return a + b\n", ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]),
    ("def is_even(n):\n    return n % 2 == 0\n", ["assert is_even(4)", "assert not is_even(7)"]),
    ("def rev(s):\n    return s[::-1]\n", ["assert rev('abc') == 'cba'", "assert rev('') == ''"]),
    ("def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
     ["assert fib(10) == 55", "assert fib(1) == 1", "assert fib(0) == 0"]),
    ("import math\ndef hyp(a, b):\n    return math.hypot(a, b)\n", ["assert hyp(3, 4) == 5.0"]),
    ("def count_vowels(s):\n    return sum(c in 'aeiou' for c in s.lower())\n",
     ["assert count_vowels('Hello') == 2", "assert count_vowels('xyz') == 0"]),
    ("def uniq(xs):\n    return sorted(set(xs))\n", ["assert uniq([3, 1, 3, 2]) == [1, 2, 3]"]),
    ("def primes(n):\n    return [p for p in range(2, n) if all(p % d for d in range(2, p))]\n",
     ["assert primes(20) == [2, 3, 5, 7, 11, 13, 17, 19]"]),
]


def job_set(n: int) -> list[ExecJob]:
    """``n`` jobs cycling through PROBLEMS."""
    return [ExecJob(id=f"bench-{i}", solution=PROBLEMS[i % len(PROBLEMS)][0],
                    tests=list(PROBLEMS[i % len(PROBLEMS)][1])) for i in range(n)]


def _run_plain(job: ExecJob) -> bool:
    """What the ceiling's child does: the solution, then each assert; no guard at all."""
    ns: dict = {}
    exec(job.solution, ns)  # noqa: S102 - the benchmark's own trusted jobs
    ok = True
    for test in job.tests:
        try:
            exec(test, ns)  # noqa: S102
        except Exception:  # noqa: BLE001
            ok = False
    return ok


def bare_fork_rate(jobs: list[ExecJob], workers: int) -> float:
    """Jobs/s of ``workers`` warm forking servers: fork, run, exit status, nothing else."""
    shares = [jobs[i::workers] for i in range(workers)]
    go_r, go_w = os.pipe()
    servers = []
    for share in shares:
        pid = os.fork()
        if pid == 0:  # a warm forking server
            try:
                os.close(go_w)
                os.read(go_r, 1)
                for job in share:
                    child = os.fork()
                    if child == 0:
                        os._exit(0 if _run_plain(job) else 1)
                    os.waitpid(child, 0)
            finally:
                os._exit(0)
        servers.append(pid)
    os.close(go_r)
    time.sleep(0.2)
    started = time.perf_counter()
    os.write(go_w, b"x" * workers)
    for pid in servers:
        os.waitpid(pid, 0)
    elapsed = time.perf_counter() - started
    os.close(go_w)
    return len(jobs) / elapsed


_ONE_JOB = ("import json, sys\njob = json.loads(sys.argv[1])\nns = {}\nexec(job['solution'], ns)\n"
            "for t in job['tests']:\n    exec(t, ns)\n")


def docker_run_rate(jobs: list[ExecJob], image: str, workers: int) -> float:
    """Jobs/s of one ``docker run --rm`` per job (``workers`` at a time)."""
    def one(job: ExecJob) -> int:
        payload = json.dumps({"solution": job.solution, "tests": job.tests})
        return subprocess.run(["docker", "run", "--rm", "--network", "none", "--log-driver",
                               "none", "--entrypoint", "python3", image, "-I", "-c", _ONE_JOB,
                               payload], capture_output=True, timeout=120).returncode
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        codes = list(pool.map(one, jobs))
    elapsed = time.perf_counter() - started
    if any(codes):
        raise RuntimeError(f"docker run baseline failed: exit codes {sorted(set(codes))}")
    return len(jobs) / elapsed


def executor_rate(executor, jobs: list[ExecJob], warmup: int = 20) -> float:
    """Jobs/s of a warm executor over ``jobs`` (after a short warm-up batch)."""
    executor.run(jobs[:warmup])
    started = time.perf_counter()
    results = executor.run(jobs)
    elapsed = time.perf_counter() - started
    bad = [r for r in results if not r.passed]
    if bad:
        raise RuntimeError(f"{executor.name}: {len(bad)} benchmark jobs did not pass: {bad[0]}")
    return len(jobs) / elapsed


def describe_machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, "
            f"load average {load:.2f} at start")
