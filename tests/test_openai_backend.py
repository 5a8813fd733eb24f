"""The openai backend against a real `genetic-instruct serve`, through a proxy that injects
faults (429 with Retry-After, 5xx, a reply slower than the client's timeout, a dropped
connection) by a script."""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from servers import ServeProcess

from genetic_instruct.config import load_config
from genetic_instruct.llm.base import BackendError, ChatRequest, Sampling
from genetic_instruct.llm.fake import FakeBackend
from genetic_instruct.llm.openai import OpenAIBackend

OK = ("ok",)


class FaultProxy:
    """Forwards to ``upstream``; each request first takes the next action of ``script``
    (``default`` once the script is used up). Records every request's headers and body.

    Actions: ("ok",), ("status", code, headers, body), ("delay", seconds) then forward,
    ("drop",): close the connection without answering, ("few", k): keep k choices.
    """

    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.script: list[tuple] = []
        self.default: tuple = OK
        self.seen: list[tuple[dict, dict]] = []
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    proxy.seen.append((dict(self.headers), json.loads(body)))
                    action = proxy.script.pop(0) if proxy.script else proxy.default
                    proxy.inflight += 1
                    proxy.max_inflight = max(proxy.max_inflight, proxy.inflight)
                try:
                    self.act(action, body)
                finally:
                    with proxy.lock:
                        proxy.inflight -= 1

            def act(self, action, body):
                if action[0] == "drop":
                    self.close_connection = True
                    return
                if action[0] == "status":
                    _, code, headers, payload = action
                    return self.reply(code, json.dumps(payload).encode(), headers)
                if action[0] == "delay":
                    time.sleep(action[1])
                status, data = proxy.forward(self.path, body)
                if action[0] == "few" and status == 200:
                    reply = json.loads(data)
                    reply["choices"] = reply["choices"][:action[1]]
                    data = json.dumps(reply).encode()
                try:
                    self.reply(status, data)
                except OSError:  # the client gave up waiting
                    self.close_connection = True

            def reply(self, code, data, headers=None):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def forward(self, path: str, body: bytes) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port,
                                          timeout=300)
        try:
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def bodies(self) -> list[dict]:
        return [b for _, b in self.seen]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def server():
    srv = ServeProcess("--set", "backends.default.type=fake")
    yield srv
    srv.stop()


@pytest.fixture
def proxy(server):
    p = FaultProxy(server.url)
    yield p
    p.close()


def backend(proxy, **options) -> OpenAIBackend:
    opts = {"base_url": proxy.url, "backoff_s": 0.01, "max_backoff_s": 0.2, "timeout_s": 60,
            **options}
    return OpenAIBackend(model="embedded", batch_size=4, **opts)


def chat(text, prefill="", **sampling) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}],
                       sampling=Sampling(**sampling), prefill=prefill)


def expected(requests) -> list[list[str]]:
    """What the fake backend behind the server answers."""
    return [c.texts for c in FakeBackend().generate(requests)]


def test_results_in_order_with_progress_and_on_done(proxy):
    reqs = [chat(f"task number {i}", prefill="Sure: " if i % 2 else "") for i in range(7)]
    b = backend(proxy, concurrency=3)
    done, ticks, threads = [], [], set()

    def on_done(i, comp):
        done.append(i)
        threads.add(threading.get_ident())

    comps = b.generate(reqs, progress=ticks.append, on_done=on_done)
    assert [c.texts for c in comps] == expected(reqs)
    assert sorted(done) == list(range(7)) and sum(ticks) == 7
    assert threads == {threading.get_ident()}  # called from the caller's thread
    assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 for c in comps)
    assert b.stats["prompt_tokens"] == sum(c.prompt_tokens for c in comps)
    assert b.stats["retries"] == 0
    assert proxy.max_inflight <= 3
    assert b.identity == f"openai:{proxy.url}:embedded" and b.name == "openai"


def test_transient_faults_are_retried(proxy):
    proxy.script = [
        ("status", 429, {"Retry-After": "0"}, {"error": {"message": "slow down"}}),
        ("status", 500, {}, {"error": {"message": "boom"}}),
        ("status", 503, {}, {"error": {"message": "overloaded"}}),
        ("drop",),
        ("delay", 8),  # longer than timeout_s
        ("status", 502, {}, {"detail": "bad gateway"}),
    ]
    reqs = [chat(f"q{i}") for i in range(4)]
    b = backend(proxy, concurrency=2, timeout_s=2)
    comps = b.generate(reqs)
    assert [c.texts for c in comps] == expected(reqs)
    assert b.stats["retries"] >= 6


@pytest.mark.parametrize("code,message,needle", [
    (400, "max_tokens is too large", "HTTP 400: max_tokens is too large"),
    (401, "invalid api key", "check the key in $GI_TEST_KEY"),
])
def test_permanent_errors_fail_fast(proxy, monkeypatch, code, message, needle):
    monkeypatch.setenv("GI_TEST_KEY", "sk-test")
    proxy.default = ("status", code, {}, {"error": {"message": message}})
    b = backend(proxy, api_key_env="GI_TEST_KEY")
    with pytest.raises(BackendError, match="HTTP") as exc:
        b.generate([chat("x")])
    assert needle in str(exc.value) and message in str(exc.value)
    assert len(proxy.seen) == 1 and b.stats["retries"] == 0


def test_retries_run_out(proxy):
    proxy.default = ("status", 503, {"Retry-After": "0"}, {"error": {"message": "down"}})
    b = backend(proxy, max_retries=2)
    with pytest.raises(BackendError) as exc:
        b.generate([chat("x")])
    text = str(exc.value)
    assert proxy.url in text and "503" in text and "down" in text and "3 attempts" in text
    assert len(proxy.seen) == 3


def test_key_from_the_environment_only(proxy, monkeypatch):
    monkeypatch.delenv("GI_TEST_KEY", raising=False)
    with pytest.raises(BackendError, match="GI_TEST_KEY is not set"):
        backend(proxy, api_key_env="GI_TEST_KEY")
    with pytest.raises(BackendError, match="api_key_env"):
        backend(proxy, api_key="sk-secret")
    backend(proxy).generate([chat("no key")])
    assert "authorization" not in {k.lower() for k in proxy.seen[-1][0]}
    monkeypatch.setenv("GI_TEST_KEY", "sk-123")
    backend(proxy, api_key_env="GI_TEST_KEY").generate([chat("with key")])
    headers = {k.lower(): v for k, v in proxy.seen[-1][0].items()}
    assert headers["authorization"] == "Bearer sk-123"


@pytest.mark.parametrize("options,needle", [
    ({"concurency": 2}, "did you mean 'concurrency'"),
    ({"prefill": "assistant"}, "'continue' or 'prompt'"),
    ({"native_n": "no"}, "native_n"),
    ({"timeout_s": -1}, "timeout_s"),
])
def test_bad_options(proxy, options, needle):
    with pytest.raises(BackendError, match="openai backend") as exc:
        backend(proxy, **options)
    assert needle in str(exc.value)
    with pytest.raises(BackendError, match="base_url is required"):
        OpenAIBackend(model="m")


@pytest.mark.parametrize("mode", ["continue", "prompt"])
def test_prefill_modes(proxy, mode):
    prefill = "```python\ndef "
    req = chat("Write a function.", prefill=prefill, stop=["\n```"])
    comp = backend(proxy, prefill=mode).generate([req])[0]
    assert comp.text.startswith(prefill) and len(comp.text) > len(prefill)
    body = proxy.bodies()[-1]
    assert body["stop"] == ["\n```"]
    if mode == "continue":
        assert body["messages"][-1] == {"role": "assistant", "content": prefill}
        assert body["continue_final_message"] is True
        assert body["add_generation_prompt"] is False
        assert comp.texts == expected([req])[0]
    else:
        assert body["messages"][-1]["role"] == "user"
        assert body["messages"][-1]["content"].endswith(prefill)
        assert "continue_final_message" not in body


def test_n_with_native_n(proxy):
    req = chat("three please", n=3, seed=10, temperature=0.9)
    comp = backend(proxy, extra_body={"top_k": 20}).generate([req])[0]
    assert comp.texts == expected([req])[0] and len(set(comp.texts)) == 3
    assert len(proxy.seen) == 1
    assert proxy.bodies()[0]["n"] == 3 and proxy.bodies()[0]["top_k"] == 20


def test_n_without_native_n(proxy):
    req = chat("three please", n=3, seed=10, temperature=0.9)
    comp = backend(proxy, native_n=False).generate([req])[0]
    assert len(comp.texts) == 3
    assert sorted(b["seed"] for b in proxy.bodies()) == [10, 11, 12]
    assert all("n" not in b for b in proxy.bodies())


def test_missing_choices_are_asked_for_one_by_one(proxy):
    proxy.script = [("few", 1)]
    req = chat("three please", n=3, seed=5, temperature=0.9)
    comp = backend(proxy).generate([req])[0]
    assert len(comp.texts) == 3 and comp.texts[0] == expected([req])[0][0]
    assert [b.get("seed") for b in proxy.bodies()] in ([5, 6, 7], [5, 7, 6])


def test_greedy_n_asks_once(proxy):
    comp = backend(proxy).generate([chat("same thrice", n=3, temperature=0.0)])[0]
    assert len(comp.texts) == 3 and len(set(comp.texts)) == 1
    assert len(proxy.seen) == 1 and "n" not in proxy.bodies()[0]


def test_built_from_a_config_and_cached(proxy, tmp_path):
    from genetic_instruct.assemble import make_backends

    cfg = load_config(None, ["backends.default.type=openai",
                             f"backends.default.options.base_url={proxy.url}",
                             "backends.default.options.concurrency=2"])
    b = make_backends(cfg, cache=tmp_path / "cache.sqlite")["default"]
    reqs = [chat(f"cache me {i}") for i in range(3)]
    first = b.generate(reqs)
    again = b.generate(reqs)
    assert [c.texts for c in first] == [c.texts for c in again] == expected(reqs)
    assert all(c.cached for c in again) and len(proxy.seen) == 3


@pytest.mark.model
def test_through_faults_against_the_embedded_model():
    srv = ServeProcess()  # the default config: SmolLM2-135M on the CPU
    proxy = FaultProxy(srv.url)
    try:
        proxy.script = [("status", 429, {"Retry-After": "0"}, {"error": {"message": "busy"}}),
                        ("drop",)]
        b = OpenAIBackend(model="smollm2-135m", base_url=proxy.url, backoff_s=0.01,
                          timeout_s=300, concurrency=2)
        reqs = [chat("Write a Python function that adds two numbers.", prefill="```python\n",
                     max_tokens=16, n=2, seed=1, temperature=0.8),
                chat("Name a colour.", max_tokens=16, seed=2)]
        comps = b.generate(reqs)
        assert len(comps[0].texts) == 2 and len(comps[1].texts) == 1
        assert all(t.startswith("```python\n") for t in comps[0].texts)
        assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 for c in comps)
        assert b.stats["retries"] >= 2
    finally:
        proxy.close()
        srv.stop()
