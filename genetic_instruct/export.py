"""Export a run's accepted samples: SFT rows or preference pairs, as JSONL, Parquet or a
saved ``datasets.DatasetDict``.

Every row has a ``split`` (``train`` or ``validation``) drawn from a hash of its normalized
instruction, so one instruction lands in the same split on every export, on every machine,
and the SFT and preference exports of a run never put one instruction on both sides.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import unicodedata
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Sequence

from .individual import Individual
from .preference import NoSamples, chosen_reward, has_samples, pairs
from .store import RunStore

FORMATS = ("jsonl", "parquet", "hf")
KINDS = ("sft", "preference")
SPLITS = ("train", "validation")
VALIDATION = 0.05
NESTED = ("lineage", "fitness", "fitness_detail")  # free-form dicts: JSON strings in Parquet
HUB_EXTRA = "pip install -e '.[hub]'"


class ExportError(ValueError):
    """A bad export request; one line saying why."""


# -- splits ----------------------------------------------------------------------------------
def normalize(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: what must match for 'the same instruction'."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def split_of(instruction: str, validation: float = VALIDATION) -> str:
    digest = hashlib.sha256(normalize(instruction).encode()).digest()
    return "validation" if int.from_bytes(digest[:8], "big") / 2**64 < validation else "train"


# -- rows ------------------------------------------------------------------------------------
def answer(solution: str) -> str:
    return f"```python\n{solution.rstrip()}\n```"


def assistant_answer(ind: Individual) -> str:
    return answer(ind.solution)


def lineage(ind: Individual) -> dict[str, Any]:
    return {
        "parents": list(ind.lineage.parents),
        "operator": ind.lineage.operator,
        "heuristic": ind.lineage.heuristic,
        "generation": ind.lineage.generation,
        "colony": ind.lineage.colony,
    }


def sft_row(ind: Individual, validation: float = VALIDATION) -> dict[str, Any]:
    """One training row: the chat pair plus everything that explains it."""
    return {
        "id": ind.id,
        "split": split_of(ind.instruction, validation),
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
        "lineage": lineage(ind),
    }


def preference_rows(ind: Individual, pairs_per_prompt: int = 1,
                    validation: float = VALIDATION) -> list[dict[str, Any]]:
    """DPO / reward-aware preference rows in TRL's conversational format."""
    top = chosen_reward(ind)
    rows = []
    for k, (sample, reward) in enumerate(pairs(ind, pairs_per_prompt)):
        rows.append({
            "id": f"{ind.id}-{k}",
            "source_id": ind.id,
            "split": split_of(ind.instruction, validation),
            "prompt": [{"role": "user", "content": ind.instruction}],
            "instruction": ind.instruction,
            "chosen": [{"role": "assistant", "content": answer(ind.solution)}],
            "rejected": [{"role": "assistant", "content": answer(sample["solution"])}],
            "chosen_reward": top,
            "rejected_reward": reward,
            "reward_gap": round(top - reward, 6),
            "rejected_status": str(sample.get("status") or ""),
            "tests": list(ind.tests),
            "entry_point": ind.entry_point,
            "lineage": lineage(ind),
        })
    return rows


def check_options(kind: str, fmt: str, validation: float, pairs_per_prompt: int) -> None:
    if kind not in KINDS:
        raise ExportError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if not 0.0 <= validation < 1.0:
        raise ExportError(f"--validation must lie in [0, 1) (got {validation})")
    if pairs_per_prompt < 1:
        raise ExportError(f"--pairs-per-prompt must be at least 1 (got {pairs_per_prompt})")


def make_rows(store: RunStore, kind: str = "sft", validation: float = VALIDATION,
              pairs_per_prompt: int = 1) -> list[dict[str, Any]]:
    if not store.exists():
        raise FileNotFoundError(f"no run at {store.path}")
    accepted = store.accepted()
    if kind == "sft":
        return [sft_row(ind, validation) for ind in accepted]
    if not has_samples(accepted):
        raise NoSamples(f"{store.path} recorded no sampled solutions to pair: add the "
                        "`difficulty` fitness function to fitness.functions and run again")
    return [row for ind in accepted for row in preference_rows(ind, pairs_per_prompt,
                                                                validation)]


def split_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {s: sum(r.get("split", "train") == s for r in rows) for s in SPLITS}


# -- decontamination gate --------------------------------------------------------------------
def report_path(out: Path) -> Path:
    return out.with_name(out.name + ".decontam.json")


def row_text(row: dict[str, Any]) -> str:
    parts = [row.get("instruction", ""), row.get("solution", "")]
    for key in ("chosen", "rejected"):
        parts += [m.get("content", "") for m in row.get(key) or []]
    return "\n".join(p for p in parts if p)


def load_benchmarks(specs: Sequence[str] = (), root: Path | None = None) -> list:
    """``specs`` (humaneval, mbpp, a file), each required; empty: the defaults, HumanEval
    and MBPP where available."""
    from .quality import decontam

    root = root or Path(__file__).resolve().parent.parent
    if specs:
        return [decontam.load_benchmark(s, root) for s in specs]
    return decontam.default_benchmarks(root)


def decontaminate_rows(rows: list[dict[str, Any]], specs: Sequence[str] = (),
                       benches: list | None = None) -> tuple[list[dict[str, Any]], Any]:
    """Drop rows that overlap a benchmark; returns the kept rows and a JSON-able report."""
    from .quality import decontam

    if benches is None:
        benches = load_benchmarks(specs)
    fn = getattr(decontam, "decontaminate", None)
    if fn is not None:
        kept, report = fn(rows, benches)
        return list(kept), _jsonable(report)
    return _overlap_gate(rows, benches)


def _overlap_gate(rows: list[dict[str, Any]], benches: list) -> tuple[list[dict], dict]:
    """Stand-in until ``quality.decontam.decontaminate`` exists: its n-gram ``overlaps``."""
    from .quality.decontam import overlaps

    texts = [row_text(r) for r in rows]
    hits: dict[int, Any] = {}
    for bench in benches:
        for hit in overlaps(texts, bench):
            hits.setdefault(hit.index, hit)
    report = {
        "benchmarks": [{"name": b.name, "items": b.items, "n": b.n} for b in benches],
        "checked": len(rows),
        "removed": len(hits),
        "hits": [{"id": rows[i].get("id"), "source": h.source, "ngram": h.ngram}
                 for i, h in sorted(hits.items())],
    }
    return [r for i, r in enumerate(rows) if i not in hits], report


def _jsonable(report: Any) -> Any:
    if is_dataclass(report) and not isinstance(report, type):
        return asdict(report)
    if hasattr(report, "to_dict"):
        return report.to_dict()
    return report


def write_report(report: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


# -- writing ---------------------------------------------------------------------------------
def arrow_table(rows: list[dict[str, Any]]):
    import pyarrow as pa

    return pa.Table.from_pylist([
        dict(r, **{k: json.dumps(r[k], ensure_ascii=False) for k in NESTED if k in r})
        for r in rows])


def require_datasets():
    try:
        import datasets
    except ImportError:
        raise ExportError(f"this needs the `datasets` package: {HUB_EXTRA}") from None
    return datasets


def write_rows(rows: list[dict[str, Any]], out: Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out = Path(out)
    if fmt == "hf":
        return _save_hf(rows, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if fmt == "jsonl":
        with tmp.open("w") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        import pyarrow.parquet as pq

        pq.write_table(arrow_table(rows), tmp)
    tmp.replace(out)
    return out


def _save_hf(rows: list[dict[str, Any]], out: Path) -> Path:
    """A ``DatasetDict`` with train and validation splits, via ``save_to_disk``."""
    datasets = require_datasets()
    if out.exists() and not (out / "dataset_dict.json").is_file():
        raise ExportError(f"{out} exists and is not a saved dataset: choose another --out")
    table = arrow_table(rows)
    features = datasets.Features.from_arrow_schema(table.schema)
    encoded = table.to_pylist()
    parts = datasets.DatasetDict({
        split: datasets.Dataset.from_list(
            [r for r in encoded if r.get("split", "train") == split], features=features)
        for split in SPLITS})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    quiet = datasets.is_progress_bar_enabled()
    if quiet:
        datasets.disable_progress_bars()
    try:
        parts.save_to_disk(str(tmp))
    finally:
        if quiet:
            datasets.enable_progress_bars()
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return out


# -- the whole export ------------------------------------------------------------------------
@dataclass
class Exported:
    path: Path
    rows: int
    splits: dict[str, int]
    removed: int = 0
    report: Path | None = None
    benchmarks: list[str] = field(default_factory=list)


def export_dataset(run: str | Path, out: str | Path, fmt: str = "jsonl", kind: str = "sft",
                   validation: float = VALIDATION, pairs_per_prompt: int = 1,
                   decontam: bool = True, benchmarks: Sequence[str] = ()) -> Exported:
    """Rows of ``kind`` from the run, through the decontamination gate, written as ``fmt``;
    the gate's report goes beside the output (``OUT.decontam.json``)."""
    check_options(kind, fmt, validation, pairs_per_prompt)
    out = Path(out)
    rows = make_rows(RunStore(run), kind, validation, pairs_per_prompt)
    removed, report, names = 0, None, []
    if decontam:
        benches = load_benchmarks(benchmarks)
        names = [b.name for b in benches]
        before = len(rows)
        rows, found = decontaminate_rows(rows, benches=benches)
        removed = before - len(rows)
        report = write_report(found, report_path(out))
    path = write_rows(rows, out, fmt)
    return Exported(path, len(rows), split_counts(rows), removed, report, names)


def export_run(run: str | Path, out: str | Path, fmt: str = "jsonl") -> tuple[Path, int]:
    """The SFT rows as they are (no gate): the ``dataset.jsonl`` a finished run writes."""
    done = export_dataset(run, out, fmt, decontam=False)
    return done.path, done.rows
