from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "genetic_instruct.cli"]


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def fake_overrides() -> list[str]:
    """--set overrides for a fast logic run: fake backend, local executor."""
    return [
        "backends.default.type=fake",
        "execution.executor=local",
        "evolution.offspring_per_colony=6",
        "evolution.colonies=2",
        "evolution.max_generations=3",
        "evolution.target_size=1000",
        "seeds.limit=20",
    ]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "200"
    return env
