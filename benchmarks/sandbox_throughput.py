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
import re
import sys
from pathlib import Path

from genetic_instruct.execution._pool import default_workers
from genetic_instruct.execution.bench import measure, report

DOCS = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
HEADING = "## Sandbox throughput"
NOTES = """
What each path does per job:

- *docker run per job*: a fresh container (`docker run --rm --network none`), Python
  started cold, the solution and asserts run, the container removed.
- *bare fork*: warm forking servers (one per worker) fork, run the solution and each assert
  with `exec`, and report by exit status: no isolation, no limits, no protocol. The ceiling.
- *docker executor*: one warm container per worker (no network, read-only root, non-root,
  no capabilities, pids/memory/CPU limits); jobs travel in batches of up to 16 over the
  attached stdin/stdout; the runner forks per job with a new session and rlimits, runs the
  solution and each assert through its anti-gaming harness, enforces the wall clock, kills
  every leftover process and wipes the scratch directories after each job.
- *bwrap executor*: the same runner in a bubblewrap sandbox per worker.
- *local executor*: the same runner as a plain host process (not a sandbox).

*CPU ms per job* counts every process involved: for the executors the runner and its jobs
(as the runner reports them), Docker's daemons and CLI, and the client; for the ceiling the
forking servers and their children. It depends far less than executions/s on what else
runs on the machine, so the CPU ratio is the steadier of the two.

How the pool gets there:

- Batching: each message through `docker run -i`'s attach costs about 0.5 ms of dockerd
  CPU, as much as a small job; one message per 16 jobs makes it negligible.
- After each `fork`, every page the runner or the job writes to costs a page fault (the
  pages are shared copy-on-write). So the runner parses and compiles a batch's tests
  before its first fork, sets up pipes and the poller before each fork, checks for
  leftover processes with one `kill(-1, 0)` instead of listing /proc, and does not wake up
  for the job's report lines (they wait in their pipe). Per job the runner takes about
  140-220 page faults where the bare loop takes about 60: that, the test harness and the
  new session and rlimits are the remaining gap.

Noise: on this shared 2-core machine (load average 4-6 from other work during these runs)
the Docker pool measured between 33% and 58% of the ceiling by wall clock over a dozen
runs; with all the optimisations above, two runs gave 41% and 39% by CPU per job and 125x
and 119x a `docker run` per job. The containers also share one CPU weight (the `docker`
cgroup) against every other busy process on the host, which lowers their wall-clock share
under load. Compare ratios within one run.
"""


def write_docs(body: str) -> None:
    """Replace (or append) only the Sandbox throughput section of docs/performance.md."""
    text = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    section = f"{HEADING}\n\n{body}\n{NOTES}"
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
