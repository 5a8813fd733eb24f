"""``genetic-instruct decontam``: drop the corpus rows that match a benchmark problem.

    genetic-instruct decontam corpus.jsonl --out clean.jsonl            # HumanEval + MBPP
    genetic-instruct decontam corpus.parquet --out clean.parquet -b mbpp -b my_bench.jsonl

Reads exported rows (JSONL, .jsonl.gz or Parquet: ``instruction``, ``solution``, ``tests``,
``id``; rows with only ``messages`` work too), checks each against the benchmarks with
:func:`genetic_instruct.quality.decontam.decontaminate` (word n-grams, normalized-code
shingles, normalized statement sets), writes the clean rows to OUT in the format of its
extension, and the report beside it (``OUT`` with the suffix ``.report.json``). Prints one
summary line. A bad input, output or benchmark is one line on stderr and exit code 2.

The main CLI mounts the command function: ``app.command("decontam")(decontam)``; the module
also runs alone as ``python -m genetic_instruct.decontam_cli``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from .quality.decontam import (
    Benchmark,
    BenchmarkUnavailable,
    Decontaminator,
    N,
    Settings,
    load_benchmark,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BENCHMARKS = ("humaneval", "mbpp")
ROW_FIELDS = ("instruction", "solution", "tests", "messages")
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


class InputError(Exception):
    """A corpus file that cannot be read or written; the message says why, in one line."""


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def file_format(path: Path) -> str:
    """``jsonl`` or ``parquet``, by the file's extension."""
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    raise InputError(f"{path}: unknown format; use a .jsonl, .jsonl.gz or .parquet file")


def report_path(path: Path) -> Path:
    """Where the report of OUT goes: ``clean.jsonl`` -> ``clean.report.json``."""
    return path.with_suffix(".report.json")


def read_rows(path: Path) -> tuple[list[dict[str, Any]], Any]:
    """(rows, the Arrow table when the file is Parquet, else None)."""
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    fmt = file_format(path)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        return table.to_pylist(), table
    rows = []
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path}:{lineno}: not a JSON object")
                rows.append(row)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    return rows, None


def check_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Every row must hold one of ``ROW_FIELDS``: otherwise it is not an exported corpus."""
    for i, row in enumerate(rows, 1):
        if not any(isinstance(row.get(k), (str, list)) for k in ROW_FIELDS):
            raise InputError(f"{path}: row {i} has none of the fields "
                             f"{', '.join(ROW_FIELDS)} (an exported corpus row has them)")


def write_rows(path: Path, rows: list[dict[str, Any]], kept: list[int], table: Any) -> None:
    """The kept rows, in OUT's format (a Parquet input keeps its schema)."""
    fmt = file_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            if table is not None:
                clean = table.take(pa.array(kept, type=pa.int64()))
            else:  # free-form dicts (lineage, fitness) as JSON strings, as the export does
                clean = pa.Table.from_pylist([
                    {k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v
                     for k, v in rows[i].items()} for i in kept])
            pq.write_table(clean, tmp)
        else:
            opener = gzip.open if path.name.lower().endswith(".gz") else open
            with opener(tmp, "wt", encoding="utf-8") as f:
                for i in kept:
                    f.write(json.dumps(rows[i], ensure_ascii=False, default=str) + "\n")
        tmp.replace(path)
    except Exception as exc:  # Arrow raises many types for rows it cannot type
        tmp.unlink(missing_ok=True)
        if isinstance(exc, (OSError, ValueError, TypeError)) or "arrow" in type(exc).__module__:
            raise InputError(f"{path}: cannot write ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        raise


def load_benchmarks(specs: list[str], n: int) -> list[Benchmark]:
    """``humaneval``, ``mbpp`` or paths; MBPP is looked up beside the repository."""
    return [load_benchmark(spec, ROOT, n) for spec in specs]


def decontam(
    corpus: Annotated[Path, typer.Argument(
        metavar="IN", help="Exported corpus: JSONL (.jsonl, .jsonl.gz) or Parquet.")],
    out_path: Annotated[Path, typer.Option(
        "--out", "-o", help="Clean rows, written in the format of the extension; the report "
        "goes beside it (OUT with the suffix .report.json).")],
    benchmark: Annotated[list[str] | None, typer.Option(
        "--benchmark", "-b", help="humaneval, mbpp or a JSONL/JSON/Parquet file of problems "
        "(repeatable); default: humaneval and mbpp (../shared/benchmarks/mbpp.jsonl).")] = None,
    ngram: Annotated[int, typer.Option(
        "--ngram", "-n", min=4, help="Word n-gram length.")] = N,
    shingle: Annotated[int, typer.Option(
        "--shingle", min=10, help="Characters per shingle of normalized code.")] = Settings.shingle,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", min=1, help="Processes checking rows (forked; they share the "
        "benchmark index).")] = 1,
) -> None:
    """Drop corpus rows that match a benchmark problem (n-grams, normalized code)."""
    try:
        if out_path.resolve() == corpus.resolve():
            raise InputError(f"--out {out_path} is the input file; write the clean rows "
                             "elsewhere")
        file_format(out_path)
        rows, table = read_rows(corpus)
        check_rows(corpus, rows)
        benches = load_benchmarks(list(benchmark or DEFAULT_BENCHMARKS), ngram)
    except (InputError, BenchmarkUnavailable) as exc:
        _fail(str(exc))
    index = Decontaminator(benches, Settings(n=ngram, shingle=shingle))
    order = {id(row): i for i, row in enumerate(rows)}
    clean, report = index.run(rows, jobs)
    kept = [order[id(row)] for row in clean]
    report = {"input": str(corpus), "output": str(out_path), **report}
    report_file = report_path(out_path)
    try:
        write_rows(out_path, rows, kept, table)
        report_file.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    except InputError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{report_file}: cannot write ({exc})")
    per = ", ".join(f"{name} {k}" for name, k in sorted(report["flagged_by_benchmark"].items()))
    out.print(f"decontam: {report['checked']} rows, {report['flagged']} flagged"
              f"{f' ({per})' if per else ''}, {report['kept']} kept -> {out_path}; "
              f"report {report_file} ({report['rows_per_s']} rows/s)", markup=False)


app = typer.Typer(add_completion=False)
app.command()(decontam)

if __name__ == "__main__":  # pragma: no cover
    app()
