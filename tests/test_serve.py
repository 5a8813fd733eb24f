"""`genetic-instruct serve`: the OpenAI API shape, errors, and dynamic batching."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import CLI, cli_env
from openai import OpenAI
from servers import ServeProcess

from genetic_instruct.llm.base import ChatRequest, Sampling
from genetic_instruct.llm.fake import FakeBackend

FAKE = ["--set", "backends.default.type=fake"]


@pytest.fixture(scope="module")
def server():
    srv = ServeProcess(*FAKE)
    yield srv
    srv.stop()


def client(srv) -> OpenAI:
    return OpenAI(base_url=srv.url, api_key="unused", max_retries=0, timeout=120)


def post(srv, body=None, content=None, path="/chat/completions") -> httpx.Response:
    return httpx.post(srv.url + path, json=body, content=content, timeout=120)


def error_of(r: httpx.Response) -> dict:
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "code"} and err["message"]
    return err


def test_openai_client_lists_models_and_chats_with_n(server):
    c = client(server)
    assert [m.id for m in c.models.list()] == [server.model]
    resp = c.chat.completions.create(
        model=server.model, messages=[{"role": "user", "content": "Name a colour."}],
        n=2, max_tokens=16, seed=3, temperature=0.8)
    assert resp.object == "chat.completion" and resp.model == server.model
    assert [ch.index for ch in resp.choices] == [0, 1]
    assert all(ch.message.role == "assistant" and ch.message.content for ch in resp.choices)
    assert all(ch.finish_reason in ("stop", "length") for ch in resp.choices)
    u = resp.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    # the fake backend's own answers, unchanged
    req = ChatRequest(messages=[{"role": "user", "content": "Name a colour."}],
                      sampling=Sampling(n=2))
    assert [ch.message.content for ch in resp.choices] == FakeBackend().generate([req])[0].texts


def test_assistant_prefill_is_continued_and_stripped(server):
    msgs = [{"role": "user", "content": "Write code."},
            {"role": "assistant", "content": "```python\n"}]
    r = post(server, {"model": server.model, "messages": msgs, "continue_final_message": True,
                      "add_generation_prompt": False, "max_completion_tokens": 8})
    assert r.status_code == 200, r.text
    content = r.json()["choices"][0]["message"]["content"]
    req = ChatRequest(messages=msgs[:1], prefill="```python\n")
    assert "```python\n" + content == FakeBackend().generate([req])[0].text
    assert not content.startswith("```python")


def test_stop_and_other_routes(server):
    r = post(server, {"model": server.model, "stop": "swer",
                      "messages": [{"role": "user", "content": "hi"}]})
    assert r.json()["choices"][0]["message"]["content"] == "an"  # the fake says "answer N"
    assert httpx.get(server.url.removesuffix("/v1") + "/health").json()["status"] == "ok"
    assert httpx.get(f"{server.url}/models/{server.model}").json()["id"] == server.model


@pytest.mark.parametrize("body,content,status,needle", [
    (None, b"{not json", 400, "not valid JSON"),
    ({"model": "embedded"}, None, 400, "messages"),
    ({"messages": [{"role": "user", "content": 3}]}, None, 400, "content"),
    ({"messages": [{"role": "robot", "content": "x"}]}, None, 400, "role"),
    ({"messages": [{"role": "user", "content": "x"}], "n": "2"}, None, 400, "'n'"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": 9}, None, 400,
     "temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": True}, None, 400, "stream"),
    ({"messages": [{"role": "user", "content": "x"}], "continue_final_message": True}, None,
     400, "assistant"),
    ({"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]}, None, 404,
     "does not exist"),
])
def test_errors_come_in_openai_shape(server, body, content, status, needle):
    r = post(server, body, content)
    assert r.status_code == status
    assert needle in error_of(r)["message"]


def test_unknown_path_and_method(server):
    r = httpx.get(server.url + "/completions")
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    r = httpx.get(server.url + "/chat/completions")
    assert r.status_code == 405
    import openai

    with pytest.raises(openai.NotFoundError):
        client(server).chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="stream"):
        client(server).chat.completions.create(
            model=server.model, messages=[{"role": "user", "content": "x"}], stream=True)


def test_keep_alive_serves_many_requests_on_one_connection(server):
    with httpx.Client(timeout=120) as c:
        for i in range(5):
            r = c.post(server.url + "/chat/completions",
                       json={"messages": [{"role": "user", "content": f"q{i}"}]})
            assert r.status_code == 200
        assert c.get(server.url + "/models").status_code == 200


def test_concurrent_requests_are_batched():
    srv = ServeProcess(*FAKE, "--set", "backends.default.options.delay_s=0.5")
    try:
        def one(i):
            return post(srv, {"messages": [{"role": "user", "content": f"task {i}"}]})

        with ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(one, range(12)))
        assert all(r.status_code == 200 for r in replies)
        texts = [r.json()["choices"][0]["message"]["content"] for r in replies]
        assert len(set(texts)) == 12  # each answer went back to its own request
        stats = httpx.get(srv.url.removesuffix("/v1") + "/stats").json()
        assert stats["requests"] == 12
        assert stats["batches"] < 12 and stats["largest_batch"] > 1
    finally:
        srv.stop()


def test_backend_failure_is_a_500_and_the_server_lives_on():
    srv = ServeProcess(*FAKE, "--set", "backends.default.options.fail_after=1")
    try:
        msg = {"messages": [{"role": "user", "content": "x"}]}
        assert post(srv, msg).status_code == 200
        r = post(srv, msg)
        assert r.status_code == 500 and "induced failure" in error_of(r)["message"]
        assert post(srv, msg).status_code == 500
        base = srv.url.removesuffix("/v1")
        assert httpx.get(base + "/health").status_code == 200
        assert httpx.get(base + "/stats").json()["errors"] == 2
    finally:
        srv.stop()


@pytest.mark.parametrize("args,message", [
    (["--backend", "nope"], "no such entry under backends"),
    (["--set", "backends.default.type=fak"], "did you mean 'fake'"),
    (["--max-batch", "0", *FAKE], "--max-batch"),
])
def test_bad_arguments_are_one_line(args, message):
    proc = subprocess.run([*CLI, "serve", "--port", "0", *args], capture_output=True,
                          text=True, env=cli_env(), timeout=120)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and message in proc.stderr


def test_port_in_use_is_a_clear_error(server):
    port = server.url.rsplit(":", 1)[1].split("/")[0]
    proc = subprocess.run([*CLI, "serve", "--port", port, *FAKE], capture_output=True,
                          text=True, env=cli_env(), timeout=120)
    assert proc.returncode == 2 and "cannot listen" in proc.stderr


@pytest.mark.model
def test_openai_client_against_the_embedded_model():
    srv = ServeProcess()  # the default config: the embedded SmolLM2-135M
    try:
        c = client(srv)
        assert [m.id for m in c.models.list()] == ["smollm2-135m"]
        resp = c.chat.completions.create(
            model="smollm2-135m", messages=[{"role": "user", "content": "Say hello."}],
            n=2, max_tokens=16, seed=1, temperature=0.8)
        assert len(resp.choices) == 2
        assert all(isinstance(ch.message.content, str) for ch in resp.choices)
        assert any(ch.message.content.strip() for ch in resp.choices)
        assert resp.usage.prompt_tokens > 0
        assert 0 < resp.usage.completion_tokens <= 32
        assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    finally:
        srv.stop()
