"""Corpus decontamination (issue #7): normalization, planted benchmark items, clean seeds, CLI."""

from __future__ import annotations

import ast
import collections
import copy
import dataclasses
import gzip
import io
import itertools
import json
import random
import tokenize
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from conftest import ROOT
from typer.testing import CliRunner

from genetic_instruct import decontam_cli
from genetic_instruct.quality import decontam

SEEDS = ROOT / "seeds" / "python_core.jsonl"
STARTER = ROOT / "seeds" / "starter.jsonl"
MBPP = ROOT.parent / "shared" / "benchmarks" / "mbpp.jsonl"
needs_mbpp = pytest.mark.skipif(not MBPP.is_file(), reason=f"MBPP not at {MBPP}")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def humaneval_rows() -> list[dict]:
    with gzip.open(decontam.humaneval_path(), "rt") as f:
        return [json.loads(line) for line in f]


def humaneval_code(row: dict) -> str:
    return row["prompt"] + row["canonical_solution"]


def parse(code: str) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences in MBPP's code
        return ast.parse(code)


def humaneval_asserts(row: dict) -> list[str]:
    """HumanEval's asserts as a corpus would hold them: calling the entry point."""
    tree = parse(row["test"])
    return [ast.get_source_segment(row["test"], node).replace("candidate", row["entry_point"])
            for node in ast.walk(tree) if isinstance(node, ast.Assert)]


# --- ways to disguise a benchmark solution --------------------------------------------------

def reformat(code: str) -> str:
    """Other spacing everywhere, the other quote character, a comment after every line."""
    out, line = [], 0
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        text = tok.string
        if tok.type == tokenize.STRING and text[:1] in "'\"" and text[:3] not in ("'''", '"""'):
            other = "'" if text[0] == '"' else '"'
            if other not in text[1:-1] and "\\" not in text:
                text = other + text[1:-1] + other
        if tok.type == tokenize.NEWLINE:
            line += 1
            out.append((tokenize.COMMENT, f"# step {line}"))
        out.append((tok.type, text))
    return "# cleaned-up reference solution\n\n" + tokenize.untokenize(out)


NEW_NAMES = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]


def rename(code: str, seed: int = 0) -> str:
    """Every name the code binds (function, parameters, locals) renamed, layout kept."""
    tree = parse(code)
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
    rng = random.Random(seed)
    new = {name: f"{rng.choice(NEW_NAMES)}_{i}" for i, name in enumerate(sorted(bound))}
    out, prev = [], None
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.NAME and tok.string in new and not (prev and prev.string == "."):
            tok = tok._replace(string=new[tok.string])
        out.append(tok)
        prev = tok
    return tokenize.untokenize(out)


def _reads_writes(node: ast.AST) -> tuple[set, set]:
    reads, writes = set(), set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            (writes if isinstance(sub.ctx, ast.Store) else reads).add(sub.id)
    return reads, writes


def reorder(code: str) -> str | None:
    """Swap two adjacent one-line assignments that do not depend on each other, or else
    the first two top-level functions; None when the code has neither."""
    tree = parse(code)
    lines = code.splitlines()
    bodies = [n.body for n in ast.walk(tree)
              if isinstance(n, (ast.FunctionDef, ast.For, ast.While, ast.If))] + [tree.body]
    for body in bodies:
        for a, b in itertools.pairwise(body):
            if not (isinstance(a, (ast.Assign, ast.AugAssign))
                    and isinstance(b, (ast.Assign, ast.AugAssign))):
                continue
            if a.lineno != a.end_lineno or b.lineno != b.end_lineno or b.lineno != a.lineno + 1:
                continue
            ra, wa = _reads_writes(a)
            rb, wb = _reads_writes(b)
            if wa & (rb | wb) or wb & ra:
                continue
            lines[a.lineno - 1], lines[b.lineno - 1] = lines[b.lineno - 1], lines[a.lineno - 1]
            return "\n".join(lines) + "\n"
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if len(defs) >= 2:
        a, b = defs[0], defs[1]
        first, second = lines[a.lineno - 1:a.end_lineno], lines[b.lineno - 1:b.end_lineno]
        between = lines[a.end_lineno:b.lineno - 1]
        return "\n".join(lines[:a.lineno - 1] + second + between + first
                         + lines[b.end_lineno:]) + "\n"
    return None


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def benchmarks() -> list[decontam.Benchmark]:
    found = [decontam.load_benchmark("humaneval")]
    if MBPP.is_file():
        found.append(decontam.load_benchmark("mbpp", ROOT))
    return found


@pytest.fixture(scope="module")
def index(benchmarks) -> decontam.Decontaminator:
    return decontam.Decontaminator(benchmarks)


@pytest.fixture(scope="module")
def seeds() -> list[dict]:
    return read_jsonl(SEEDS)


# --- normalization --------------------------------------------------------------------------

ORIGINAL = '''
import math

def hypotenuse_sum(pairs):
    """Sum of hypotenuses."""
    total = 0
    for a, b in pairs:
        total += math.sqrt(a * a + b * b)
    return total
'''
DISGUISED = '''
import math
def f(xs: list[tuple[int, int]]) -> float:
    # renamed, re-spaced, annotated
    acc = 0  # running sum
    for (p, q) in xs:
        acc += math.sqrt(p*p + q*q)
    return (acc)
'''


def test_normal_form_ignores_layout_comments_docstrings_annotations_and_names():
    a, b = decontam.normalize_code(ORIGINAL), decontam.normalize_code(DISGUISED)
    assert a.parsed and b.parsed
    assert a.units == b.units == [
        "def v0(v1):v2=0 for v3,v4 in v1:v2+=math.sqrt(v3*v3+v4*v4)return v2"]
    assert a.lines == b.lines
    assert a.statements == b.statements
    assert "for v0,v1 in v2" in a.statements


def test_normal_form_keeps_builtins_imports_methods_and_strings():
    normal = decontam.normalize_code(
        "import heapq as hq\n"
        "def top(nums, k):\n"
        "    best = hq.nlargest(k, sorted(nums))\n"
        "    best.append('a  b')\n"
        "    return len(best)\n")
    assert normal.units == [("def v0(v1,v2):v3=hq.nlargest(v2,sorted(v1))v3.append('a  b')"
                             "return len(v3)")]


def test_a_shadowed_builtin_is_renamed_like_any_other_name():
    plain = decontam.normalize_code("def f(str):\n    return str + str\n")
    other = decontam.normalize_code("def f(text):\n    return text + text\n")
    assert plain.units == other.units == ["def v0(v1):return v1+v1"]


def test_quotes_and_redundant_parentheses_do_not_matter():
    a = decontam.normalize_code('assert f("hello","l") == ("heo")')
    b = decontam.normalize_code("assert   g('hello', 'l')=='heo'   # fine")
    assert a.statements == b.statements == ["assert v0('hello','l')=='heo'"]


def test_line_names_survive_reordering_and_renaming():
    one = decontam.normalize_code("def f(n):\n    a = n * 2\n    b = n + 3\n    return a - b\n")
    two = decontam.normalize_code("def g(m):\n    y = m + 3\n    x = m * 2\n    return x - y\n")
    assert one.units != two.units  # numbered by first appearance: the order shows
    assert sorted(one.lines) == sorted(two.lines)  # named by signature: it does not
    assert sorted(one.statements) == sorted(two.statements)


def test_code_that_does_not_parse_is_normalized_by_tokens():
    normal = decontam.normalize_code("def broken(x:\n    total = x + 1  # note\n")
    assert not normal.parsed
    assert normal.units == ["def v0(v1:v2=v1+1"]
    assert "v0=v1+1" in normal.statements


# --- clean seeds: the false-positive rate ----------------------------------------------------

@needs_mbpp
def test_the_shipped_seeds_are_clean(index, seeds):
    rows = seeds + read_jsonl(STARTER)
    clean, report = index.run(rows)
    assert report["checked"] == len(rows) == 560
    assert report["flagged"] == 0, json.dumps(report["hits"], indent=1)
    assert clean == rows
    assert report["benchmarks"] == {"humaneval": 164, "mbpp": 974}
    assert report["rows_per_s"] > 0


@needs_mbpp
def test_clean_seeds_score_far_below_the_thresholds(index, seeds):
    """With every threshold at zero, how close do the seeds come to any benchmark item?"""
    loose = copy.copy(index)  # the thresholds apply to look-ups only: same index
    loose.settings = dataclasses.replace(index.settings, shingle_threshold=0.0,
                                         statement_threshold=0.0, max_hits_per_row=10_000)
    best: dict[str, float] = collections.defaultdict(float)
    for row in seeds:
        for hit in loose.check({"solution": row["solution"], "tests": row["tests"]}):
            best[hit["method"]] = max(best[hit["method"]], hit["score"])
    assert best["code-normalized"] < 0.1  # threshold 0.4
    assert best["statements"] < 0.8  # 2 of 3 at most


# --- planted benchmark items ---------------------------------------------------------------

def _planted_rows(seeds: list[dict], items: list[tuple[str, str, str, list[str]]]):
    """Rows of the seed corpus carrying one disguised benchmark part each; (rows, truth)."""
    rows, truth = [], {}
    for k, (item, code, prompt, tests) in enumerate(items):
        host = seeds[(7 * k) % len(seeds)]
        variants = {"verbatim": code, "reformatted": reformat(code), "renamed": rename(code, k),
                    "reordered": reorder(code)}
        for kind, solution in variants.items():
            if solution is not None:
                rows.append({**host, "id": f"{kind}:{item}", "solution": solution})
                truth[f"{kind}:{item}"] = (item, "solution")
        rows.append({**host, "id": f"instruction:{item}", "instruction": prompt})
        truth[f"instruction:{item}"] = (item, "instruction")
        if len(tests) >= 3:  # HumanEval/32 checks one assert in a random loop
            rows.append({**host, "id": f"tests:{item}", "tests": tests})
            truth[f"tests:{item}"] = (item, "tests")
    return rows, truth


def _benchmark_items(step_he: int, step_mbpp: int) -> list[tuple[str, str, str, list[str]]]:
    items = [(r["task_id"], humaneval_code(r), r["prompt"], humaneval_asserts(r))
             for r in humaneval_rows()[::step_he]]
    if MBPP.is_file():
        items += [(f"mbpp/{r['task_id']}", r["code"], r["text"], r["test_list"])
                  for r in read_jsonl(MBPP)[::step_mbpp]]
    return items


@needs_mbpp
def test_planted_items_are_flagged_with_their_benchmark_item(index, seeds):
    items = _benchmark_items(8, 50)  # 21 HumanEval, 20 MBPP problems
    rows, truth = _planted_rows(seeds, items)
    clean, report = index.run([*seeds, *rows])
    assert report["flagged"] == len(rows)
    assert clean == seeds
    found = collections.defaultdict(list)
    for hit in report["hits"]:
        found[hit["id"]].append(hit)
    for rid, (item, field) in truth.items():
        mine = [h for h in found[rid] if h["item"] == item]
        assert mine, f"{rid}: not matched to {item}: {found[rid]}"
        assert {h["field"] for h in mine} == {field}, (rid, mine)
        assert all(h["benchmark"] == item.split("/")[0].lower() for h in mine)
    kinds = collections.Counter(rid.split(":")[0] for rid in truth)
    assert kinds["verbatim"] == kinds["renamed"] == kinds["instruction"] == 41
    assert kinds["reordered"] >= 8 and kinds["tests"] >= 38


@needs_mbpp
def test_each_method_finds_its_disguise(index, seeds):
    he = {r["task_id"]: r for r in humaneval_rows()}
    code = humaneval_code(he["HumanEval/0"])
    host = seeds[0]
    cases = {
        "word-ngram": {**host, "id": "a", "instruction": he["HumanEval/0"]["prompt"]},
        "code-normalized": {**host, "id": "b", "solution": rename(reformat(code), 3)},
        "statements": {**host, "id": "c", "tests": humaneval_asserts(he["HumanEval/0"])},
    }
    for method, row in cases.items():
        hits = index.check(row)
        assert any(h["method"] == method and h["item"] == "HumanEval/0" for h in hits), (
            method, hits)


@needs_mbpp
def test_hand_disguised_solutions_are_flagged(index, seeds):
    black_style_renamed = '''from typing import List


def any_pair_too_close(values: List[float], limit: float) -> bool:
    # compare every pair of positions
    for i, first in enumerate(values):
        for j, second in enumerate(values):
            if i != j:
                gap = abs(first - second)  # absolute difference
                if gap < limit:
                    return True
    return False
'''
    black_style = '''def remove_Occ(s, ch):
    for i in range(len(s)):
        if s[i] == ch:  # first occurrence
            s = s[0:i] + s[i + 1 :]
            break
    for i in range(
        len(s) - 1,
        -1,
        -1,
    ):
        if s[i] == ch:  # last occurrence
            s = s[0:i] + s[i + 1 :]
            break
    return s
'''
    reordered_renamed = '''def ways(size):
    second = [0] * (size + 1)
    first = [0] * (size + 1)
    second[0] = 0
    first[0] = 1
    second[1] = 1
    first[1] = 0
    for k in range(2, size + 1):
        first[k] = first[k - 2] + 2 * second[k - 1]
        second[k] = first[k - 1] + second[k - 2]
    return first[size]
'''
    short_swapped = (  # mbpp/124 with its first two lines swapped: too short for shingles
        "import cmath\n"
        "def phase_of(x, y):\n"
        "    result = cmath.phase(x + y)\n"
        "    z = complex(x, y)\n"
        "    return result\n")
    for solution, item, method in (
            (black_style_renamed, "HumanEval/0", "code-normalized"),
            (black_style, "mbpp/11", "code-normalized"),
            (reordered_renamed, "mbpp/5", "code-normalized"),
            (short_swapped, "mbpp/124", "statements")):
        hits = index.check({**seeds[1], "solution": solution})
        assert any(h["item"] == item and h["method"] == method for h in hits), (item, hits)


@needs_mbpp
def test_a_short_mbpp_statement_copied_into_an_instruction_is_flagged(index, seeds):
    mbpp = {r["task_id"]: r for r in read_jsonl(MBPP)}
    text = mbpp[3]["text"]  # "Write a python function to identify non-prime numbers." (8 words)
    assert len(decontam.tokenize(text)) < decontam.N
    row = {**seeds[2], "instruction": f"{text} Call it `is_composite(n)`."}
    hits = index.check(row)
    assert [(h["item"], h["method"], h["field"]) for h in hits] == [
        ("mbpp/3", "word-ngram", "instruction")]


@needs_mbpp
def test_recall_over_every_benchmark_item(index, seeds):
    """Every problem, each disguise on its own; what is missed is documented here."""
    rows, truth = [], {}
    items = _benchmark_items(1, 1)
    for k, (item, code, _, _) in enumerate(items):
        moved = reorder(code)
        for kind, solution in (("verbatim", code), ("renamed", rename(code, k)),
                               ("reordered", moved),
                               ("moved+renamed", moved and rename(moved, k))):
            if solution is not None:
                rows.append({"id": f"{kind}:{item}", "solution": solution})
                truth[f"{kind}:{item}"] = item
    _, report = index.run(rows)
    matched = {h["id"] for h in report["hits"] if h["item"] == truth[h["id"]]}
    recall = {}
    for kind in ("verbatim", "renamed", "reordered", "moved+renamed"):
        mine = [rid for rid in truth if rid.startswith(kind + ":")]
        recall[kind] = sum(rid in matched for rid in mine) / len(mine)
        missed = [truth[rid] for rid in mine if rid not in matched]
        if kind in ("verbatim", "renamed"):
            # only one-liners too short to be evidence: def v0(v1):return min(v1)
            codes = {item: code for item, code, _, _ in items}
            assert all(len(decontam.normalize_code(codes[i]).text)
                       < index.settings.exact_min_chars for i in missed), missed
    assert recall["verbatim"] >= 0.985 and recall["renamed"] >= 0.985, recall
    assert recall["reordered"] >= 0.97 and recall["moved+renamed"] >= 0.97, recall


# --- the report and the API ------------------------------------------------------------------

def test_report_lists_each_hit_with_its_item(benchmarks, seeds):
    he = humaneval_rows()
    rows = [*seeds[:20], {"id": "leak", "instruction": "Solve it.", "solution":
                          humaneval_code(he[12]), "tests": humaneval_asserts(he[12])}]
    clean, report = decontam.decontaminate(rows, benchmarks[:1])
    assert [r["id"] for r in clean] == [r["id"] for r in seeds[:20]]
    assert (report["checked"], report["flagged"], report["kept"]) == (21, 1, 20)
    assert report["benchmarks"] == {"humaneval": 164}
    assert report["flagged_by_benchmark"] == {"humaneval": 1}
    hits = report["hits"]
    assert {h["id"] for h in hits} == {"leak"}
    assert {(h["item"], h["field"], h["method"]) for h in hits} >= {
        ("HumanEval/12", "solution", "code-normalized"),
        ("HumanEval/12", "solution", "word-ngram"),
        ("HumanEval/12", "tests", "statements")}
    for hit in hits:
        assert set(hit) == {"id", "field", "benchmark", "item", "method", "evidence", "score"}
        assert 0 < hit["score"] <= 1 and hit["evidence"]
    assert report["settings"]["n"] == 13 and report["seconds"] >= 0


def test_forked_jobs_give_the_same_answer(index, seeds):
    he = humaneval_rows()
    rows = [*seeds, *({"id": f"leak{i}", "solution": rename(humaneval_code(r), i)}
                      for i, r in enumerate(he[:40]))]
    one_clean, one = index.run(rows)
    two_clean, two = index.run(iter(rows), jobs=2)
    assert one["jobs"] == 1 and two["jobs"] == 2
    assert two_clean == one_clean and two["hits"] == one["hits"] and one["flagged"] == 40


def test_decontaminate_takes_benchmark_specs_and_other_settings(seeds):
    he = humaneval_rows()
    rows = [seeds[0], {"id": "x", "solution": humaneval_code(he[3])}]
    clean, report = decontam.decontaminate(rows, ["humaneval"], n=10, shingle=30)
    assert clean == [seeds[0]] and report["settings"]["shingle"] == 30
    assert report["settings"]["n"] == 10


def test_a_row_of_chat_messages_is_read(index):
    he = humaneval_rows()[20]
    row = {"id": "chat", "messages": [
        {"role": "user", "content": "Please help."},
        {"role": "assistant", "content": f"Sure:\n```python\n{humaneval_code(he)}```\n"}]}
    assert decontam.row_fields(row)["solution"].startswith("Sure:")
    assert any(h["item"] == he["task_id"] and h["field"] == "solution"
               for h in index.check(row))


def test_code_in_an_instruction_is_checked(index):
    he = humaneval_rows()[33]
    code = rename(humaneval_code(he), 5)
    row = {"id": "fix", "instruction": f"Fix the bug in:\n```python\n{code}```", "solution": ""}
    hits = index.check(row)
    assert any(h["item"] == he["task_id"] and h["field"] == "instruction"
               and h["method"] != "word-ngram" for h in hits), hits


@pytest.mark.parametrize("kind", ["jsonl", "json", "parquet"])
def test_a_user_benchmark_file_with_common_field_names(tmp_path, seeds, kind):
    problems = [{"id": "p1", "question": "Count the lighthouses whose lamps are lit at dusk "
                 "given the keeper schedule for the whole coast.",
                 "answer": "```python\ndef lit(keepers, dusk):\n    on = 0\n    for start, end "
                           "in keepers:\n        if start <= dusk < end:\n            on += 1\n"
                           "    return on\n```",
                 "tests": ["assert lit([(1, 5)], 2) == 1", "assert lit([(1, 5)], 7) == 0"]}]
    path = tmp_path / f"coast.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(p) + "\n" for p in problems))
    elif kind == "json":
        path.write_text(json.dumps({"problems": problems}))
    else:
        pq.write_table(pa.Table.from_pylist(problems), path)
    bench = decontam.load_benchmark(str(path))
    assert bench.name == "coast" and bench.items == 1
    assert bench.problems[0].code[0].startswith("def lit(")
    leaked = {"id": "leak", "instruction": "Write `count_on(schedule, t)`.",
              "solution": "def count_on(schedule, t):\n    n = 0\n    for a, b in schedule:\n"
                          "        if a <= t < b:\n            n += 1\n    return n\n"}
    clean, report = decontam.decontaminate([seeds[0], leaked], [bench])
    assert clean == [seeds[0]]
    assert {(h["item"], h["method"]) for h in report["hits"]} == {
        ("coast/p1", "code-normalized"), ("coast/p1", "statements")}


def test_missing_mbpp_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(decontam.BenchmarkUnavailable) as exc:
        decontam.load_benchmark("mbpp", tmp_path / "repo")
    message = str(exc.value)
    assert "\n" not in message and "mbpp.jsonl" in message and "provide that file" in message


def test_the_seed_check_api_is_unchanged(tmp_path):
    path = tmp_path / "mbpp.jsonl"
    path.write_text(json.dumps({"task_id": 7, "text": "Write a function to count the vowel "
                                "letters that appear in the given input string and return "
                                "the total count found.", "code": "def f(s):\n    return 1\n",
                                "test_list": ["assert f('a') == 1"]}) + "\n")
    bench = decontam.load_benchmark(str(path))
    leaked = ("Please: write a function to count the vowel letters that appear in the given "
              "input string and more")
    hits = decontam.overlaps(["nothing here", leaked], bench)
    assert [(h.index, h.source) for h in hits] == [(1, "mbpp/7")]
    assert bench.problems[0].tests == ["assert f('a') == 1"]


# --- the CLI ------------------------------------------------------------------------------

@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("decontam")(decontam_cli.decontam)
    app.command("noop")(lambda: None)  # two commands: the name is part of the call
    return app


def _corpus(seeds: list[dict]) -> list[dict]:
    he = humaneval_rows()
    leak = {**seeds[3], "id": "leak-he", "solution": rename(humaneval_code(he[10]), 1)}
    return [*seeds[:30], leak]


def test_cli_writes_clean_jsonl_and_a_report(cli, tmp_path, seeds):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in _corpus(seeds)))
    out = tmp_path / "out" / "clean.jsonl"
    result = CliRunner().invoke(cli, ["decontam", str(corpus), "--out", str(out),
                                      "--benchmark", "humaneval"])
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    assert "\n" not in line
    assert line.startswith("decontam: 31 rows, 1 flagged (humaneval 1), 30 kept")
    assert read_jsonl(out) == seeds[:30]
    report = json.loads((tmp_path / "out" / "clean.report.json").read_text())
    assert report["input"] == str(corpus) and report["flagged"] == 1
    assert {(h["id"], h["item"]) for h in report["hits"]} == {("leak-he", "HumanEval/10")}


@needs_mbpp
def test_cli_default_benchmarks_and_parquet_keep_the_schema(cli, tmp_path, seeds):
    rows = _corpus(seeds)
    mbpp = read_jsonl(MBPP)[100]
    rows.append({**seeds[4], "id": "leak-mbpp", "instruction": mbpp["text"]})
    rows = [{**r, "lineage": json.dumps({"parents": [], "generation": 0})} for r in rows]
    corpus = tmp_path / "corpus.parquet"
    pq.write_table(pa.Table.from_pylist(rows), corpus)
    out = tmp_path / "clean.parquet"
    result = CliRunner().invoke(cli, ["decontam", str(corpus), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 flagged (humaneval 1, mbpp 1)" in result.output
    table = pq.read_table(out)
    assert table.schema == pq.read_table(corpus).schema
    assert table.to_pylist() == rows[:30]
    report = json.loads((tmp_path / "clean.report.json").read_text())
    assert report["benchmarks"] == {"humaneval": 164, "mbpp": 974}
    assert {h["item"] for h in report["hits"]} == {"HumanEval/10", f"mbpp/{mbpp['task_id']}"}


def test_cli_jsonl_in_parquet_out(cli, tmp_path, seeds):
    corpus = tmp_path / "corpus.jsonl"
    rows = [{**r, "lineage": {"parents": ["a"], "generation": 1}} for r in seeds[:5]]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "clean.parquet"
    result = CliRunner().invoke(cli, ["decontam", str(corpus), "-o", str(out), "-b",
                                      "humaneval", "--ngram", "10"])
    assert result.exit_code == 0, result.output
    back = pq.read_table(out).to_pylist()
    assert [r["id"] for r in back] == [r["id"] for r in rows]
    assert json.loads(back[0]["lineage"]) == {"parents": ["a"], "generation": 1}
    assert json.loads((tmp_path / "clean.report.json").read_text())["settings"]["n"] == 10


@pytest.mark.parametrize("case", ["missing", "bad-json", "not-object", "not-corpus",
                                  "bad-out", "same-file", "bad-benchmark", "no-mbpp"])
def test_cli_bad_input_is_one_line_and_exit_2(cli, tmp_path, monkeypatch, case):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": "a", "instruction": "x", "solution": "y"}) + "\n")
    out = tmp_path / "clean.jsonl"
    args = ["decontam", str(corpus), "--out", str(out), "-b", "humaneval"]
    expected = ""
    if case == "missing":
        args[1] = str(tmp_path / "nope.jsonl")
        expected = "no such file"
    elif case == "bad-json":
        corpus.write_text('{"id": 1}\n{oops\n')
        expected = "corpus.jsonl:2: not valid JSON"
    elif case == "not-object":
        corpus.write_text("[1, 2]\n")
        expected = "not a JSON object"
    elif case == "not-corpus":
        corpus.write_text(json.dumps({"id": "a", "text": "hello"}) + "\n")
        expected = "row 1 has none of the fields"
    elif case == "bad-out":
        args[3] = str(tmp_path / "clean.csv")
        expected = "unknown format"
    elif case == "same-file":
        args[3] = str(corpus)
        expected = "is the input file"
    elif case == "bad-benchmark":
        args[5] = str(tmp_path / "nothing.jsonl")
        expected = "benchmark file not found"
    elif case == "no-mbpp":
        monkeypatch.setattr(decontam_cli, "ROOT", tmp_path / "repo")
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        args[5] = "mbpp"
        expected = "mbpp.jsonl"
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert message.startswith("error:") and "\n" not in message, message
    assert expected in message, message
    assert not out.exists() or case == "same-file"
