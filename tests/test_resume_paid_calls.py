"""End to end: a run on the OpenAI-compatible backend, killed with -9 and resumed, pays for
no completed call twice (the response cache replays them), and ends as the uninterrupted
run does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import CLI, cli_env
from servers import ServeProcess
from test_cli import run_cli, sets

CONCURRENCY = 4


@pytest.fixture(scope="module")
def server():
    srv = ServeProcess("--set", "backends.default.type=fake",
                       "--set", "backends.default.options={delay_s: 0.05}")
    yield srv
    srv.stop()


def served_requests(server) -> int:
    with urllib.request.urlopen(server.url.removesuffix("/v1") + "/stats", timeout=10) as r:
        return json.load(r)["requests"]


def overrides(server, fake_overrides):
    rest = [o for o in fake_overrides if not o.startswith(("backends.", "evolution.max_"))]
    return rest + [
        "backends.default.type=openai", f"backends.default.model={server.model}",
        f"backends.default.options={{base_url: '{server.url}', concurrency: {CONCURRENCY}}}",
        "evolution.max_generations=6",
    ]


def accepted(run_dir):
    rows = [json.loads(x) for x in (run_dir / "candidates.jsonl").read_text().splitlines()]
    return sorted((r["id"], r["solution"], tuple(r["tests"])) for r in rows
                  if r["status"] == "accepted")


def test_kill_9_and_resume_pays_no_completed_call_twice(root, tmp_path, server, fake_overrides):
    sets_ = sets(overrides(server, fake_overrides))
    config = str(root / "configs/quickstart.yaml")

    start = served_requests(server)
    run_cli("evolve", "--config", config, "--out", str(tmp_path / "whole"), *sets_,
            check=True)
    whole = served_requests(server) - start

    out = tmp_path / "run"
    start = served_requests(server)
    proc = subprocess.Popen([*CLI, "evolve", "--config", config, "--out", str(out), *sets_],
                            env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(list((out / "checkpoints").glob("gen-*.json"))) < 2:
        time.sleep(0.02)
    mark = served_requests(server)
    while time.time() < deadline and served_requests(server) < mark + 10:
        time.sleep(0.01)  # well inside generation 2 (or 3): some of its calls are paid for
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((out / "checkpoints").glob("gen-*.json")))
    assert 2 <= done < 6, "the run was not killed in the middle"

    resumed = run_cli("evolve", "--config", config, "--out", str(out), "--resume", *sets_,
                      check=True)
    total = served_requests(server) - start
    # every call that came back before the kill is replayed; at most the ones in flight
    # at the moment of the kill (<= concurrency) are asked again
    assert whole <= total <= whole + CONCURRENCY, (whole, total)
    hits = int(resumed.stderr.split(" LLM calls answered from the cache")[0].split()[-1]
               .split("/")[0])
    assert hits >= 10 - CONCURRENCY
    assert accepted(out) == accepted(tmp_path / "whole")
    inspect = run_cli("inspect", str(out), check=True).stdout
    assert "cache hits" in inspect
