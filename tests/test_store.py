from __future__ import annotations

import json
import os

import pytest

from genetic_instruct.config import ConfigError, validate_config
from genetic_instruct.individual import ACCEPTED, REJECTED, Individual
from genetic_instruct.store import RunStore, StoreError


def ind(i: int, status=ACCEPTED) -> Individual:
    return Individual(id=f"id{i}", instruction=f"task {i}", status=status)


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "run")
    s.create(validate_config({}))
    s.commit(0, [ind(0), ind(1, REJECTED)], {"logbook": [{"generation": 0}]})
    return s


def crash_during_commit(store: RunStore, generation: int, cands, upto: str) -> None:
    """Replay commit() by hand and stop where a kill -9 would."""
    blob = "".join(json.dumps(c.to_dict()) + "\n" for c in cands).encode()
    start = store.candidates_path.stat().st_size
    tmp = store.checkpoints / f"gen-{generation:05d}.json.tmp"
    tmp.write_text(json.dumps({"generation": generation, "candidates_offset": start + len(blob),
                               "logbook": [{"generation": 0}, {"generation": generation}]}))
    if upto == "checkpoint":
        return
    with store.candidates_path.open("ab") as f:
        f.write(blob if upto == "append" else blob[: len(blob) // 2])


def test_commit_and_read(store):
    assert [c.id for c in store.accepted()] == ["id0"]
    assert store.latest_checkpoint()["generation"] == 0
    assert (store.path / "logbook.jsonl").read_text().strip() == '{"generation": 0}'


def test_crash_before_append_rolls_back(store):
    crash_during_commit(store, 1, [ind(2)], "checkpoint")
    store.open(validate_config({}))
    assert store.latest_checkpoint()["generation"] == 0
    assert not list(store.checkpoints.glob("*.tmp"))
    assert [c.id for c in store.iter_candidates()] == ["id0", "id1"]


def test_crash_mid_append_truncates(store):
    crash_during_commit(store, 1, [ind(2), ind(3)], "half")
    store.open(validate_config({}))
    assert [c.id for c in store.iter_candidates()] == ["id0", "id1"]
    assert store.latest_checkpoint()["generation"] == 0


def test_crash_after_append_rolls_forward(store):
    crash_during_commit(store, 1, [ind(2)], "append")
    store.open(validate_config({}))
    assert store.latest_checkpoint()["generation"] == 1
    assert [c.id for c in store.iter_candidates()] == ["id0", "id1", "id2"]
    assert len((store.path / "logbook.jsonl").read_text().splitlines()) == 2


def test_existing_run_needs_resume(store):
    with pytest.raises(StoreError, match="--resume"):
        RunStore(store.path).create(validate_config({}))


def test_resume_with_another_config_is_refused(store):
    with pytest.raises(ConfigError, match="made with another config"):
        store.open(validate_config({"seed": 99}))


def test_unwritable_directory(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/genetic-instruct-run"  # not writable even for root
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        target = ro / "run"
    with pytest.raises(StoreError, match="cannot write the run directory"):
        RunStore(target).create(validate_config({}))
