"""Check an exported dataset again, from scratch: static checks and a fresh execution.

Each row's tests must be assert statements that call the entry point and do not redefine
it, and must all pass against the row's solution when run again in a separate process
(through the executor, never in this process).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .execution.base import Executor
from .fitness.base import evaluate
from .fitness.execution import ExecutionFitness
from .fitness.syntax import SyntaxFitness
from .individual import REJECTED, Individual


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
    """The loop's own gates, again: ``syntax``, then ``execution`` in the sandbox."""
    individuals = [Individual(id=row["id"], instruction=row["instruction"],
                              entry_point=row["entry_point"], solution=row["solution"],
                              tests=list(row["tests"])) for row in rows]
    evaluate(individuals, [SyntaxFitness(min_asserts=min_asserts),
                           ExecutionFitness(executor, timeout_s=timeout_s)])
    return [RowVerdict(ind.id, ind.status != REJECTED, ind.reason or "") for ind in individuals]
