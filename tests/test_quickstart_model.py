"""The quickstart on the real embedded model, with a tiny budget (a few minutes on 2 cores)."""

from __future__ import annotations

import json
import os

import pytest


from genetic_instruct.execution import ExecutorUnavailable, make_executor
from test_cli import run_cli, sets

pytestmark = pytest.mark.model


def best_executor() -> str:
    try:
        make_executor("auto").close()
        return "auto"
    except ExecutorUnavailable:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        return "local"


def test_quickstart_tiny_budget(root, tmp_path):
    out = tmp_path / "run"
    executor = best_executor()
    overrides = ["evolution.colonies=2", "evolution.offspring_per_colony=4",
                 "evolution.max_generations=1", f"execution.executor={executor}"]
    proc = run_cli("evolve", "--config", str(root / "configs/quickstart.yaml"),
                   "--out", str(out), *sets(overrides), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(x) for x in (out / "candidates.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    for row in rows:
        assert row["status"] in ("accepted", "rejected")
        assert row["lineage"]["operator"] in ("mutation", "crossover")
        assert row["lineage"]["parents"]
        assert row["raw"]["instruction"]  # the model's own words are kept
        if row["status"] == "rejected":
            assert row["reason"]
    state = json.loads((out / "checkpoints/gen-00000.json").read_text())
    assert state["tokens"]["instructor"]["out"] > 0
    assert (out / "dataset.jsonl").is_file()
    if any(r["status"] == "accepted" for r in rows):
        check = run_cli("verify", str(out / "dataset.jsonl"), "--executor", executor)
        assert check.returncode == 0, check.stdout
