"""Seed population loaders: the project's JSONL, any JSONL/Parquet file with a field
mapping, and Hugging Face datasets (``hf://ORG/NAME``).

Only ``instruction`` is required; a seed without solution or tests is fine (the loop
writes them). A Hugging Face dataset is read with the optional ``datasets`` package,
from the local cache when the Hub cannot be reached; a dataset that is neither cached
nor reachable is a one-line :class:`SeedError`, never a hang.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlparse

from .config import SeedsConfig
from .individual import ACCEPTED, Individual, Lineage, make_id

FIELDS = ("id", "instruction", "entry_point", "solution", "tests", "category", "difficulty")
HF_PREFIX = "hf://"
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
PROBE_TIMEOUT_S = 3.0


class SeedError(Exception):
    """Seeds cannot be read; the message names the file and the problem."""


def read_rows(path: Path) -> Iterable[dict[str, Any]]:
    if not path.is_file():
        raise SeedError(f"seed file not found: {path}")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise SeedError(f"{path}: not a readable Parquet file ({exc})") from None
        yield from table.to_pylist()
        return
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SeedError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise SeedError(f"{path}:{lineno}: each line must be a JSON object")
            yield row


def _offline_requested() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in OFFLINE_VARS)


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub (``HF_ENDPOINT``) opens within ``timeout``.

    Name resolution has no timeout of its own, so the probe runs in a daemon thread.
    """
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(ok)


@contextmanager
def _hf_offline(offline: bool) -> Iterator[None]:
    """Force the Hub libraries offline for the duration (env vars and loaded constants)."""
    if not offline:
        yield
        return
    saved_env = {v: os.environ.get(v) for v in OFFLINE_VARS}
    patched: list[tuple[Any, str, Any]] = []
    for module, names in (("huggingface_hub.constants", ("HF_HUB_OFFLINE",)),
                          ("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))):
        mod = sys.modules.get(module)  # already imported: its constants are read once
        for name in names if mod is not None else ():
            if hasattr(mod, name):
                patched.append((mod, name, getattr(mod, name)))
                setattr(mod, name, True)
    os.environ.update({v: "1" for v in OFFLINE_VARS})
    try:
        yield
    finally:
        for mod, name, value in patched:
            setattr(mod, name, value)
        for var, value in saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def read_hf_rows(dataset_id: str, split: str = "train", subset: str | None = None,
                 *, probe_timeout: float = PROBE_TIMEOUT_S) -> list[dict[str, Any]]:
    """Rows of a Hugging Face dataset, from the Hub or (offline) the local cache."""
    where = f"{HF_PREFIX}{dataset_id}"
    if "datasets" not in sys.modules and importlib.util.find_spec("datasets") is None:
        raise SeedError(f"seeds.path {where} needs the optional `datasets` package: "
                        "pip install datasets")
    offline = _offline_requested() or not hub_reachable(probe_timeout)
    with _hf_offline(offline):
        import datasets

        try:
            data = datasets.load_dataset(dataset_id, subset, split=split)
            return [dict(row) for row in data]
        except Exception as exc:  # datasets raises many types; each becomes one line
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            if offline:
                raise SeedError(
                    f"{where} (split {split!r}) is not in the local Hugging Face cache and the "
                    "Hub cannot be reached (offline); load it once with network access, or "
                    f"point HF_HOME at a cache that has it [{type(exc).__name__}: {first}]"
                ) from None
            raise SeedError(f"{where}: cannot load split {split!r}"
                            f"{f' of subset {subset!r}' if subset else ''} "
                            f"[{type(exc).__name__}: {first}]") from None


def row_to_individual(row: dict[str, Any], mapping: dict[str, str], where: str) -> Individual:
    def get(name: str, default: Any = None) -> Any:
        return row.get(mapping.get(name, name), default)

    instruction = get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        field = mapping.get("instruction", "instruction")
        raise SeedError(f"{where}: no instruction in field {field!r} (set seeds.mapping)")
    tests = get("tests") or []
    if isinstance(tests, str):
        tests = [t for t in tests.splitlines() if t.strip()]
    ind = Individual(
        id=str(get("id") or make_id("seed", instruction)),
        instruction=instruction.strip(),
        entry_point=get("entry_point") or "",
        solution=get("solution") or "",
        tests=list(tests),
        lineage=Lineage(operator="seed"),
        status=ACCEPTED,
    )
    ind.raw["category"] = get("category") or ""
    ind.raw["difficulty"] = get("difficulty") or ""
    return ind


def source_rows(cfg: SeedsConfig, root: Path | None = None) -> tuple[str, Iterable[dict]]:
    """(a name for messages, the raw rows) of the source ``cfg.path`` names."""
    if cfg.path.startswith(HF_PREFIX):
        dataset_id = cfg.path[len(HF_PREFIX):].strip("/")
        if not dataset_id:
            raise SeedError(f"seeds.path {cfg.path!r}: expected hf://ORG/NAME")
        return cfg.path, read_hf_rows(dataset_id, cfg.split, cfg.subset)
    path = Path(cfg.path)
    if not path.is_absolute() and root is not None and not path.exists():
        path = root / path
    return str(path), read_rows(path)


def load_seeds(cfg: SeedsConfig, root: Path | None = None) -> list[Individual]:
    """Read, filter and cut the seed population described by ``cfg``."""
    name, rows = source_rows(cfg, root)
    seeds = []
    for i, row in enumerate(rows):
        ind = row_to_individual(row, cfg.mapping, f"{name}: row {i + 1}")
        if cfg.difficulty and ind.raw["difficulty"] not in cfg.difficulty:
            continue
        if cfg.categories and ind.raw["category"] not in cfg.categories:
            continue
        seeds.append(ind)
    if cfg.limit:
        seeds = seeds[: cfg.limit]
    if not seeds:
        raise SeedError(f"{name}: no seed left after the filters in seeds:")
    seen: set[str] = set()
    for ind in seeds:
        if ind.id in seen:
            raise SeedError(f"{name}: duplicate seed id {ind.id!r}")
        seen.add(ind.id)
    return seeds
