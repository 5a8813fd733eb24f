"""A client for a reward model behind an OpenAI-compatible chat endpoint (e.g. NVIDIA NIM).

The conversation to score goes to ``POST {base_url}/chat/completions`` as a user turn (the
instruction) and an assistant turn (the solution). Reward NIMs answer with the attribute
scores in one of two places, both read here:

- ``choices[0].logprobs.content``: entries ``{"token": "helpfulness", "logprob": 3.9}``,
  one per attribute (the hosted API at integrate.api.nvidia.com; NeMo Curator's and
  CAMEL's Nemotron clients read this);
- ``choices[0].message.content``: ``"helpfulness:3.9,correctness:3.6,..."`` (the NIM for
  LLMs reward-model guide).
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import httpx

from ..llm.base import BackendError
from .prompting import find_scores, trim

ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


def api_key_from_env(api_key_env: str | None) -> str | None:
    """The key held by the environment variable named ``api_key_env`` (None: no key).

    A value that is not an upper-case variable name (``nvapi-...``, ``sk-...``) is
    refused: keys never go into a config file or a run directory.
    """
    if api_key_env is None:
        return None
    if not isinstance(api_key_env, str) or not ENV_NAME.fullmatch(api_key_env):
        raise ValueError("api_key_env takes the NAME of an environment variable that holds "
                         "the key (e.g. NVIDIA_API_KEY), never the key itself")
    key = os.environ.get(api_key_env)
    if not key:
        raise ValueError(f"api_key_env: the environment variable {api_key_env} is not set "
                         f"(export {api_key_env}=... before the run)")
    return key


def read_scores(body: Any, attributes: tuple[str, ...]) -> dict[str, float]:
    """The attribute scores of a chat-completion body (logprobs entries, then content)."""
    try:
        choice = body["choices"][0]
    except (KeyError, IndexError, TypeError):
        return {}
    scores: dict[str, float] = {}
    entries = ((choice.get("logprobs") or {}).get("content") or []
               if isinstance(choice, dict) else [])
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        token = str(entry.get("token", "")).strip().lower()
        if token in attributes and isinstance(entry.get("logprob"), (int, float)):
            scores[token] = float(entry["logprob"])
    content = ((choice.get("message") or {}).get("content") or "") if isinstance(choice, dict) \
        else ""
    if isinstance(content, str):
        for name, value in find_scores(content, {a: a for a in attributes}).items():
            scores.setdefault(name, value)
    return scores


class RewardEndpoint:
    """Posts one conversation per call; retries 408/409/429/5xx and transport errors."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 timeout_s: float = 60.0, max_retries: int = 2, backoff_s: float = 0.5):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.client = httpx.Client(headers=headers, timeout=timeout_s)

    def post(self, instruction: str, solution: str) -> tuple[Any, str | None]:
        """(the JSON body, None), or (None, why it failed) after the retries.

        A 4xx other than 408/409/429 (bad key, unknown model, wrong URL) raises
        BackendError: retrying cannot fix it and every candidate would fail the same way.
        """
        payload = {"model": self.model, "messages": [
            {"role": "user", "content": instruction},
            {"role": "assistant", "content": f"```python\n{solution}\n```"}]}
        error = "no attempt"
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                resp = self.client.post(self.url, json=payload)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                continue
            if resp.status_code == 200:
                try:
                    return resp.json(), None
                except ValueError:
                    return None, f"response is not JSON: {trim(resp.text, 120)}"
            error = f"HTTP {resp.status_code}: {trim(resp.text, 160)}"
            if resp.status_code not in RETRY_STATUS:
                raise BackendError(f"reward endpoint {self.url} answered {error}; check "
                                   f"base_url, model and api_key_env")
        return None, error

    def close(self) -> None:
        self.client.close()
