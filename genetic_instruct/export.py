"""Export a run's accepted samples as a Code SFT dataset (JSONL or Parquet)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .individual import Individual
from .store import RunStore

FORMATS = ("jsonl", "parquet")


def assistant_answer(ind: Individual) -> str:
    return f"```python\n{ind.solution.rstrip()}\n```"


def sft_row(ind: Individual) -> dict[str, Any]:
    """One training row: the chat pair plus everything that explains it."""
    return {
        "id": ind.id,
        "messages": [
            {"role": "user", "content": ind.instruction},
            {"role": "assistant", "content": assistant_answer(ind)},
        ],
        "instruction": ind.instruction,
        "solution": ind.solution,
        "tests": list(ind.tests),
        "entry_point": ind.entry_point,
        "fitness": {name: rec.value for name, rec in ind.fitness.items()},
        "fitness_detail": {name: {"passed": rec.passed, **rec.detail}
                           for name, rec in ind.fitness.items()},
        "score": ind.value,
        "lineage": {
            "parents": list(ind.lineage.parents),
            "operator": ind.lineage.operator,
            "heuristic": ind.lineage.heuristic,
            "generation": ind.lineage.generation,
            "colony": ind.lineage.colony,
        },
    }


def write_rows(rows: list[dict[str, Any]], out: Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if fmt == "jsonl":
        with tmp.open("w") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        nested = ("lineage", "fitness", "fitness_detail")  # free-form dicts: JSON strings
        table = pa.Table.from_pylist([
            dict(r, **{k: json.dumps(r[k], ensure_ascii=False) for k in nested if k in r})
            for r in rows])
        pq.write_table(table, tmp)
    tmp.replace(out)
    return out


def export_run(run: str | Path, out: str | Path, fmt: str = "jsonl") -> tuple[Path, int]:
    store = RunStore(run)
    if not store.exists():
        raise FileNotFoundError(f"no run at {run}")
    rows = [sft_row(ind) for ind in store.accepted()]
    return write_rows(rows, Path(out), fmt), len(rows)
