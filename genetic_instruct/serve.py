"""An OpenAI-compatible HTTP server over one backend, with dynamic batching.

Each connection gets a handler thread; handlers put their requests on a queue and wait.
One worker thread takes everything pending (waiting a few milliseconds for more, up to
``max_batch`` requests), calls ``backend.generate`` once and wakes the handlers. Only that
worker touches the backend, so backends need not be thread-safe.

Endpoints: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/chat/completions``,
``GET /health`` and ``GET /stats`` (counters: requests, batches, errors, tokens).
"""

from __future__ import annotations

import json
import queue
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .llm.base import ChatRequest, Completion, Sampling

DEFAULT_MAX_TOKENS = 256
MAX_BODY = 32 * 1024 * 1024
ROUTES = {"/v1/models": "GET", "/v1/chat/completions": "POST", "/health": "GET",
          "/stats": "GET"}
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class ApiError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {message, type, param, code}}``."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 param: str | None = None, type_: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type_

    def payload(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


class _Job:
    def __init__(self, request: ChatRequest):
        self.request = request
        self.done = threading.Event()
        self.result: Completion | None = None
        self.error: BaseException | None = None


class Batcher:
    """Turns concurrent ``submit`` calls into batched ``backend.generate`` calls."""

    def __init__(self, backend, max_batch: int, wait_s: float = 0.005):
        self.backend = backend
        self.max_batch = max(1, int(max_batch))
        self.wait_s = wait_s
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._stats = {"requests": 0, "batches": 0, "errors": 0, "largest_batch": 0,
                       "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._thread.start()

    def submit(self, request: ChatRequest) -> Completion:
        """Queue one request and wait for its completion (raises the backend's error)."""
        job = _Job(request)
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def stats(self) -> dict[str, Any]:
        with self._lock:
            out = dict(self._stats)
        out["queued"] = self._queue.qsize()
        out["seconds"] = round(out["seconds"], 3)
        return out

    def close(self) -> None:
        self._queue.put(None)

    def _take(self) -> list[_Job | None]:
        jobs = [self._queue.get()]
        deadline = time.monotonic() + self.wait_s
        while len(jobs) < self.max_batch and jobs[-1] is not None:
            left = deadline - time.monotonic()
            try:
                jobs.append(self._queue.get(timeout=left) if left > 0
                            else self._queue.get_nowait())
            except queue.Empty:
                break
        return jobs

    def _run(self) -> None:
        while True:
            jobs = self._take()
            stopping = jobs[-1] is None
            batch = [j for j in jobs if j is not None]
            if batch:
                self._answer(batch)
            if stopping:
                return

    def _answer(self, jobs: list[_Job]) -> None:
        t0 = time.perf_counter()
        try:
            results = self.backend.generate([j.request for j in jobs])
            if len(results) != len(jobs):
                raise RuntimeError(f"backend returned {len(results)} completions for "
                                   f"{len(jobs)} requests")
        except Exception as exc:  # the batch fails, the server keeps serving
            print(f"serve: batch of {len(jobs)} failed: {type(exc).__name__}: {exc}",
                  file=sys.stderr, flush=True)
            with self._lock:
                self._count(jobs, t0)
                self._stats["errors"] += len(jobs)
            for j in jobs:
                j.error = exc
                j.done.set()
            return
        with self._lock:
            self._count(jobs, t0)
            self._stats["prompt_tokens"] += sum(c.prompt_tokens for c in results)
            self._stats["completion_tokens"] += sum(c.completion_tokens for c in results)
        for j, comp in zip(jobs, results):
            j.result = comp
            j.done.set()

    def _count(self, jobs: list[_Job], t0: float) -> None:
        self._stats["requests"] += len(jobs)
        self._stats["batches"] += 1
        self._stats["largest_batch"] = max(self._stats["largest_batch"], len(jobs))
        self._stats["seconds"] += time.perf_counter() - t0


# --- request parsing -------------------------------------------------------------------


def _content(msg: dict, i: int) -> str:
    content = msg.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only text is understood
        texts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text"
                    and isinstance(part.get("text"), str)):
                raise ApiError(400, f"messages[{i}].content: only text parts are supported",
                               param=f"messages[{i}].content")
            texts.append(part["text"])
        return "".join(texts)
    raise ApiError(400, f"messages[{i}].content must be a string", param=f"messages[{i}].content")


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content} objects",
                       param="messages")
    out = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict):
            raise ApiError(400, f"messages[{i}] must be an object", param=f"messages[{i}]")
        role = msg.get("role")
        if role not in ROLES:
            raise ApiError(400, f"messages[{i}].role must be one of system, developer, user, "
                           f"assistant (got {role!r})", param=f"messages[{i}].role")
        out.append({"role": ROLES[role], "content": _content(msg, i)})
    return out


def _number(body: dict, key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ApiError(400, f"'{key}' must be a number in [{lo}, {hi}] (got {value!r})", param=key)
    return float(value)


def _integer(body: dict, key: str, default: int | None, lo: int | None = None,
             hi: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"'{key}' must be an integer (got {value!r})", param=key)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ApiError(400, f"'{key}' must be between {lo} and {hi} (got {value})", param=key)
    return value


def _stop(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ApiError(400, "'stop' must be a string or a list of strings", param="stop")
    return [s for s in value if s]


def parse_chat(body: Any) -> ChatRequest:
    """A chat-completions body -> our ChatRequest (an assistant prefill when asked)."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    if body.get("stream"):
        raise ApiError(400, "streaming is not supported by this server: send stream=false",
                       code="unsupported_parameter", param="stream")
    messages = _messages(body.get("messages"))
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    sampling = Sampling(
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        max_tokens=_integer(body, key, DEFAULT_MAX_TOKENS, lo=1),
        n=_integer(body, "n", 1, lo=1, hi=128),
        seed=_integer(body, "seed", None),
        stop=_stop(body.get("stop")),
    )
    if sampling.top_p <= 0:
        raise ApiError(400, "'top_p' must be greater than 0", param="top_p")
    prefill = ""
    cont = body.get("continue_final_message", False)
    add_prompt = body.get("add_generation_prompt")
    if not isinstance(cont, bool) or not isinstance(add_prompt, (bool, type(None))):
        raise ApiError(400, "'continue_final_message' and 'add_generation_prompt' must be "
                       "booleans")
    if cont:
        if add_prompt:
            raise ApiError(400, "continue_final_message needs add_generation_prompt=false",
                           param="add_generation_prompt")
        if messages[-1]["role"] != "assistant":
            raise ApiError(400, "continue_final_message needs the last message to be the "
                           "assistant's", param="messages")
        prefill = messages.pop()["content"]
        if not messages:
            raise ApiError(400, "'messages' holds only the assistant message to continue",
                           param="messages")
    return ChatRequest(messages=messages, sampling=sampling, prefill=prefill)


def continuation(text: str, prefill: str) -> str:
    """What the backend added after ``prefill`` (backends return prefill + continuation)."""
    if text.startswith(prefill):
        return text[len(prefill):]
    if prefill.startswith(text):  # a stop string cut into the prefill
        return ""
    return text


def chat_response(comp: Completion, req: ChatRequest, model: str) -> dict[str, Any]:
    choices = []
    for i, text in enumerate(comp.texts):
        reason = comp.finish_reasons[i] if i < len(comp.finish_reasons) else "stop"
        choices.append({
            "index": i,
            "message": {"role": "assistant", "content": continuation(text, req.prefill),
                        "refusal": None},
            "logprobs": None,
            "finish_reason": "length" if reason == "length" else "stop",
        })
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": comp.prompt_tokens,
                  "completion_tokens": comp.completion_tokens,
                  "total_tokens": comp.prompt_tokens + comp.completion_tokens},
        "system_fingerprint": None,
    }


# --- the application and its HTTP server -----------------------------------------------


class ServeApp:
    """Routes requests to the batcher; ``handle`` is plain (no HTTP), easy to test."""

    def __init__(self, backend, model_name: str, max_batch: int, aliases: tuple = ()):
        self.model_name = model_name
        self.names = {model_name, *(a for a in aliases if a)}
        self.batcher = Batcher(backend, max_batch)
        self.created = int(time.time())

    def model_card(self) -> dict[str, Any]:
        return {"id": self.model_name, "object": "model", "created": self.created,
                "owned_by": "genetic-instruct"}

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        path = path.split("?", 1)[0].rstrip("/") or "/"
        if path.startswith("/v1/models/") and method == "GET":
            if path[len("/v1/models/"):] not in self.names:
                raise self._no_model(path[len("/v1/models/"):])
            return 200, self.model_card()
        if path not in ROUTES:
            raise ApiError(404, f"no such endpoint: {path}", code="not_found")
        if method != ROUTES[path]:
            raise ApiError(405, f"{path} takes {ROUTES[path]}, not {method}",
                           code="method_not_allowed")
        if path == "/health":
            return 200, {"status": "ok", "model": self.model_name}
        if path == "/stats":
            return 200, self.batcher.stats()
        if path == "/v1/models":
            return 200, {"object": "list", "data": [self.model_card()]}
        return 200, self.chat(body)

    def chat(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
        if isinstance(body, dict) and "model" in body:
            if not isinstance(body["model"], str):
                raise ApiError(400, "'model' must be a string", param="model")
            if body["model"] not in self.names:
                raise self._no_model(body["model"])
        req = parse_chat(body)
        try:
            comp = self.batcher.submit(req)
        except Exception as exc:
            raise ApiError(500, f"the backend failed: {type(exc).__name__}: {exc}",
                           type_="server_error", code="backend_error") from None
        return chat_response(comp, req, self.model_name)

    def _no_model(self, name: str) -> ApiError:
        return ApiError(404, f"the model {name!r} does not exist; this server serves "
                        f"{self.model_name!r}", code="model_not_found", param="model")


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: every answer carries a Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "genetic-instruct"
    server: Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        try:
            body = self._read_body()
            status, payload = self.server.app.handle(method, self.path, body)
        except ApiError as exc:
            status, payload = exc.status, exc.payload()
        except Exception as exc:  # a bug here must not take the connection thread down
            status, payload = 500, ApiError(500, f"{type(exc).__name__}: {exc}",
                                            type_="server_error").payload()
        self._send(status, payload)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "bad Content-Length header") from None
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, f"the body must be at most {MAX_BODY} bytes")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        parts, size = [], 0
        while True:
            line = self.rfile.readline(1024)
            try:
                n = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise ApiError(400, "bad chunked body") from None
            if n == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            size += n
            if size > MAX_BODY:
                self.close_connection = True
                raise ApiError(413, f"the body must be at most {MAX_BODY} bytes")
            parts.append(self.rfile.read(n))
            self.rfile.readline(1024)

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left before its answer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per error only
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app: ServeApp, host: str, port: int):
        self.app = app
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if ":" in str(host):
            host = f"[{host}]"
        return f"http://{host}:{port}/v1"

    def server_close(self) -> None:
        super().server_close()
        self.app.batcher.close()
