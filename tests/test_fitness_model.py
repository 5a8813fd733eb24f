"""The embedded model with the execution gate, the LLM judge and novelty: the run
completes and its export carries every function's value and detail per sample."""

from __future__ import annotations

import json

import pytest

from test_cli import run_cli, sets
from test_quickstart_model import best_executor

pytestmark = pytest.mark.model

FUNCTIONS = ("[syntax, execution, {name: judge, gate: false, weight: 1},"
             " {name: novelty, weight: 0.5}]")


@pytest.mark.timeout(1800)
def test_execution_judge_novelty_on_the_embedded_model(root, tmp_path):
    out = tmp_path / "run"
    overrides = [f"fitness.functions={FUNCTIONS}", "evolution.colonies=2",
                 "evolution.offspring_per_colony=12", "evolution.max_generations=5",
                 "evolution.target_size=1", f"execution.executor={best_executor()}"]
    proc = run_cli("evolve", "--config", str(root / "configs/quickstart.yaml"),
                   "--out", str(out), *sets(overrides), timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(x) for x in (out / "dataset.jsonl").read_text().splitlines()]
    assert rows, "no sample passed the execution gate in 5 generations"
    for row in rows:
        assert set(row["fitness"]) == {"syntax", "execution", "judge", "novelty"}
        assert set(row["fitness_detail"]) == set(row["fitness"])
        judge = row["fitness_detail"]["judge"]
        assert judge.get("verdict") in ("yes", "no", "Yes", "No") or judge.get("reason")
        assert "nearest" in json.dumps(row["fitness_detail"]["novelty"])
        assert 0.0 <= row["score"] <= 1.0
    # the judge's calls are counted under its role
    state = json.loads(sorted((out / "checkpoints").glob("gen-*.json"))[-1].read_text())
    assert state["tokens"]["judge"]["calls"] >= len(rows)
    inspect = run_cli("inspect", str(out), check=True).stdout
    assert "judge" in inspect and "novelty" in inspect
