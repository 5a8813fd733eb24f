"""The `genetic-instruct` command line."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

from . import __version__
from .config import ConfigError, load_config
from .execution import ExecutorUnavailable
from .export import export_run
from .llm.base import BackendError
from .llm.embedded import ModelUnavailable
from .registry import UnknownName
from .seeds import SeedError
from .store import RunStore, StoreError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Grow verified synthetic coding data by evolution.")
console = Console(stderr=True)
out = Console()

USER_ERRORS = (ConfigError, StoreError, SeedError, UnknownName, ModelUnavailable,
               ExecutorUnavailable, BackendError, FileNotFoundError, ValueError)


def fail(msg: str) -> None:
    console.print(f"[red]error:[/red] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


class RichReporter:
    """One progress bar per LLM/evaluation phase, with ETA; a line per generation."""

    def __init__(self, progress: Progress, generations: int):
        self.progress = progress
        self.generations = generations
        self.task = None

    def phase(self, name: str, total: int) -> Callable[[int], None]:
        if self.task is not None:
            self.progress.remove_task(self.task)
        task = self.progress.add_task(name, total=max(total, 1))
        self.task = task
        started = time.perf_counter()
        done = [0]

        def tick(n: int) -> None:
            self.progress.advance(task, n)
            done[0] += n
            if done[0] >= total and not self.progress.console.is_terminal:
                # no live bars in a log file: one line per finished phase instead
                self.progress.console.print(
                    f"{name}: {total} in {time.perf_counter() - started:.1f}s", highlight=False)

        return tick

    def generation(self, row: dict[str, Any]) -> None:
        reasons = ", ".join(f"{k}: {v}" for k, v in list(row["reasons"].items())[:3])
        self.progress.console.print(
            f"generation {row['generation'] + 1}/{self.generations}: "
            f"{row['accepted']}/{row['proposed']} accepted, corpus {row['corpus']}, "
            f"{row['seconds']:.0f}s" + (f"  [dim](rejected: {reasons})[/dim]" if reasons else ""),
            highlight=False)


@app.callback()
def main(version: bool = typer.Option(False, "--version", help="Print the version.")) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit()


@app.command()
def evolve(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML run config."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run directory."),
    set_: List[str] = typer.Option([], "--set", help="Override: section.key=value"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="Run the colonies as Ray actors: auto, HOST:PORT, or "
        "local (a Ray instance in this process). Needs the ray extra."),
) -> None:
    """Evolve a population of coding instructions into a verified SFT corpus."""
    try:
        _evolve(config, out_dir, set_, resume, ray_address)
    except USER_ERRORS as exc:
        fail(str(exc))


def _evolve(config: Path | None, out_dir: Path, overrides: list[str], resume: bool,
            ray_address: str | None = None) -> None:
    from .assemble import check_names
    from .seeds import load_seeds

    cfg = load_config(config, overrides)
    store = RunStore(out_dir)
    resuming = resume and store.exists()
    if resume and not resuming:
        console.print(f"no run to resume at {out_dir}: starting a new one")
    check_names(cfg)
    root = config.parent.parent if config else None
    seeds = load_seeds(cfg.seeds, root=root)
    if resuming:
        store.open(cfg)
        state = store.latest_checkpoint()
        if state and "colony_states" in state and not ray_address:
            raise StoreError(f"{out_dir} was made with --ray-address: resume it with one")
        if state and _finished(cfg, state, store):
            console.print(f"{out_dir}: the run is already complete")
            _report(store)
            return
    if ray_address:
        from .distributed import run_with_ray

        with _progress() as progress:
            reporter = RichReporter(progress, cfg.evolution.max_generations)
            result = run_with_ray(cfg, store, seeds, ray_address, reporter, resuming)
    else:
        result = _run_here(cfg, store, seeds, out_dir, resuming)
    hits = sum(t.get("cached", 0) for t in result.tokens.values())
    calls = sum(t.get("calls", 0) for t in result.tokens.values())
    console.print(f"done: {result.generations} generations, {len(result.corpus)} accepted, "
                  f"{result.seconds:.0f}s ({result.llm_seconds:.0f}s in the LLM; "
                  f"{hits}/{calls} LLM calls answered from the cache)")
    _report(store)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=console, transient=False)


def _run_here(cfg, store: RunStore, seeds, out_dir: Path, resuming: bool):
    """The single-process loop: backends, executor and fitness functions in this process."""
    from .assemble import (cache_path, executor_from_config, make_backends, make_fitness,
                           needs_executor)
    from .evolution.loop import Evolution
    from .llm.meter import token_counts

    with ExitStack() as stack:
        executor = None
        if needs_executor(cfg):
            executor = executor_from_config(cfg)
            stack.callback(executor.close)
        if not resuming:
            store.create(cfg)
        console.print(f"loading backends ({', '.join(sorted(cfg.backends))}) ...")
        backends = make_backends(cfg, cache_path(cfg, out_dir))
        tokens = token_counts()
        fitness = make_fitness(cfg, executor, backends, tokens)
        for fn in fitness:
            if hasattr(fn, "close"):
                stack.callback(fn.close)
        progress = stack.enter_context(_progress())
        reporter = RichReporter(progress, cfg.evolution.max_generations)
        evo = Evolution(cfg, backends, fitness, seeds, store, reporter, tokens)
        return evo.run(resume=resuming)


def _finished(cfg, state: dict, store: RunStore) -> bool:
    corpus = sum(1 for c in store.accepted())
    return (state["generation"] + 1 >= cfg.evolution.max_generations
            or corpus >= cfg.evolution.target_size)


def _report(store: RunStore) -> None:
    path, n = export_run(store.path, store.path / "dataset.jsonl", "jsonl")
    _print_inspect(store)
    out.print(f"dataset: {path} ({n} samples)")


def _print_inspect(store: RunStore) -> None:
    state = store.latest_checkpoint() or {}
    logbook = state.get("logbook", [])
    gens = Table(title=f"run {store.path}")
    for col in ("generation", "proposed", "accepted", "corpus", "seconds"):
        gens.add_column(col, justify="right")
    for row in logbook:
        gens.add_row(str(row["generation"]), str(row["proposed"]), str(row["accepted"]),
                     str(row["corpus"]), f"{row['seconds']:.1f}")
    out.print(gens)
    per_op: dict[str, dict[str, int]] = {}
    reasons: dict[str, int] = {}
    for row in logbook:
        for op, counts in row["operators"].items():
            acc = per_op.setdefault(op, {"proposed": 0, "accepted": 0})
            acc["proposed"] += counts.get("proposed", 0)
            acc["accepted"] += counts.get("accepted", 0)
        for reason, n in row["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + n
    ops = Table(title="per operator")
    for col in ("operator", "proposed", "accepted", "rate"):
        ops.add_column(col, justify="right")
    for op, c in sorted(per_op.items()):
        rate = c["accepted"] / c["proposed"] if c["proposed"] else 0.0
        ops.add_row(op, str(c["proposed"]), str(c["accepted"]), f"{rate:.1%}")
    out.print(ops)
    if reasons:
        rt = Table(title="rejection reasons")
        rt.add_column("reason")
        rt.add_column("count", justify="right")
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            rt.add_row(reason, str(n))
        out.print(rt)
    _print_functions(store)
    tokens = state.get("tokens", {})
    if tokens:
        tt = Table(title="LLM calls per role (tokens paid; a cache hit costs none)")
        for col in ("role", "calls", "cache hits", "tokens in", "tokens out"):
            tt.add_column(col, justify="right")
        for role, t in sorted(tokens.items()):
            tt.add_row(role, str(t.get("calls", "-")), str(t.get("cached", 0)),
                       str(t["in"]), str(t["out"]))
        out.print(tt)


def function_stats(candidates) -> dict[str, dict[str, float]]:
    """Per fitness function: how many it scored, its mean value, how many passed it (where
    it decided), and how many candidates it rejected."""
    stats: dict[str, dict[str, float]] = {}
    for c in candidates:
        for name, rec in c.fitness.items():
            s = stats.setdefault(name, {"scored": 0, "sum": 0.0, "decided": 0, "passed": 0,
                                        "rejected": 0})
            s["scored"] += 1
            s["sum"] += rec.value
            if rec.passed is not None:
                s["decided"] += 1
                s["passed"] += bool(rec.passed)
        if c.reason and ":" in c.reason:
            name = c.reason.split(":", 1)[0]
            if name in c.fitness:
                stats[name]["rejected"] += 1
    return stats


def _print_functions(store: RunStore) -> None:
    stats = function_stats(store.iter_candidates())
    if not stats:
        return
    ft = Table(title="per fitness function")
    for col in ("function", "scored", "mean", "pass rate", "rejected"):
        ft.add_column(col, justify="right")
    for name, s in stats.items():
        rate = f"{s['passed'] / s['decided']:.1%}" if s["decided"] else "-"
        ft.add_row(name, str(int(s["scored"])), f"{s['sum'] / s['scored']:.3f}", rate,
                   str(int(s["rejected"])))
    out.print(ft)


@app.command()
def inspect(run: Path = typer.Argument(..., help="Run directory.")) -> None:
    """Statistics of a run: per generation, per operator, rejection reasons, tokens."""
    store = RunStore(run)
    if not store.exists():
        fail(f"no run at {run}")
    _print_inspect(store)


@app.command()
def verify(
    dataset: Path = typer.Argument(..., help="An exported dataset (JSONL or Parquet)."),
    executor: str = typer.Option("auto", "--executor", "-e", help="auto, docker, bwrap or local."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds per sample."),
) -> None:
    """Run every sample's tests again in a fresh sandbox and check them statically."""
    from .execution import make_executor
    from .verify import read_dataset, verify_rows

    try:
        rows = read_dataset(dataset)
        with make_executor(executor) as ex:
            verdicts = verify_rows(rows, ex, timeout_s=timeout)
    except USER_ERRORS as exc:
        fail(str(exc))
    bad = [v for v in verdicts if not v.ok]
    for v in bad:
        out.print(f"FAIL {v.id}: {v.reason}", highlight=False)
    out.print(f"verified {len(verdicts)} samples: {len(verdicts) - len(bad)} passed, "
              f"{len(bad)} failed", highlight=False)
    if bad:
        raise typer.Exit(1)


def _mount_sandbox() -> None:
    try:
        from .sandbox_cli import app as sandbox_app
    except ImportError:  # pragma: no cover - the sandbox CLI ships with the package
        return
    app.add_typer(sandbox_app, name="sandbox", help="Build, check and use the code sandbox.")


_mount_sandbox()
from .seeds_cli import app as _seeds_app  # noqa: E402 - mounted beside the sandbox CLI
app.add_typer(_seeds_app, name="seeds", help="Validate seed files and print their statistics.")

from .export_cli import export as _export  # noqa: E402
from .export_cli import push as _push  # noqa: E402
from .serve_cli import serve as _serve  # noqa: E402 - the OpenAI-compatible server
from .dedup_cli import dedup as _dedup  # noqa: E402
from .decontam_cli import decontam as _decontam  # noqa: E402

app.command("export", help="Write the accepted samples as an SFT or preference dataset.")(
    _export)
app.command("push", help="Upload a run's dataset, card and config to the Hugging Face Hub.")(
    _push)
app.command("dedup", help="Drop exact and near-duplicate rows from a JSONL or Parquet file.")(
    _dedup)
app.command("decontam", help="Drop rows that overlap benchmark problems (HumanEval, MBPP, files).")(
    _decontam)
app.command("serve", help="Serve a configured backend over an OpenAI-compatible HTTP API.")(_serve)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
