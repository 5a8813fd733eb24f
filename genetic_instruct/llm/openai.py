"""OpenAI-compatible HTTP backend: NVIDIA NIM, a ``vllm serve`` node, ``genetic-instruct
serve``, or any provider speaking ``/v1/chat/completions``.

Requests run concurrently on a thread pool (``concurrency`` in flight); failures that may
pass (429, 408, 5xx, timeouts, dropped connections) are retried with exponential backoff
and jitter, honouring ``Retry-After`` (both capped by ``max_backoff_s``). The API key is
read from the environment variable named by ``api_key_env``, never from the config (the
run directory keeps a copy of the config).
"""

from __future__ import annotations

import difflib
import email.utils
import os
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable

from .base import BackendError, ChatRequest, Completion, apply_stop
from .fake import join_prefill

OPTIONS = ("base_url", "api_key_env", "concurrency", "timeout_s", "max_retries", "backoff_s",
           "max_backoff_s", "prefill", "extra_body", "native_n")
RETRY_STATUS = {408, 429, 500, 502, 503, 504}
MAX_STOP = 4  # OpenAI's limit on stop strings; the rest are applied locally
PREFILL_HINT = "\n\nBegin your answer with exactly this text, then continue it:\n{prefill}"


class _Give(Exception):
    """A permanent failure: no retry."""


def check_options(options: dict[str, Any]) -> None:
    """Refuse unknown options (with a did-you-mean) and a literal API key."""
    if "api_key" in options:
        raise BackendError("openai backend: do not put the key in the config (runs save it); "
                           "set options.api_key_env to the NAME of an environment variable "
                           "holding it, e.g. api_key_env: NVIDIA_API_KEY")
    for key in options:
        if key not in OPTIONS:
            close = difflib.get_close_matches(key, OPTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BackendError(f"openai backend: unknown option {key!r}{hint}; known: "
                               f"{', '.join(OPTIONS)}")
    if not options.get("base_url"):
        raise BackendError("openai backend: options.base_url is required, e.g. "
                           "https://integrate.api.nvidia.com/v1 or http://localhost:8000/v1")
    if options.get("prefill", "continue") not in ("continue", "prompt"):
        raise BackendError(f"openai backend: options.prefill must be 'continue' or 'prompt' "
                           f"(got {options['prefill']!r})")
    if not isinstance(options.get("extra_body", {}), dict):
        raise BackendError("openai backend: options.extra_body must be a mapping")


def _positive(options: dict, key: str, default, kind=float, zero_ok: bool = False):
    value = options.get(key, default)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise BackendError(f"openai backend: options.{key} must be a number "
                           f"(got {value!r})") from None
    if value < 0 or (value == 0 and not zero_ok):
        raise BackendError(f"openai backend: options.{key} must be positive (got {value!r})")
    return value


def retry_after(headers) -> float | None:
    """Seconds from a ``Retry-After`` header (a number or an HTTP date), if any."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_message(response) -> str:
    """The server's error message (one line), from OpenAI's shape or whatever it sent."""
    return " ".join(_error_text(response).split())[:500]


def _error_text(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            for key in ("message", "detail", "msg"):
                if isinstance(err.get(key), str):
                    return err[key]
        if isinstance(err, str):
            return err
        if isinstance(body.get("detail"), str):
            return body["detail"]
    return str(body)[:300]


class OpenAIBackend:
    """Chat completions over HTTP; ``generate`` blocks until every request is answered."""

    name = "openai"

    def __init__(self, model: str = "embedded", device: str = "auto", dtype: str = "auto",
                 batch_size: int = 32, **options):
        import httpx

        check_options(options)
        self.base_url = str(options["base_url"]).rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model_name = str(model)
        self.identity = f"openai:{self.base_url}:{self.model_name}"
        self.api_key_env = str(options.get("api_key_env") or "").lstrip("$") or None
        self.concurrency = _positive(options, "concurrency", batch_size, int)
        self.timeout_s = _positive(options, "timeout_s", 120.0)
        self.max_retries = _positive(options, "max_retries", 6, int, zero_ok=True)
        self.backoff_s = _positive(options, "backoff_s", 0.5, zero_ok=True)
        self.max_backoff_s = _positive(options, "max_backoff_s", 30.0, zero_ok=True)
        self.prefill_mode = options.get("prefill", "continue")
        self.extra_body = dict(options.get("extra_body") or {})
        self.native_n = options.get("native_n", True)
        if not isinstance(self.native_n, bool):
            raise BackendError(f"openai backend: options.native_n must be true or false "
                               f"(got {self.native_n!r})")
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise BackendError(f"openai backend: the environment variable "
                                   f"{self.api_key_env} is not set: export {self.api_key_env}="
                                   f"<your key> (options.api_key_env names it)")
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(self.timeout_s),
            limits=httpx.Limits(max_connections=self.concurrency,
                                max_keepalive_connections=self.concurrency))
        self._httpx = httpx
        self._lock = threading.Lock()
        self.stats = {"prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0, "retries": 0}

    def close(self) -> None:
        self.client.close()

    # --- one HTTP call -----------------------------------------------------------------

    def body(self, req: ChatRequest, n: int, seed: int | None) -> dict[str, Any]:
        s = req.sampling
        messages = [dict(m) for m in req.messages]
        body: dict[str, Any] = {"model": self.model_name, "messages": messages,
                                "temperature": s.temperature, "top_p": s.top_p,
                                "max_tokens": s.max_tokens}
        if req.prefill and self.prefill_mode == "continue":
            messages.append({"role": "assistant", "content": req.prefill})
            body.update(continue_final_message=True, add_generation_prompt=False)
        elif req.prefill:
            hint = PREFILL_HINT.format(prefill=req.prefill)
            users = [m for m in messages if m.get("role") == "user"]
            if users:
                users[-1]["content"] = users[-1]["content"] + hint
            else:
                messages.append({"role": "user", "content": hint.lstrip()})
        if n > 1:
            body["n"] = n
        if seed is not None:
            body["seed"] = seed
        stop = [x for x in s.stop if x][:MAX_STOP]
        if stop:
            body["stop"] = stop
        body.update(self.extra_body)
        return body

    def _post(self, body: dict[str, Any], cancel: threading.Event) -> dict[str, Any]:
        """POST with retries; the parsed JSON answer, or BackendError."""
        httpx = self._httpx
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            wait_s = None
            try:
                r = self.client.post(self.url, json=body)
            except httpx.TimeoutException:
                last = f"no answer within timeout_s={self.timeout_s:g}s"
            except httpx.TransportError as exc:
                last = f"connection failed: {type(exc).__name__}: {exc}"
            else:
                if r.status_code == 200:
                    try:
                        data = r.json()
                    except ValueError:
                        data = None
                    if isinstance(data, dict) and isinstance(data.get("choices"), list):
                        return data
                    last = "HTTP 200 with a body that is not a chat completion"
                elif r.status_code in RETRY_STATUS:
                    last = f"HTTP {r.status_code}: {error_message(r)}"
                    wait_s = retry_after(r.headers)
                else:
                    raise BackendError(self._permanent(r.status_code, error_message(r)))
            if attempt == self.max_retries or cancel.is_set():
                break
            if wait_s is None:
                wait_s = min(self.max_backoff_s, self.backoff_s * 2 ** attempt)
                wait_s *= random.uniform(0.5, 1.0)
            with self._lock:
                self.stats["retries"] += 1
            if cancel.wait(min(wait_s, self.max_backoff_s)):
                break
        raise BackendError(f"openai backend: {self.url} failed after {attempt + 1} attempts; "
                           f"last error: {last}")

    def _permanent(self, status: int, message: str) -> str:
        text = f"openai backend: {self.url} answered HTTP {status}: {message}"
        if status in (401, 403):
            text += (f" (check the key in ${self.api_key_env})" if self.api_key_env else
                     " (no key was sent: set options.api_key_env to the variable holding it)")
        elif status == 404:
            text += f" (check base_url and the model name {self.model_name!r})"
        return text

    # --- a batch -----------------------------------------------------------------------

    def generate(self, requests: list[ChatRequest], progress: Callable | None = None,
                 on_done: Callable | None = None) -> list[Completion]:
        """Answer ``requests`` in order; ``on_done`` and ``progress`` run in this thread."""
        if not requests:
            return []
        t0 = time.perf_counter()
        parts: list[dict[int, tuple[str, str]]] = [{} for _ in requests]
        usage = [[0, 0] for _ in requests]
        out: list[Completion | None] = [None] * len(requests)
        cancel = threading.Event()
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, 256),
                                  thread_name_prefix="openai")
        pending: dict[Future, tuple[int, int]] = {}
        refills = [0] * len(requests)
        inflight = [0] * len(requests)

        def submit(i: int, first: int, n: int) -> None:
            seed = requests[i].sampling.seed
            if seed is not None:
                seed += first
            body = self.body(requests[i], n, seed)
            pending[pool.submit(self._post, body, cancel)] = (i, first)
            inflight[i] += 1

        try:
            for i, req in enumerate(requests):
                n = self._wanted(req)
                for first, count in ([(0, n)] if self.native_n else [(k, 1) for k in range(n)]):
                    submit(i, first, count)
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i, first = pending.pop(fut)
                    inflight[i] -= 1
                    self._collect(requests[i], fut.result(), first, parts[i], usage[i])
                    if inflight[i]:
                        continue
                    missing = [k for k in range(self._wanted(requests[i])) if k not in parts[i]]
                    if missing:  # fewer choices than asked for: ask for the rest, one each
                        refills[i] += 1
                        if refills[i] > 2:
                            raise BackendError(f"openai backend: {self.url} keeps returning "
                                               f"fewer choices than asked for")
                        for k in missing:
                            submit(i, k, 1)
                        continue
                    out[i] = self._completion(requests[i], parts[i], usage[i])
                    if on_done:
                        on_done(i, out[i])
                    if progress:
                        progress(1)
        finally:
            cancel.set()
            pool.shutdown(wait=False, cancel_futures=True)
            self.stats["seconds"] += time.perf_counter() - t0
        return [c for c in out if c is not None]

    def _collect(self, req: ChatRequest, data: dict, first: int,
                 got: dict[int, tuple[str, str]], usage: list[int]) -> None:
        stop = [x for x in req.sampling.stop if x]
        choices = sorted(data["choices"], key=lambda c: c.get("index", 0)
                         if isinstance(c, dict) else 0)
        for j, choice in enumerate(choices):
            k = first + j
            if k >= self._wanted(req) or k in got or not isinstance(choice, dict):
                continue
            content = (choice.get("message") or {}).get("content") or ""
            rest = self._continuation(req.prefill, content)
            rest, stopped = apply_stop(rest, stop)
            reason = "stop" if stopped else (
                "length" if choice.get("finish_reason") == "length" else "stop")
            got[k] = (req.prefill + rest, reason)
        u = data.get("usage") or {}
        usage[0] += int(u.get("prompt_tokens") or 0)
        usage[1] += int(u.get("completion_tokens") or 0)

    def _continuation(self, prefill: str, content: str) -> str:
        if not prefill:
            return content
        if self.prefill_mode == "prompt":
            return join_prefill(prefill, content)[len(prefill):]
        return content.removeprefix(prefill)

    @staticmethod
    def _wanted(req: ChatRequest) -> int:
        """Samples to ask for: greedy sampling asks once and repeats the answer ``n`` times
        (some servers refuse n > 1 when greedy)."""
        return 1 if req.sampling.temperature <= 0 else req.sampling.n

    def _completion(self, req: ChatRequest, got: dict[int, tuple[str, str]],
                    usage: list[int]) -> Completion:
        ks = [k % len(got) for k in range(req.sampling.n)]
        comp = Completion(texts=[got[k][0] for k in ks], prompt_tokens=usage[0],
                          completion_tokens=usage[1], finish_reasons=[got[k][1] for k in ks])
        self.stats["prompt_tokens"] += comp.prompt_tokens
        self.stats["completion_tokens"] += comp.completion_tokens
        return comp
