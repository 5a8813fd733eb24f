"""The run directory: resolved config, append-only candidates, a checkpoint per generation.

Layout::

    RUN/config.yaml            the resolved config (what produced this run)
    RUN/run.json               fingerprint of the config, package version
    RUN/candidates.jsonl       every candidate, accepted or rejected, one JSON line each
    RUN/checkpoints/gen-N.json loop state after generation N (rng, colonies, logbook, ...)
    RUN/logbook.jsonl          one line of statistics per generation

A generation is committed in two phases, so a crash at any instant (kill -9 included)
leaves either the whole generation or none of it: (1) the checkpoint is written as
``gen-N.json.tmp`` naming the size ``candidates.jsonl`` will have; (2) the candidates are
appended and synced; (3) the checkpoint is renamed into place. On open, a ``.tmp`` whose
candidates are all on disk is rolled forward; anything else past the last checkpoint is
cut off and that generation is redone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from . import __version__
from .config import ConfigError, RunConfig, dump_config
from .individual import ACCEPTED, Individual


class StoreError(Exception):
    """A run directory that cannot be used; one line saying why and what to do."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunStore:
    """One run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.candidates_path = self.path / "candidates.jsonl"
        self.checkpoints = self.path / "checkpoints"

    # -- opening ---------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.path / "run.json").is_file()

    def create(self, cfg: RunConfig) -> None:
        if self.exists():
            raise StoreError(
                f"{self.path} already holds a run: pass --resume to continue it, "
                "or choose another --out"
            )
        try:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"cannot write the run directory {self.path}: {exc.strerror}") \
                from None
        (self.path / "config.yaml").write_text(dump_config(cfg))
        _write_atomic(self.path / "run.json", json.dumps(
            {"fingerprint": cfg.fingerprint(), "version": __version__}, indent=2))
        self.candidates_path.touch()

    def open(self, cfg: RunConfig) -> None:
        """Open an existing run for resuming with ``cfg``; repair an interrupted commit."""
        if not self.exists():
            raise StoreError(f"no run to resume at {self.path}")
        meta = json.loads((self.path / "run.json").read_text())
        if meta.get("fingerprint") != cfg.fingerprint():
            raise ConfigError(
                f"--resume: {self.path} was made with another config (see "
                f"{self.path / 'config.yaml'}); use the same config or a new --out"
            )
        if not os.access(self.path, os.W_OK):
            raise StoreError(f"cannot write the run directory {self.path}")
        self.recover()

    def recover(self) -> None:
        committed = self.latest_checkpoint()
        offset = committed["candidates_offset"] if committed else 0
        nxt = (committed["generation"] + 1) if committed else 0
        size = self.candidates_path.stat().st_size if self.candidates_path.exists() else 0
        for tmp in sorted(self.checkpoints.glob("gen-*.json.tmp")):
            state = _read_json(tmp)
            if (state and state.get("generation") == nxt
                    and size >= state["candidates_offset"]
                    and self._complete_lines(offset, state["candidates_offset"])):
                os.replace(tmp, tmp.with_suffix(""))  # roll forward
                offset = state["candidates_offset"]
                self._write_logbook(state)
            else:
                tmp.unlink()
        if size > offset:
            with self.candidates_path.open("r+b") as f:
                f.truncate(offset)
                os.fsync(f.fileno())

    def _complete_lines(self, start: int, end: int) -> bool:
        with self.candidates_path.open("rb") as f:
            f.seek(start)
            blob = f.read(end - start)
        if not blob.endswith(b"\n"):
            return False
        try:
            for line in blob.splitlines():
                json.loads(line)
        except ValueError:
            return False
        return True

    # -- checkpoints -----------------------------------------------------------------------
    def latest_checkpoint(self) -> dict[str, Any] | None:
        files = sorted(self.checkpoints.glob("gen-*.json"))
        return _read_json(files[-1]) if files else None

    def commit(self, generation: int, candidates: list[Individual], state: dict[str, Any])\
            -> None:
        """Append one generation's candidates and its checkpoint, atomically."""
        blob = "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in candidates)
        data = blob.encode()
        start = self.candidates_path.stat().st_size
        state = dict(state, generation=generation, candidates_offset=start + len(data))
        final = self.checkpoints / f"gen-{generation:05d}.json"
        tmp = final.with_name(final.name + ".tmp")
        with tmp.open("w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        with self.candidates_path.open("ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.checkpoints)
        self._write_logbook(state)

    def _write_logbook(self, state: dict[str, Any]) -> None:
        rows = state.get("logbook", [])
        _write_atomic(self.path / "logbook.jsonl", "".join(json.dumps(r) + "\n" for r in rows))

    # -- reading ---------------------------------------------------------------------------
    def iter_candidates(self) -> Iterator[Individual]:
        if not self.candidates_path.exists():
            return
        with self.candidates_path.open() as f:
            for line in f:
                if line.strip():
                    yield Individual.from_dict(json.loads(line))

    def accepted(self) -> list[Individual]:
        return [c for c in self.iter_candidates() if c.status == ACCEPTED]

    def config_text(self) -> str:
        return (self.path / "config.yaml").read_text()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
