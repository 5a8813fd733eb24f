from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pyarrow.parquet as pq
import pytest

from conftest import CLI, cli_env


def run_cli(*args, check=False, timeout=300):
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, env=cli_env(),
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout + proc.stderr)
    return proc


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def test_evolve_inspect_export(root, tmp_path, fake_overrides):
    out = tmp_path / "run"
    proc = run_cli("evolve", "--config", str(root / "configs/quickstart.yaml"), "--out", str(out),
                   *sets(fake_overrides), check=True)
    assert "dataset:" in proc.stdout
    rows = [json.loads(x) for x in (out / "dataset.jsonl").read_text().splitlines()]
    assert rows
    row = rows[0]
    assert row["messages"][0] == {"role": "user", "content": row["instruction"]}
    assert row["messages"][1]["role"] == "assistant"
    assert row["solution"].strip() in row["messages"][1]["content"]
    assert set(row) >= {"instruction", "solution", "tests", "entry_point", "fitness", "lineage"}
    assert row["lineage"]["operator"] in ("mutation", "crossover")

    insp = run_cli("inspect", str(out), check=True)
    assert "per operator" in insp.stdout and "crossover" in insp.stdout

    pq_out = tmp_path / "data.parquet"
    run_cli("export", str(out), "--format", "parquet", "--out", str(pq_out), check=True)
    table = pq.read_table(pq_out)
    assert table.num_rows == len(rows)
    assert table.column("tests").to_pylist()[0] == row["tests"]


@pytest.mark.parametrize("args,message", [
    (["--set", "evolution.colonise=2"], "unknown key 'evolution.colonise' (did you mean 'colonies'?)"),
    (["--set", "evolution.colonies=two"], "evolution.colonies"),
    (["--set", "seeds.path=/nonexistent/seeds.jsonl"], "seed file not found: /nonexistent/seeds.jsonl"),
    (["--set", "backends.default.type=transfomers"], "did you mean 'transformers'"),
    (["--set", "execution.executor=dokcer"], "did you mean 'docker'"),
])
def test_bad_input_is_one_clear_line(root, tmp_path, args, message):
    proc = run_cli("evolve", "--config", str(root / "configs/quickstart.yaml"),
                   "--out", str(tmp_path / "run"), *args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert message in " ".join(proc.stderr.split())


def test_unwritable_output_dir(root, tmp_path, fake_overrides):
    proc = run_cli("evolve", "--config", str(root / "configs/quickstart.yaml"),
                   "--out", "/proc/gi-run", *sets(fake_overrides))
    assert proc.returncode == 2
    assert "cannot write the run directory /proc/gi-run" in proc.stderr


def test_resume_with_another_config(root, tmp_path, fake_overrides):
    out = str(tmp_path / "run")
    base = ["evolve", "--config", str(root / "configs/quickstart.yaml"), "--out", out]
    run_cli(*base, *sets(fake_overrides + ["evolution.max_generations=1"]), check=True)
    again = run_cli(*base, *sets(fake_overrides + ["evolution.max_generations=1"]))
    assert again.returncode == 2 and "--resume" in again.stderr
    other = run_cli(*base, "--resume", *sets(fake_overrides + ["seed=123"]))
    assert other.returncode == 2
    assert "was made with another config" in other.stderr


def accepted_ids(run_dir):
    ids = []
    path = run_dir / "candidates.jsonl"
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line being written at the moment of the kill
        if row["status"] == "accepted":
            ids.append(row["id"])
    return ids


def test_kill_9_then_resume_loses_nothing(root, tmp_path, fake_overrides):
    out = tmp_path / "run"
    overrides = fake_overrides + ["evolution.max_generations=12", "backends.default.options={delay_s: 0.15}"]
    cmd = [*CLI, "evolve", "--config", str(root / "configs/quickstart.yaml"), "--out", str(out),
           *sets(overrides)]
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "checkpoints").glob("gen-*.json"))) < 3:
        time.sleep(0.05)
    time.sleep(0.2)  # land somewhere inside a generation
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = accepted_ids(out)
    assert before, "the run was killed before accepting anything"
    done = len(list((out / "checkpoints").glob("gen-*.json")))
    assert done < 12, "the run finished before it could be killed"

    run_cli("evolve", "--config", str(root / "configs/quickstart.yaml"), "--out", str(out),
            "--resume", *sets(overrides), check=True)
    after = accepted_ids(out)
    assert set(before) <= set(after)
    assert len(after) == len(set(after))
    assert len(list((out / "checkpoints").glob("gen-*.json"))) == 12


def test_verify_reruns_the_gates(root, tmp_path, fake_overrides):
    out = tmp_path / "run"
    run_cli("evolve", "--config", str(root / "configs/quickstart.yaml"), "--out", str(out),
            *sets(fake_overrides + ["evolution.max_generations=1"]), check=True)
    rows = [json.loads(x) for x in (out / "dataset.jsonl").read_text().splitlines()]
    good = run_cli("verify", str(out / "dataset.jsonl"), "--executor", "local")
    assert good.returncode == 0 and f"{len(rows)} passed, 0 failed" in good.stdout
    ep = rows[0]["entry_point"]
    rows[0]["tests"][0] = f"assert {ep}(1) == -12345"
    rows[1]["tests"] = rows[1]["tests"][:1]
    bad_path = tmp_path / "bad.jsonl"
    bad_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bad = run_cli("verify", str(bad_path), "--executor", "local")
    assert bad.returncode == 1
    assert f"FAIL {rows[0]['id']}: execution: failed" in bad.stdout
    assert f"FAIL {rows[1]['id']}: syntax: 1 distinct asserts" in bad.stdout
