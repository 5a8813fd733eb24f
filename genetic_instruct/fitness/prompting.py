"""Helpers shared by the fitness functions that ask an LLM: seeds, requests, score parsing."""

from __future__ import annotations

import hashlib
import re

from ..config import RoleConfig
from ..evolution.operators import sampling_for
from ..llm.base import Backend, ChatRequest

REVIEWER = "You are a strict, fair reviewer of Python code and programming tasks."


def seed_for(run_seed: int, *parts: object) -> int:
    """A deterministic 31-bit seed from the run seed and e.g. (individual id, function)."""
    digest = hashlib.sha256(repr((run_seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def need_backend(llms: dict[str, Backend | None] | None, role: str, fn: str) -> Backend:
    backend = (llms or {}).get(role)
    if backend is None:
        raise ValueError(f"{fn!r} needs an LLM for the {role!r} role: name a backend under "
                         f"roles.{role}.backend (got none)")
    return backend


def request(role: RoleConfig | None, seed: int, user: str, tag: str, n: int = 1) -> ChatRequest:
    """One reviewer chat with the role's sampling (temperature, top_p, max_tokens) and ``n``."""
    sampling = sampling_for(role or RoleConfig(), seed, [])
    sampling.n = n
    return ChatRequest(messages=[{"role": "system", "content": REVIEWER},
                                 {"role": "user", "content": user}],
                       sampling=sampling, tag=tag)


def trim(text: str, limit: int = 300) -> str:
    """Whitespace collapsed; at most ``limit`` characters (an ellipsis marks a cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def tail(text: str, limit: int = 80) -> str:
    """The end of ``text`` (where a verdict should be), for error messages."""
    flat = " ".join(text.split())
    if not flat:
        return "empty output"
    return flat if len(flat) <= limit else "..." + flat[-(limit - 3):]


NUMBER = r"(-?\d+(?:\.\d+)?)"


def find_scores(text: str, names: dict[str, str]) -> dict[str, float]:
    """``name: number`` pairs, for each canonical name whose pattern (a regex alternative)
    is found; case-insensitive, markdown around the name tolerated (``**Correctness**: 4``,
    ``correctness = 4/5``, ``helpfulness:3.9,correctness:2.1``); the last one wins."""
    out: dict[str, float] = {}
    for name, pattern in names.items():
        rx = re.compile(rf"(?<![a-z])(?:{pattern})(?![a-z])[\s*_`]{{0,4}}[:=][\s*`]*{NUMBER}",
                        re.IGNORECASE)
        found = rx.findall(text)
        if found:
            out[name] = float(found[-1])
    return out
