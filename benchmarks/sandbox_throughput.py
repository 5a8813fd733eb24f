"""Sandbox throughput in one run: executions/s of the same small job set through
(a) one ``docker run`` per job, (b) bare ``fork`` in warm interpreters (the ceiling),
(c) our Docker pool, (d) our bwrap executor (and the local executor for reference),
with the ratios the sandbox issue asks for (pool >= 40% of the ceiling, >= 100x docker run).

    python benchmarks/sandbox_throughput.py [--jobs 2000] [--docker-run-jobs 16]
        [--workers N] [--write-docs]

``--write-docs`` replaces the "## Sandbox throughput" section of docs/performance.md.
Paths whose engine is missing are reported as skipped. Keep it short on shared machines.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from pathlib import Path

from genetic_instruct.execution import ExecutorUnavailable, make_executor
from genetic_instruct.execution._pool import default_workers
from genetic_instruct.execution.bench import (bare_fork_rate, describe_machine, docker_run_rate,
                                              executor_rate, job_set)
from genetic_instruct.execution.docker import DEFAULT_IMAGE, engine_version, image_exists

DOCS = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
HEADING = "## Sandbox throughput"


def measure(jobs: int, docker_run_jobs: int, workers: int, rounds: int) -> dict[str, float | str]:
    """Executions/s of each path (best of ``rounds`` for the fast paths), or why it was skipped."""
    work = job_set(jobs)
    rates: dict[str, float | str] = {}
    rates["bare fork (ceiling)"] = max(bare_fork_rate(work, workers) for _ in range(rounds))
    for name in ("docker", "bwrap", "local"):
        extra = {"acknowledge_unsafe": True} if name == "local" else {}
        try:
            with make_executor(name, workers=workers, **extra) as executor:
                rates[f"{name} executor"] = max(executor_rate(executor, work) for _ in range(rounds))
        except ExecutorUnavailable as exc:
            rates[f"{name} executor"] = f"skipped: {exc}"
    if engine_version() and image_exists(DEFAULT_IMAGE):
        rates["docker run per job"] = docker_run_rate(job_set(docker_run_jobs), DEFAULT_IMAGE, workers)
    else:
        rates["docker run per job"] = "skipped: no Docker engine or image"
    return rates


def report(rates: dict[str, float | str], jobs: int, workers: int) -> str:
    """Markdown: a table of rates and the ratios against the ceiling and docker run."""
    ceiling, naive = rates.get("bare fork (ceiling)"), rates.get("docker run per job")
    lines = [f"Measured {datetime.date.today()} by `python benchmarks/sandbox_throughput.py "
             f"--jobs {jobs}` ({describe_machine()}, {workers} workers).", "",
             "| path | executions/s | vs bare fork | vs docker run per job |",
             "| --- | ---: | ---: | ---: |"]
    for name, rate in rates.items():
        if isinstance(rate, str):
            lines.append(f"| {name} | {rate} | | |")
            continue
        vs_fork = f"{rate / ceiling:.0%}" if isinstance(ceiling, float) else "-"
        vs_run = f"{rate / naive:.0f}x" if isinstance(naive, float) else "-"
        lines.append(f"| {name} | {rate:,.0f} | {vs_fork} | {vs_run} |")
    pool = rates.get("docker executor")
    if isinstance(pool, float) and isinstance(ceiling, float) and isinstance(naive, float):
        lines += ["", f"Targets: Docker pool >= 40% of the ceiling: {pool / ceiling:.0%} "
                  f"({'met' if pool >= 0.4 * ceiling else 'NOT met'}); >= 100x docker run per "
                  f"job: {pool / naive:.0f}x ({'met' if pool >= 100 * naive else 'NOT met'})."]
    return "\n".join(lines)


def write_docs(body: str) -> None:
    """Replace (or append) only the Sandbox throughput section of docs/performance.md."""
    text = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    section = f"{HEADING}\n\n{body}\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--docker-run-jobs", type=int, default=16)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    rates = measure(args.jobs, args.docker_run_jobs, args.workers, args.rounds)
    body = report(rates, args.jobs, args.workers)
    print(body)
    if args.write_docs:
        write_docs(body)
        print(f"\nwrote {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
