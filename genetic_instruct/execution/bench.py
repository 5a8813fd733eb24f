"""Sandbox throughput: executions per second (and CPU per job) of one small job set.

Used by ``benchmarks/sandbox_throughput.py`` and ``genetic-instruct sandbox bench``. The
paths: one ``docker run`` per job (the naive baseline), bare ``fork`` in warm interpreters
(the ceiling: no isolation, no protocol, no limits), and our executors.
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from genetic_instruct.execution import ExecutorUnavailable, make_executor
from genetic_instruct.execution.base import ExecJob
from genetic_instruct.execution.docker import DEFAULT_IMAGE, engine_version, image_exists

# Small, MBPP-like problems: what a generation of the evolution loop mostly runs.
PROBLEMS = [
    ("def add(a, b):\n    return a + b\n", ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]),
    ("def is_even(n):\n    return n % 2 == 0\n", ["assert is_even(4)", "assert not is_even(7)"]),
    ("def rev(s):\n    return s[::-1]\n", ["assert rev('abc') == 'cba'", "assert rev('') == ''"]),
    ("def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n"
     "    return a\n", ["assert fib(10) == 55", "assert fib(1) == 1", "assert fib(0) == 0"]),
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


# A warm forking server, stdlib only, run by any interpreter: fork per job, run the
# solution and each assert with no guard at all, report by exit status. Nothing more.
_CEILING = """
import json, os, sys
for name in json.loads(sys.argv[1]):
    __import__(name)
jobs = json.loads(sys.stdin.readline())
print(sum(os.times()[:4]), flush=True)
sys.stdin.readline()
for job in jobs:
    pid = os.fork()
    if pid == 0:
        ok = True
        try:
            ns = {}
            exec(job[0], ns)
            for test in job[1]:
                try:
                    exec(test, ns)
                except Exception:
                    ok = False
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    if os.waitpid(pid, 0)[1]:
        print("a job failed", file=sys.stderr)
print(sum(os.times()[:4]), flush=True)
"""
_ONE_JOB = ("import json, sys\njob = json.loads(sys.argv[1])\nns = {}\nexec(job['solution'], ns)\n"
            "for t in job['tests']:\n    exec(t, ns)\n")
_DOCKER_PROCESSES = {"dockerd", "containerd", "containerd-shim", "docker"}


@dataclass
class Measurement:
    """One path's speed: wall-clock jobs/s, and CPU ms per job over every process involved."""

    rate: float
    cpu_ms: float = float("nan")
    how: str = ""


def bare_fork(jobs: list[ExecJob], workers: int, python: str = sys.executable,
              preload: tuple[str, ...] = ()) -> Measurement:
    """``workers`` warm forking servers (``python``, having imported ``preload``)."""
    shares = [[[j.solution, j.tests] for j in jobs[i::workers]] for i in range(workers)]
    servers = [subprocess.Popen([python, "-I", "-c", _CEILING, json.dumps(list(preload))],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for _ in shares]
    for server, share in zip(servers, shares):
        server.stdin.write(json.dumps(share) + "\n")
        server.stdin.flush()
    cpu = -sum(float(server.stdout.readline()) for server in servers)
    started = time.perf_counter()
    for server in servers:
        server.stdin.write("go\n")
        server.stdin.flush()
    cpu += sum(float(server.stdout.readline()) for server in servers)
    elapsed = time.perf_counter() - started
    for server in servers:
        server.stdin.close()
        server.wait()
    return Measurement(len(jobs) / elapsed, cpu / len(jobs) * 1000,
                       f"{python}{' + preload' if preload else ''}")


def ceiling(jobs: list[ExecJob], workers: int) -> Measurement:
    """The strictest ceiling: the best bare-fork rate (and the least CPU per job) over our
    interpreter and the system's, with and without the runner's preloaded modules."""
    from genetic_instruct.execution.runner import PRELOAD
    pythons = dict.fromkeys(p for p in (sys.executable, "/usr/bin/python3") if os.path.exists(p))
    runs = [bare_fork(jobs, workers, python, preload)
            for python in pythons for preload in ((), PRELOAD)]
    best = max(runs, key=lambda m: m.rate)
    return Measurement(best.rate, min(m.cpu_ms for m in runs), best.how)


def docker_run(jobs: list[ExecJob], image: str, workers: int) -> Measurement:
    """One ``docker run --rm`` per job (``workers`` at a time)."""
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
    return Measurement(len(jobs) / elapsed)


def _processes_cpu(names: set[str]) -> float:
    """CPU seconds used so far by the live processes called ``names`` (Docker's daemons)."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    comm, _, rest = handle.read().rpartition(")")
                if comm.partition("(")[2] in names:
                    total += sum(int(x) for x in rest.split()[11:13])
            except (OSError, ValueError):
                pass
    return total / os.sysconf("SC_CLK_TCK")


def executor_speed(executor, jobs: list[ExecJob], warmup: int = 20) -> Measurement:
    """A warm executor over ``jobs``: wall rate, and CPU per job counted in the sandboxes
    (runner and jobs), in Docker's daemons and CLI (for docker), and in this process."""
    executor.run(jobs[:warmup])
    daemons = _DOCKER_PROCESSES if executor.name == "docker" else set()
    before = (executor.pool.cpu_seconds(), _processes_cpu(daemons), resource.getrusage(
        resource.RUSAGE_SELF))
    started = time.perf_counter()
    results = executor.run(jobs)
    elapsed = time.perf_counter() - started
    after = (executor.pool.cpu_seconds(), _processes_cpu(daemons), resource.getrusage(
        resource.RUSAGE_SELF))
    bad = [r for r in results if not r.passed]
    if bad:
        raise RuntimeError(f"{executor.name}: {len(bad)} benchmark jobs did not pass: {bad[0]}")
    client = (after[2].ru_utime + after[2].ru_stime) - (before[2].ru_utime + before[2].ru_stime)
    cpu = (after[0] - before[0]) + (after[1] - before[1]) + client
    return Measurement(len(jobs) / elapsed, cpu / len(jobs) * 1000)


def describe_machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, "
            f"load average {load:.2f} at start")


def measure(jobs: int, docker_run_jobs: int, workers: int, rounds: int = 2,
            executors: tuple[str, ...] = ("docker", "bwrap", "local"),
            ) -> dict[str, Measurement | str]:
    """Every path, the fast ones interleaved over ``rounds`` (best of each kept, so that a
    burst of load elsewhere hurts them alike); a path that cannot run says why."""
    work = job_set(jobs)
    opened, skipped = {}, {}
    for name in executors:
        extra = {"acknowledge_unsafe": True} if name == "local" else {}
        try:
            opened[name] = make_executor(name, workers=workers, recycle_after=10 ** 9, **extra)
        except ExecutorUnavailable as exc:
            skipped[name] = f"skipped: {exc}"
    samples: dict[str, list[Measurement]] = {"bare fork (ceiling)": []}
    try:
        for _ in range(rounds):
            samples["bare fork (ceiling)"].append(ceiling(work, workers))
            for name, executor in opened.items():
                samples.setdefault(f"{name} executor", []).append(executor_speed(executor, work))
    finally:
        for executor in opened.values():
            executor.close()
    found: dict[str, Measurement | str] = {}
    for key, runs in samples.items():
        best = max(runs, key=lambda m: m.rate)
        found[key] = Measurement(best.rate, min(m.cpu_ms for m in runs), best.how)
    found.update({f"{name} executor": why for name, why in skipped.items()})
    if docker_run_jobs <= 0:
        found["docker run per job"] = "skipped: not asked for"
    elif engine_version() and image_exists(DEFAULT_IMAGE):
        found["docker run per job"] = docker_run(job_set(docker_run_jobs), DEFAULT_IMAGE, workers)
    else:
        found["docker run per job"] = "skipped: no Docker engine or image"
    return found


def report(found: dict[str, Measurement | str], jobs: int, workers: int) -> str:
    """Markdown: rates, CPU per job and the ratios against the ceiling and docker run."""
    top, naive = found["bare fork (ceiling)"], found.get("docker run per job")
    lines = [f"Measured {datetime.date.today()} with {jobs} jobs per path and round "
             f"({describe_machine()}, {workers} workers).", "",
             "| path | executions/s | vs bare fork | vs docker run per job | CPU ms per job "
             "| CPU-bound rate on this machine | vs bare fork (by CPU) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    cores = os.cpu_count() or 1
    for name, m in found.items():
        if isinstance(m, str):
            lines.append(f"| {name} | {m} | | | | | |")
            continue
        vs_run = f"{m.rate / naive.rate:,.0f}x" if isinstance(naive, Measurement) else "-"
        if m.cpu_ms == m.cpu_ms:  # not NaN
            cpu = (f"{m.cpu_ms:.2f} | {cores / m.cpu_ms * 1000:,.0f} | "
                   f"{top.cpu_ms / m.cpu_ms:.0%}")
        else:
            cpu = "- | - | -"
        lines.append(f"| {name} | {m.rate:,.0f} | {m.rate / top.rate:.0%} | {vs_run} | {cpu} |")
    lines += ["", f"Ceiling: the best of our interpreter and the system's, with and without the "
              f"runner's preloaded modules (fastest: {top.how})."]
    pool = found.get("docker executor")
    if isinstance(pool, Measurement) and isinstance(naive, Measurement):
        lines += ["", f"Targets: Docker pool >= 40% of the ceiling: {pool.rate / top.rate:.0%} by "
                  f"wall clock, {top.cpu_ms / pool.cpu_ms:.0%} by CPU per job; >= 100x docker "
                  f"run per job: {pool.rate / naive.rate:,.0f}x."]
    return "\n".join(lines)
