"""``genetic-instruct sandbox``: build the image, check the engines, run jobs, measure.

Mounted by the main CLI as ``app.add_typer(sandbox_cli.app, name="sandbox")``; also runs
alone as ``python -m genetic_instruct.sandbox_cli``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

from genetic_instruct.execution import ExecJob, ExecutorUnavailable, make_executor
from genetic_instruct.execution._pool import default_workers, runner_path
from genetic_instruct.execution.docker import DEFAULT_IMAGE, engine_version, image_exists

app = typer.Typer(help="The code sandbox: build, doctor, exec, exec-batch, bench.",
                  no_args_is_help=True, add_completion=False)

BASE_IMAGE = "python:3.12-slim"
SANDBOX_DIR = Path(__file__).resolve().parents[1] / "sandbox"
ROW_FIELDS = ("status", "tests_passed", "tests_total", "duration_s", "stdout_tail",
              "stderr_tail", "error")

ExecutorOpt = Annotated[str, typer.Option("--executor", "-e",
                                          help="auto, docker, bwrap or local (local: no sandbox)")]
TimeoutOpt = Annotated[Optional[float],
                      typer.Option("--timeout", help="wall-clock seconds per job")]
WorkersOpt = Annotated[Optional[int],
                      typer.Option("--workers", help="sandboxes (default: one per core)")]


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _open(executor: str, workers: int | None, timeout: float | None, **extra: object):
    options: dict = {"workers": workers, "timeout_s": timeout, **extra}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            made = make_executor(executor, **{k: v for k, v in options.items() if v is not None})
    except (ExecutorUnavailable, ValueError) as exc:
        _fail(str(exc))
    for warning in caught:  # one plain line (the local executor: not a sandbox)
        typer.echo(f"warning: {warning.message}", err=True)
    return made


def _runner_sha() -> str:
    return hashlib.sha256(Path(runner_path()).read_bytes()).hexdigest()


def _run(argv: list[str], timeout: float | None = None) -> int:
    typer.echo("$ " + " ".join(argv[:6]) + (" ..." if len(argv) > 6 else ""))
    try:
        return subprocess.run(argv, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return 124


def _base_available(pull_timeout: float) -> bool:
    inspect = ["docker", "image", "inspect", BASE_IMAGE]
    if subprocess.run(inspect, capture_output=True).returncode == 0:
        return True
    typer.echo(f"trying to pull {BASE_IMAGE} (up to {pull_timeout:g} s)")
    try:
        return subprocess.run(["docker", "pull", "-q", BASE_IMAGE], capture_output=True,
                              timeout=pull_timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@app.command()
def build(tag: Annotated[str, typer.Option(help="image tag")] = DEFAULT_IMAGE,
          force: Annotated[bool, typer.Option("--force", help="rebuild even if present")] = False,
          offline: Annotated[Optional[bool], typer.Option(
              "--offline/--dockerfile",
              help="force the Debian-package build, or the Dockerfile")] = None,
          pull_timeout: Annotated[float, typer.Option(
              help="seconds to try pulling the base")] = 60.0,
          ) -> None:
    """Build the sandbox image: sandbox/Dockerfile when python:3.12-slim can be had, else
    the same image from Debian packages (sandbox/build-offline.sh, needs root)."""
    if not engine_version():
        _fail("no Docker engine answers: install and start Docker (apt-get install docker.io; "
              "dockerd &), or run scripts/prepare-sandbox.sh as root")
    if image_exists(tag) and not force:
        typer.echo(f"image {tag} is present (use --force to rebuild)")
        return
    if not (SANDBOX_DIR / "Dockerfile").exists():
        _fail(f"{SANDBOX_DIR} is missing: building the image needs the source checkout")
    use_dockerfile = (not offline) if offline is not None else _base_available(pull_timeout)
    if use_dockerfile:
        code = _run(["docker", "build", "--build-arg", f"BASE={BASE_IMAGE}", "--build-arg",
                     f"RUNNER_SHA256={_runner_sha()}", "-t", tag, str(SANDBOX_DIR)])
    else:
        typer.echo(f"{BASE_IMAGE} cannot be had: building from Debian packages instead")
        code = _run(["bash", str(SANDBOX_DIR / "build-offline.sh"), tag])
    if code != 0:
        _fail(f"image build failed (exit {code})", code=1)
    typer.echo(f"built {tag}")


@app.command()
def doctor(image: Annotated[str, typer.Option(help="image tag")] = DEFAULT_IMAGE) -> None:
    """Say which sandboxes work here, and run one small job in each."""
    lines, working = [], []
    docker = shutil.which("docker")
    version = engine_version() if docker else None
    lines.append(f"docker CLI     {docker or 'missing (apt-get install docker.io)'}")
    lines.append(f"docker engine  {version or 'no engine answers (start dockerd)'}")
    if version:
        if image_exists(image):
            label = subprocess.run(["docker", "image", "inspect", "--format",
                                    '{{index .Config.Labels "genetic-instruct.runner-sha256"}}',
                                    image], capture_output=True, text=True).stdout.strip()
            same = ("matches" if label == _runner_sha()
                    else "differs (harmless: executors send theirs)")
            lines.append(f"docker image   {image} present; baked runner {same}")
        else:
            lines.append(f"docker image   {image} missing (genetic-instruct sandbox build)")
    bwrap = shutil.which("bwrap")
    lines.append(f"bubblewrap     {bwrap or 'missing (apt-get install bubblewrap)'}")
    for name in ("docker", "bwrap", "local"):
        extra = {"acknowledge_unsafe": True} if name == "local" else {}
        try:
            with make_executor(name, workers=1, **extra) as executor:
                started = time.perf_counter()
                [result] = executor.run([ExecJob(id="doctor", solution="def f():\n    return 1\n",
                                                 tests=["assert f() == 1"])])
                spent = (time.perf_counter() - started) * 1000
            ok = result.status == "passed"
            note = "  [not a sandbox]" if name == "local" else ""
            lines.append(f"executor {name:7s}{'works' if ok else 'BROKEN: ' + result.error}"
                         f" (one job {spent:.0f} ms){note}")
            if ok and name != "local":
                working.append(name)
        except ExecutorUnavailable as exc:
            lines.append(f"executor {name:7s}unavailable: {exc}")
    lines.append(f"auto picks     {working[0] if working else 'nothing: no sandbox works here'}")
    typer.echo("\n".join(lines))
    if not working:
        raise typer.Exit(1)


def _read_tests(path: Path) -> tuple[list[str], str]:
    """Asserts from a file: a JSON list, or Python whose top-level asserts are the tests
    (anything else at top level becomes setup, run before the solution)."""
    import ast
    text = path.read_text()
    if text.lstrip().startswith("["):
        return [str(t) for t in json.loads(text)], ""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        _fail(f"{path}: not Python or a JSON list of asserts ({exc.msg}, line {exc.lineno})")
    tests, setup = [], []
    for node in tree.body:
        (tests if isinstance(node, ast.Assert) else setup).append(
            ast.get_source_segment(text, node) or "")
    return [t for t in tests if t], "\n".join(s for s in setup if s)


@app.command("exec")
def exec_one(solution: Annotated[Path, typer.Option(exists=True, dir_okay=False,
                                                    help="solution .py")],
             tests: Annotated[Path, typer.Option(exists=True, dir_okay=False,
                                                 help="asserts: .py file or JSON list")],
             executor: ExecutorOpt = "auto", timeout: TimeoutOpt = None,
             as_json: Annotated[bool, typer.Option("--json", help="print one JSON result")] = False,
             ) -> None:
    """Run one solution against its asserts."""
    asserts, setup = _read_tests(tests)
    job = ExecJob(id=solution.stem, solution=solution.read_text(), tests=asserts, setup=setup,
                  timeout_s=timeout or ExecJob.timeout_s)
    with _open(executor, 1, timeout) as runner:
        [result] = runner.run([job])
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
    else:
        typer.echo(f"{result.status}: {result.tests_passed}/{result.tests_total} asserts passed "
                   f"in {result.duration_s:.3f} s{'  ' + result.error if result.error else ''}")


def _rows(handle, chunk: int) -> Iterator[list[tuple[int, dict | str]]]:
    batch: list[tuple[int, dict | str]] = []
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            batch.append((number, row if isinstance(row, dict)
                          else f"line {number}: not an object"))
        except ValueError as exc:
            batch.append((number, f"line {number}: not JSON ({exc.msg})"))
        if len(batch) >= chunk:
            yield batch
            batch = []
    if batch:
        yield batch


def _job_from_row(number: int, row: dict, timeout: float | None) -> ExecJob | str:
    tests = row.get("tests")
    if not isinstance(row.get("solution"), str) or not isinstance(tests, list):
        return f"line {number}: needs 'solution' (string) and 'tests' (list of asserts)"
    return ExecJob(id=str(row.get("id", number)), solution=row["solution"],
                   tests=[str(t) for t in tests], setup=str(row.get("setup") or ""),
                   timeout_s=timeout or ExecJob.timeout_s)


@app.command("exec-batch")
def exec_batch(input: Annotated[Path, typer.Option("--input", exists=True, dir_okay=False,
                                                   help="JSONL: id, solution, tests[, setup]")],
               output: Annotated[Path, typer.Option("--output", help="JSONL results, one per row")],
               executor: ExecutorOpt = "auto", timeout: TimeoutOpt = None,
               workers: WorkersOpt = None,
               chunk: Annotated[int, typer.Option(help="rows sent to the executor at once")] = 512,
               ) -> None:
    """Run every row of a JSONL file; write each row back with its result added.

    Exits 0 when every row got a result, whatever the results."""
    counts: dict[str, int] = {}
    with _open(executor, workers, timeout) as runner, input.open() as source, \
            output.open("w") as sink:
        for batch in _rows(source, chunk):
            jobs = [(n, r, _job_from_row(n, r, timeout) if isinstance(r, dict) else r)
                    for n, r in batch]
            runnable = [job for _, _, job in jobs if isinstance(job, ExecJob)]
            results = iter(runner.run(runnable))
            for number, row, job in jobs:
                base = row if isinstance(row, dict) else {"id": str(number)}
                if isinstance(job, ExecJob):
                    result = next(results).to_dict()
                    out = {**base, **{k: result[k] for k in ROW_FIELDS}}
                else:
                    out = {**base, "status": "error", "tests_passed": 0, "tests_total": 0,
                           "duration_s": 0.0, "stdout_tail": "", "stderr_tail": "", "error": job}
                counts[out["status"]] = counts.get(out["status"], 0) + 1
                sink.write(json.dumps(out) + "\n")
            sink.flush()
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no rows"
    typer.echo(f"{sum(counts.values())} rows -> {output}: {summary}")


@app.command()
def bench(jobs: Annotated[int, typer.Option(help="jobs per measured path")] = 1000,
          executor: Annotated[Optional[list[str]], typer.Option(
              "--executor", "-e", help="executors to measure (repeatable)")] = None,
          docker_run_jobs: Annotated[int, typer.Option(
              help="jobs for the docker-run-per-job baseline (0: skip it)")] = 16,
          workers: WorkersOpt = None) -> None:
    """Executions/s of a small job set: our executors against bare fork and docker run."""
    from genetic_instruct.execution.bench import measure, report
    count = workers or default_workers()
    names = tuple(executor or ("docker", "bwrap"))
    rates = measure(jobs, docker_run_jobs, count, rounds=1, executors=names)
    typer.echo(report(rates, jobs, count))


if __name__ == "__main__":
    app()
