"""Check an exported dataset again, from scratch: static checks and a fresh execution.

Each row's tests must be assert statements that call the entry point and do not redefine
it, and must all pass against the row's solution when run again in a separate process
(through the executor, never in this process).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .execution.base import ExecJob, Executor
from .fitness.syntax import SyntaxFitness
from .individual import Individual


@dataclass
class RowVerdict:
    id: str
    ok: bool
    reason: str = ""


def read_dataset(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"no dataset at {path}")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def verify_rows(rows: list[dict], executor: Executor, timeout_s: float = 10.0,
                min_asserts: int = 3) -> list[RowVerdict]:
    syntax = SyntaxFitness(min_asserts=min_asserts)
    verdicts: list[RowVerdict] = []
    jobs = []
    for row in rows:
        ind = Individual(id=row["id"], instruction=row["instruction"],
                         entry_point=row["entry_point"], solution=row["solution"],
                         tests=list(row["tests"]))
        problem = syntax.problem(ind)
        verdicts.append(RowVerdict(ind.id, problem is None, problem or ""))
        jobs.append(ExecJob(id=ind.id, solution=ind.solution, tests=ind.tests,
                            timeout_s=timeout_s))
    for verdict, res in zip(verdicts, executor.run(jobs)):
        if verdict.ok and not res.passed:
            verdict.ok = False
            verdict.reason = f"{res.status} ({res.tests_passed}/{res.tests_total} asserts passed)"
    return verdicts
