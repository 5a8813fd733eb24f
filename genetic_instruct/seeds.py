"""Seed population loaders: the project's JSONL, any JSONL/Parquet with a field mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from .config import SeedsConfig
from .individual import ACCEPTED, Individual, Lineage, make_id

FIELDS = ("id", "instruction", "entry_point", "solution", "tests", "category", "difficulty")


class SeedError(Exception):
    """Seeds cannot be read; the message names the file and the problem."""


def read_rows(path: Path) -> Iterable[dict[str, Any]]:
    if not path.is_file():
        raise SeedError(f"seed file not found: {path}")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
        return
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SeedError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise SeedError(f"{path}:{lineno}: each line must be a JSON object")
            yield row


def row_to_individual(row: dict[str, Any], mapping: dict[str, str], where: str) -> Individual:
    def get(name: str, default: Any = None) -> Any:
        return row.get(mapping.get(name, name), default)

    instruction = get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        field = mapping.get("instruction", "instruction")
        raise SeedError(f"{where}: no instruction in field {field!r} (set seeds.mapping)")
    tests = get("tests") or []
    if isinstance(tests, str):
        tests = [t for t in tests.splitlines() if t.strip()]
    ind = Individual(
        id=str(get("id") or make_id("seed", instruction)),
        instruction=instruction.strip(),
        entry_point=get("entry_point") or "",
        solution=get("solution") or "",
        tests=list(tests),
        lineage=Lineage(operator="seed"),
        status=ACCEPTED,
    )
    ind.raw["category"] = get("category") or ""
    ind.raw["difficulty"] = get("difficulty") or ""
    return ind


def load_seeds(cfg: SeedsConfig, root: Path | None = None) -> list[Individual]:
    """Read, filter and cut the seed population described by ``cfg``."""
    path = Path(cfg.path)
    if not path.is_absolute() and root is not None and not path.exists():
        path = root / path
    seeds = []
    for i, row in enumerate(read_rows(path)):
        ind = row_to_individual(row, cfg.mapping, f"{path}: row {i + 1}")
        if cfg.difficulty and ind.raw["difficulty"] not in cfg.difficulty:
            continue
        if cfg.categories and ind.raw["category"] not in cfg.categories:
            continue
        seeds.append(ind)
    if cfg.limit:
        seeds = seeds[: cfg.limit]
    if not seeds:
        raise SeedError(f"{path}: no seed left after the filters in seeds:")
    ids = [s.id for s in seeds]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise SeedError(f"{path}: duplicate seed id {dup!r}")
    return seeds
