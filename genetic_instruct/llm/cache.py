"""A response cache: no completion is paid for twice.

Each sample of a request is stored under a hash of the backend's identity, the full
messages, the prefill, the sampling parameters (seed included) and the sample's index.
The store is SQLite in WAL mode, in the run directory or at a path several runs share.
A request whose ``n`` samples are all stored is answered from the cache; the others go
to the backend, and each answer is committed as soon as the backend reports it, so a
crash loses nothing already paid for.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable

from .base import Backend, ChatRequest, Completion

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    finish TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


def backend_identity(backend: Backend) -> str:
    """What makes a backend's answers differ: its own ``identity``, else name and model."""
    ident = getattr(backend, "identity", None)
    if ident:
        return str(ident)
    return f"{backend.name}:{getattr(backend, 'model_name', '')}"


def sample_key(identity: str, req: ChatRequest, index: int) -> str:
    s = req.sampling
    blob = json.dumps(
        [identity, req.messages, req.prefill, s.temperature, s.top_p, s.max_tokens,
         s.seed, list(s.stop), index],
        sort_keys=True, ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """SQLite (WAL) table of samples; safe to share between threads and processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)

    def get(self, keys: list[str]) -> dict[str, tuple]:
        found: dict[str, tuple] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    "SELECT key, text, finish, prompt_tokens, completion_tokens FROM samples "
                    f"WHERE key IN ({marks})", chunk)
                found.update({r[0]: r[1:] for r in rows})
        return found

    def put(self, rows: list[tuple[str, str, str, int, int]]) -> None:
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?, ?, ?)",
                [(*r, now) for r in rows])
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedBackend:
    """Wraps a backend: answers what the cache holds, sends the rest, stores every answer."""

    def __init__(self, inner: Backend, cache: ResponseCache):
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.model_name = getattr(inner, "model_name", "")
        self.identity = backend_identity(inner)
        self.stats = {"hits": 0, "misses": 0}

    def generate(self, requests: list[ChatRequest], progress: Callable | None = None,
                 on_done: Callable | None = None) -> list[Completion]:
        keys = [[sample_key(self.identity, r, k) for k in range(r.sampling.n)]
                for r in requests]
        stored = self.cache.get([k for ks in keys for k in ks])
        out: list[Completion | None] = [None] * len(requests)
        missing: list[int] = []
        for i, ks in enumerate(keys):
            if all(k in stored for k in ks):
                out[i] = _from_rows([stored[k] for k in ks])
                if on_done:
                    on_done(i, out[i])
            else:
                missing.append(i)
        self.stats["hits"] += len(requests) - len(missing)
        self.stats["misses"] += len(missing)
        if progress and len(missing) < len(requests):
            progress(len(requests) - len(missing))
        if not missing:
            return out  # type: ignore[return-value]

        saved: set[int] = set()

        def save(j: int, comp: Completion) -> None:
            i = missing[j]
            if i in saved:
                return
            saved.add(i)
            self.cache.put(_to_rows(keys[i], comp))
            if on_done:
                on_done(i, comp)

        kwargs: dict = {}
        params = inspect.signature(self.inner.generate).parameters
        if progress and "progress" in params:
            kwargs["progress"] = progress
        if "on_done" in params:
            kwargs["on_done"] = save
        comps = self.inner.generate([requests[i] for i in missing], **kwargs)
        if progress and "progress" not in params:
            progress(len(missing))
        for j, comp in enumerate(comps):
            save(j, comp)  # no-op where the backend already reported it
            out[missing[j]] = comp
        return out  # type: ignore[return-value]

    def __getattr__(self, attr: str):
        return getattr(self.inner, attr)


def _to_rows(keys: list[str], comp: Completion) -> list[tuple[str, str, str, int, int]]:
    """One row per sample; the prompt's tokens go on sample 0, completion tokens split."""
    n = len(keys)
    share, rest = divmod(comp.completion_tokens, n)
    rows = []
    for k, key in enumerate(keys):
        text = comp.texts[k] if k < len(comp.texts) else ""
        finish = comp.finish_reasons[k] if k < len(comp.finish_reasons) else "stop"
        rows.append((key, text, finish, comp.prompt_tokens if k == 0 else 0,
                     share + (rest if k == n - 1 else 0)))
    return rows


def _from_rows(rows: list[tuple]) -> Completion:
    return Completion(
        texts=[r[0] for r in rows],
        finish_reasons=[r[1] for r in rows],
        prompt_tokens=sum(r[2] for r in rows),
        completion_tokens=sum(r[3] for r in rows),
        cached=True,
    )
