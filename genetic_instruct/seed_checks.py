"""The checks behind ``genetic-instruct seeds validate``, usable without the CLI.

``validate_rows(rows, source, executor=..., benchmarks=...)`` returns a :class:`Report`: one
:class:`Check` per property of the whole file, and each problem's issues. The execution checks
send every job (each reference solution, and two wrong solutions per problem that the tests
must reject) to the executor in a single ``run`` call.
"""

from __future__ import annotations

import ast
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from .execution import ExecJob, Executor
from .fitness.syntax import check_test, parse, top_level_functions
from .quality.decontam import Benchmark, overlaps, tokenize

PROJECT_FIELDS: dict[str, type] = {"id": str, "instruction": str, "entry_point": str,
                                   "solution": str, "tests": list, "category": str,
                                   "difficulty": str, "tags": list}
DIFFICULTIES = ("easy", "medium", "hard")
MIN_ASSERTS = 5
MAX_CATEGORY_SHARE = 0.15
NEAR_DUP_JACCARD = 0.35
SHINGLE = 3
# Two plausible wrong solutions; a problem's tests must reject each of them.
WRONG_SOLUTIONS = {
    "returns None": "def {ep}(*args, **kwargs):\n    return None\n",
    "returns its first argument": "def {ep}(*args, **kwargs):\n"
                                  "    return args[0] if args else next(iter(kwargs.values()), None)\n",
}


@dataclass
class Seed:
    """One row, its fields read through the mapping, and what is wrong with it."""

    row: int
    id: str
    instruction: str = ""
    entry_point: str = ""
    solution: str = ""
    tests: list[str] = field(default_factory=list)
    category: str = ""
    difficulty: str = ""
    tags: list[str] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)


@dataclass
class Check:
    name: str
    passed: bool | None  # None: skipped
    detail: str


@dataclass
class Report:
    source: str
    schema: str
    seeds: list[Seed]
    checks: list[Check] = field(default_factory=list)
    executor: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> list[Seed]:
        return [s for s in self.seeds if s.issues]

    @property
    def ok(self) -> bool:
        return not self.failed and all(c.passed is not False for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "schema": self.schema, "problems": len(self.seeds),
                "executor": self.executor, "seconds": round(self.seconds, 2), "ok": self.ok,
                "checks": [asdict(c) for c in self.checks],
                "failures": [{"id": s.id, "row": s.row, "issues": s.issues}
                             for s in self.failed]}


def read_seeds(rows: list[dict[str, Any]], mapping: dict[str, str]) -> tuple[list[Seed], bool]:
    """Rows as Seeds and whether the file has the project's schema (then checked strictly)."""
    def get(row: dict, name: str) -> Any:
        return row.get(mapping.get(name, name))

    strict = bool(rows) and all(get(rows[0], k) is not None for k in PROJECT_FIELDS)
    seeds = []
    for i, row in enumerate(rows, 1):
        raw_id = get(row, "id")
        seed = Seed(row=i, id=str(raw_id) if raw_id not in (None, "") else f"row {i}")
        for name, typ in PROJECT_FIELDS.items():
            value = get(row, name)
            if name == "tests" and isinstance(value, str) and not strict:
                value = [t for t in value.splitlines() if t.strip()]
            if value is None:
                if strict or name == "instruction":
                    seed.issues.append(f"no field {mapping.get(name, name)!r}")
                continue
            if name == "tags" and isinstance(value, str) and not strict:
                value = [value]
            if not isinstance(value, typ) or (typ is list and not all(isinstance(x, str) for x in value)):
                seed.issues.append(f"field {name!r} is not a {typ.__name__}"
                                   f"{' of strings' if typ is list else ''}")
                continue
            if name != "id":
                setattr(seed, name, value)
        seeds.append(seed)
    return seeds, strict


def check_schema(seed: Seed, strict: bool) -> None:
    if not seed.instruction.strip():
        seed.issues.append("empty instruction")
    if strict:
        if len(seed.tests) < MIN_ASSERTS:
            seed.issues.append(f"{len(seed.tests)} tests, need at least {MIN_ASSERTS}")
        if seed.difficulty not in DIFFICULTIES:
            seed.issues.append(f"difficulty {seed.difficulty!r} is not one of {', '.join(DIFFICULTIES)}")
        if not seed.category.strip():
            seed.issues.append("empty category")
        if seed.entry_point and seed.entry_point not in seed.instruction:
            seed.issues.append(f"the instruction does not name {seed.entry_point}()")
    if (seed.tests or seed.solution) and not seed.entry_point:
        seed.issues.append("a solution or tests but no entry_point")


def _normal(test: str) -> str:
    """A test's syntax tree (spacing outside string literals does not count)."""
    try:
        return ast.dump(ast.parse(test))
    except SyntaxError:
        return test.strip()


def check_code(seed: Seed) -> bool:
    """The solution defines the entry point; each test is one assert calling it."""
    before = len(seed.issues)
    if not seed.entry_point:
        return True
    if seed.solution:
        root = parse(seed.solution)
        if root.has_error:
            seed.issues.append("the solution does not parse")
        elif seed.entry_point not in top_level_functions(root):
            seed.issues.append(f"the solution does not define {seed.entry_point}() at top level")
    for n, test in enumerate(seed.tests):
        problem = check_test(test, seed.entry_point)
        if problem:
            seed.issues.append(f"test {n}: {problem}")
    if len({_normal(t) for t in seed.tests}) < len(seed.tests):
        seed.issues.append("repeated test")
    return len(seed.issues) == before


def shingles(text: str, k: int = SHINGLE) -> set[str]:
    words = tokenize(text)
    return {" ".join(words[i:i + k]) for i in range(max(1, len(words) - k + 1))}


def near_duplicates(texts: list[str], threshold: float = NEAR_DUP_JACCARD,
                    max_df: int = 100) -> list[tuple[int, int, float]]:
    """Pairs (earlier, later, Jaccard) of word-shingle sets at or above ``threshold``.

    Candidates are pairs sharing a shingle that occurs in at most ``max_df`` texts (the
    template words every instruction shares find no pair); their Jaccard is then exact.
    """
    sets = [shingles(t) for t in texts]
    postings: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        for gram in s:
            postings[gram].append(i)
    candidates = {(a, b) for docs in postings.values() if len(docs) <= max_df
                  for x, a in enumerate(docs) for b in docs[x + 1:]}
    pairs = []
    for a, b in sorted(candidates):
        inter = len(sets[a] & sets[b])
        jaccard = inter / (len(sets[a]) + len(sets[b]) - inter)
        if jaccard >= threshold:
            pairs.append((a, b, jaccard))
    return pairs


def check_duplicates(seeds: list[Seed], threshold: float) -> tuple[Check, Check]:
    ids: dict[str, Seed] = {}
    dup_ids = 0
    for seed in seeds:
        if seed.id in ids:
            seed.issues.append(f"duplicate id (also row {ids[seed.id].row})")
            dup_ids += 1
        ids.setdefault(seed.id, seed)
    exact: dict[str, Seed] = {}
    n_dup = 0
    for seed in seeds:
        key = " ".join(tokenize(seed.instruction))
        if key in exact:
            seed.issues.append(f"same instruction as {exact[key].id}")
            n_dup += 1
        exact.setdefault(key, seed)
    for a, b, jac in near_duplicates([s.instruction for s in seeds], threshold):
        if " ".join(tokenize(seeds[a].instruction)) != " ".join(tokenize(seeds[b].instruction)):
            seeds[b].issues.append(f"near-duplicate of {seeds[a].id} (Jaccard {jac:.2f})")
            n_dup += 1
    return (Check("unique ids", dup_ids == 0, f"{dup_ids} duplicated"),
            Check("no duplicate instructions", n_dup == 0,
                  f"{n_dup} exact or near duplicates ({SHINGLE}-word shingles, Jaccard >= {threshold})"))


def check_categories(seeds: list[Seed], max_share: float = MAX_CATEGORY_SHARE) -> Check:
    counts = Counter(s.category for s in seeds if s.category)
    if not counts:
        return Check("category share", None, "no categories")
    top, n = counts.most_common(1)[0]
    share = n / len(seeds)
    return Check("category share", share <= max_share,
                 f"{len(counts)} categories, largest {top} {share:.1%} (max {max_share:.0%})")


def check_benchmarks(seeds: list[Seed], benchmarks: list[Benchmark]) -> Check:
    if not benchmarks:
        return Check("benchmark 13-gram overlap", None, "skipped: no benchmark found")
    texts = [f"{s.instruction}\n{s.solution}" for s in seeds]
    total = 0
    for bench in benchmarks:
        for hit in overlaps(texts, bench):
            seeds[hit.index].issues.append(f"{bench.n}-gram overlap with {hit.source}: {hit.ngram!r}")
            total += 1
    names = ", ".join(f"{b.name} ({b.items})" for b in benchmarks)
    return Check("benchmark 13-gram overlap", total == 0, f"{total} hits against {names}")


def check_execution(seeds: list[Seed], executor: Executor | None,
                    timeout: float) -> tuple[Check, Check]:
    """References must pass; each wrong solution must fail: one executor.run for all."""
    runnable = [s for s in seeds if s.solution and s.tests and s.entry_point]
    if executor is None or not runnable:
        why = "no executor" if executor is None else "no problem has solution and tests"
        return (Check("reference solutions pass", None, f"skipped: {why}"),
                Check("tests reject wrong solutions", None, f"skipped: {why}"))
    jobs, owners = [], []
    for seed in runnable:
        jobs.append(ExecJob(id=f"{seed.row}:ref", solution=seed.solution, tests=seed.tests,
                            timeout_s=timeout))
        owners.append((seed, None))
        for label, template in WRONG_SOLUTIONS.items():
            jobs.append(ExecJob(id=f"{seed.row}:{label}", solution=template.format(ep=seed.entry_point),
                                tests=seed.tests, timeout_s=timeout))
            owners.append((seed, label))
    results = executor.run(jobs)
    ref_ok, rejected = 0, Counter()
    for (seed, label), res in zip(owners, results):
        if label is None and res.passed:
            ref_ok += 1
        elif label is None:
            why = f": {res.error[:120]}" if res.error else ""
            seed.issues.append(f"reference solution {res.status} "
                               f"({res.tests_passed}/{res.tests_total} asserts passed){why}")
        elif res.passed:
            seed.issues.append(f"the tests accept a wrong solution that {label}")
        else:
            rejected[seed.row] += 1
    both = sum(1 for s in runnable if rejected[s.row] == len(WRONG_SOLUTIONS))
    return (Check("reference solutions pass", ref_ok == len(runnable),
                  f"{ref_ok}/{len(runnable)} ({len(jobs)} jobs in one batch)"),
            Check("tests reject wrong solutions", both == len(runnable),
                  f"{both}/{len(runnable)} reject both ({'; '.join(WRONG_SOLUTIONS)})"))


def validate_rows(rows: list[dict[str, Any]], source: str, *, executor: Executor | None,
                  benchmarks: list[Benchmark], timeout: float = 10.0,
                  mapping: dict[str, str] | None = None,
                  near_dup: float = NEAR_DUP_JACCARD) -> Report:
    """Every check over ``rows``; the report lists the checks and each bad problem."""
    start = time.monotonic()
    seeds, strict = read_seeds(rows, mapping or {})
    report = Report(source, "project" if strict else "foreign", seeds,
                    executor=getattr(executor, "name", ""))
    for seed in seeds:
        check_schema(seed, strict)
    bad_schema = sum(1 for s in seeds if s.issues)
    report.checks.append(Check(f"schema ({report.schema})", bad_schema == 0 and bool(seeds),
                               f"{len(seeds)} problems, {bad_schema} with schema problems"))
    bad_code = sum(not check_code(seed) for seed in seeds)
    report.checks.append(Check("tests are asserts calling the entry point", bad_code == 0,
                               f"{bad_code} problems with bad tests or solution"))
    report.checks.extend(check_duplicates(seeds, near_dup))
    report.checks.append(check_categories(seeds))
    report.checks.append(check_benchmarks(seeds, benchmarks))
    report.checks.extend(check_execution(seeds, executor, timeout))
    report.seconds = time.monotonic() - start
    return report
