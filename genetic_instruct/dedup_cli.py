"""``genetic-instruct dedup``: drop exact and near-duplicate rows from a JSONL or Parquet file.

Mounted by the main CLI (``app.command("dedup")(dedup_cli.dedup)``); also runs alone as
``python -m genetic_instruct.dedup_cli IN --out OUT``.

The input's format follows its extension (``.jsonl``/``.json``: one JSON object per line;
``.parquet``), and so does the output's. Kept rows keep their order and, where the two
formats are the same, their exact content (JSONL lines are copied byte for byte, Parquet
rows keep their schema). Across formats: JSONL to Parquet encodes the free-form nested
columns as export.py does (JSON strings); Parquet to JSONL writes the rows as Parquet
holds them. The report (counts, parameters, seconds per stage, the largest
clusters with their member ids) goes to ``OUT.dedup.json``. One progress line per stage
goes to stderr; bad input is one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from .quality.dedup import (
    FIELD_COLUMNS,
    FIELDS,
    KEEPS,
    MAX_CLUSTERS,
    MAX_MEMBERS,
    THRESHOLD,
    VERIFY,
    build_report,
    dedup_texts,
    row_score,
)

JSONL = (".jsonl", ".json")
PARQUET = (".parquet",)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


class DedupInputError(ValueError):
    """Bad input or options; one line saying why."""


@dataclass
class Table:
    """What was read: per row its id, the text columns asked for, its score; and how to
    write a subset of the rows back."""

    fmt: str
    n: int
    ids: list[Any]
    columns: list[list[str]]
    scores: list[float] | None
    source: Any  # JSONL: the raw lines; Parquet: the pyarrow table


def fmt_of(path: Path, what: str) -> str:
    suffix = path.suffix.lower()
    if suffix in JSONL:
        return "jsonl"
    if suffix in PARQUET:
        return "parquet"
    raise DedupInputError(f"{what} {path}: unknown extension {path.suffix or '(none)'!r}; "
                          "use .jsonl or .parquet")


def report_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".dedup.json")


def read_table(path: Path, field: str, keep: str, score: str) -> Table:
    if not path.is_file():
        raise DedupInputError(f"no such file: {path}")
    fmt = fmt_of(path, "input")
    return (_read_jsonl if fmt == "jsonl" else _read_parquet)(path, field, keep, score)


def _read_jsonl(path: Path, field: str, keep: str, score: str) -> Table:
    names = FIELD_COLUMNS[field]
    lines, ids, scores = [], [], []
    columns: list[list[str]] = [[] for _ in names]
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DedupInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError as exc:
                raise DedupInputError(f"{path}:{number}: not JSON ({exc})") from None
            if not isinstance(row, dict):
                raise DedupInputError(f"{path}:{number}: expected a JSON object per line")
            for col, name in zip(columns, names):
                value = row.get(name)
                if not isinstance(value, str):
                    raise DedupInputError(f"{path}:{number}: {name!r} is "
                                          f"{'missing' if value is None else 'not text'}")
                col.append(value)
            ids.append(row.get("id", len(lines)))
            if keep == "score":
                scores.append(row_score(row, score))
            lines.append(raw if raw.endswith(b"\n") else raw + b"\n")
    return Table("jsonl", len(lines), ids, columns, scores if keep == "score" else None, lines)


def _read_parquet(path: Path, field: str, keep: str, score: str) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DedupInputError(f"cannot read {path} as Parquet: {exc}") from None
    columns = []
    for name in FIELD_COLUMNS[field]:
        if name not in table.column_names:
            raise DedupInputError(f"{path}: no column {name!r}")
        values = table.column(name).to_pylist()
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise DedupInputError(f"{path}: row {i}: {name!r} is "
                                      f"{'missing' if v is None else 'not text'}")
        columns.append(values)
    n = table.num_rows
    ids = table.column("id").to_pylist() if "id" in table.column_names else list(range(n))
    scores = None
    if keep == "score":
        head = score.split(".")[0]
        if head not in table.column_names:
            scores = [float("-inf")] * n
        else:
            scores = [row_score({head: v}, score) for v in table.column(head).to_pylist()]
    return Table("parquet", n, ids, columns, scores, table)


def write_kept(table: Table, kept: list[int], out_path: Path) -> None:
    fmt = fmt_of(out_path, "output")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    if fmt == "jsonl":
        with tmp.open("wb") as f:
            if table.fmt == "jsonl":
                f.writelines(table.source[i] for i in kept)
            else:
                for row in table.source.take(kept).to_pylist():
                    f.write(json.dumps(row, ensure_ascii=False, default=str).encode() + b"\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if table.fmt == "parquet":
            sub = table.source.take(pa.array(kept, type=pa.int64()))
        else:
            from .export import arrow_table

            rows = [json.loads(table.source[i]) for i in kept]
            try:
                sub = arrow_table(rows)
            except (pa.ArrowException, TypeError, ValueError) as exc:
                raise DedupInputError(f"cannot write these rows as Parquet: {exc}") from None
        pq.write_table(sub, tmp)
    tmp.replace(out_path)


def dedup_file(in_path: Path, out_path: Path, threshold: float = THRESHOLD,
               field: str = "instruction", keep: str = "first", score: str = "score",
               verify: str = "exact", progress: Callable[[str], None] | None = None,
               ) -> tuple[dict[str, Any], Path]:
    """Read, deduplicate, write the kept rows and the report; returns (report, its path)."""
    say = progress or (lambda _m: None)
    if not 0.0 < threshold <= 1.0:
        raise DedupInputError(f"--threshold must lie in (0, 1] (got {threshold})")
    for name, value, allowed in (("--field", field, FIELDS), ("--keep", keep, KEEPS),
                                 ("--verify", verify, VERIFY)):
        if value not in allowed:
            raise DedupInputError(f"{name} must be one of: {', '.join(allowed)} "
                                  f"(got {value!r})")
    fmt_of(out_path, "output")  # fail before the work
    if in_path.resolve() == out_path.resolve():
        raise DedupInputError("--out must differ from the input file")
    t0 = time.perf_counter()
    table = read_table(in_path, field, keep, score)
    if keep == "score" and table.n and all(s == float("-inf") for s in table.scores):
        raise DedupInputError(f"--keep score: no row has a numeric {score!r}")
    read_s = time.perf_counter() - t0
    say(f"dedup: read {table.n} rows from {in_path} {read_s:.2f} s")
    result = dedup_texts(table.columns, threshold, scores=table.scores, verify=verify,
                         names=FIELD_COLUMNS[field], progress=say)
    t1 = time.perf_counter()
    report = build_report(result, table.ids, field=field, keep=keep,
                          score=score if keep == "score" else None,
                          max_clusters=MAX_CLUSTERS, max_members=MAX_MEMBERS)
    try:
        write_kept(table, result.kept.tolist(), out_path)
        write_s = time.perf_counter() - t1
        say(f"dedup: wrote {len(result.kept)} rows to {out_path} {write_s:.2f} s")
        seconds = report["seconds"]
        seconds.update(read=round(read_s, 4), write=round(write_s, 4))
        seconds["total"] = round(sum(v for k, v in seconds.items() if k != "total"), 4)
        report = {"input": str(in_path), "output": str(out_path), **report}
        path = report_path(out_path)
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    except OSError as exc:
        raise DedupInputError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    return report, path


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(2)


def dedup(
    in_path: Path = typer.Argument(..., metavar="IN", help="Rows: .jsonl or .parquet."),
    out_path: Path = typer.Option(..., "--out", "-o",
                                  help="Kept rows: .jsonl or .parquet (report: OUT.dedup.json)."),
    threshold: float = typer.Option(THRESHOLD, "--threshold",
                                    help="Near duplicates: word 3-shingle Jaccard >= this."),
    field: str = typer.Option("instruction", "--field",
                              help="instruction, solution or both (either one matching)."),
    keep: str = typer.Option("first", "--keep",
                             help="Per cluster keep the first row, or the best --score."),
    score: str = typer.Option("score", "--score",
                              help="With --keep score: the column (dotted path into nested "
                                   "columns, e.g. fitness.novelty); missing counts as lowest."),
    verify: str = typer.Option("exact", "--verify",
                               help="exact: borderline estimates get their exact Jaccard; "
                                    "estimate: the MinHash estimate alone (faster)."),
) -> None:
    """Drop exact and near-duplicate rows (MinHash + LSH), keeping one row per cluster."""
    try:
        report, path = dedup_file(in_path, out_path, threshold, field, keep, score, verify,
                                  progress=lambda m: print(m, file=sys.stderr, flush=True))
    except DedupInputError as exc:
        _fail(str(exc))
    c = report["counts"]
    out.print(f"kept {c['kept']} of {c['rows']} rows (exact duplicates {c['exact']}, near "
              f"duplicates {c['near']}) in {out_path}; report: {path}")


app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Drop exact and near-duplicate rows.")
app.command("dedup")(dedup)

if __name__ == "__main__":  # pragma: no cover
    app()
