"""The vLLM backend against a fake ``vllm`` that checks names against vLLM 0.33's real API.

tests/fake_vllm is put on ``sys.path`` only by the ``fake_vllm`` fixture; the default
environment has no vLLM (it is the optional extra ``[vllm]``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from genetic_instruct.llm.base import BackendError, ChatRequest, Sampling

ROOT = Path(__file__).resolve().parent.parent
FAKE_DIR = ROOT / "tests" / "fake_vllm"
SNAPSHOT = ROOT / "tests" / "data" / "vllm_api.json"
WHEEL = Path("/tmp/vllmdl/vllm-0.33.0-cp38-abi3-manylinux_2_28_x86_64.whl")


@pytest.fixture
def fake_vllm(monkeypatch):
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    monkeypatch.syspath_prepend(str(FAKE_DIR))
    module = importlib.import_module("vllm")
    assert module.__file__.startswith(str(FAKE_DIR))
    module.LLM.instances.clear()
    yield module
    sys.modules.pop("vllm", None)


@pytest.fixture
def no_vllm(monkeypatch):
    """Whatever is installed, ``import vllm`` fails as it does in the default install."""
    monkeypatch.setitem(sys.modules, "vllm", None)


def make(**kwargs):
    from genetic_instruct.llm.vllm import VLLMBackend

    return VLLMBackend(**{"model": "org/some-model", **kwargs})


def chat(text, prefill="", tag="", **sampling):
    return ChatRequest(messages=[{"role": "user", "content": text}],
                       sampling=Sampling(**sampling), prefill=prefill, tag=tag)


# -- the engine's arguments -------------------------------------------------------------

def test_engine_arguments_from_options(fake_vllm):
    backend = make(dtype="bfloat16", batch_size=8, tensor_parallel_size=2,
                   gpu_memory_utilization=0.8, max_model_len=4096, seed=3,
                   max_num_seqs=128, enforce_eager=True, trust_remote_code=True,
                   engine_args={"kv_cache_dtype": "fp8", "max_num_batched_tokens": 8192})
    (llm,) = fake_vllm.LLM.instances
    assert llm.kwargs == {
        "model": "org/some-model", "dtype": "bfloat16", "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.8, "enable_prefix_caching": True, "max_model_len": 4096,
        "seed": 3, "trust_remote_code": True, "max_num_seqs": 128, "enforce_eager": True,
        "kv_cache_dtype": "fp8", "max_num_batched_tokens": 8192,
    }
    assert backend.name == "vllm"
    assert backend.model_name == "org/some-model"
    assert backend.identity == "vllm:org/some-model:bfloat16"
    assert backend.stats == {"prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}


def test_defaults_leave_unset_options_to_vllm(fake_vllm):
    make()
    assert fake_vllm.LLM.instances[0].kwargs == {
        "model": "org/some-model", "dtype": "auto", "tensor_parallel_size": 1,
        "gpu_memory_utilization": 0.9, "enable_prefix_caching": True,
        "trust_remote_code": False,
    }


def test_embedded_model_resolves_to_its_folder(fake_vllm, monkeypatch, tmp_path):
    import genetic_instruct.llm.embedded as embedded

    monkeypatch.setattr(embedded, "ensure_dequantized", lambda: tmp_path)
    backend = make(model="embedded")
    assert fake_vllm.LLM.instances[0].kwargs["model"] == str(tmp_path)
    assert backend.model_name == "smollm2-135m"


def test_engine_args_unknown_to_vllm_fail_like_vllm(fake_vllm):
    with pytest.raises(TypeError, match="no_such_engine_arg"):
        make(engine_args={"no_such_engine_arg": 1})


def test_fake_rejects_names_vllm_does_not_have(fake_vllm):
    """The fake is only useful if it is strict: old names vLLM 0.33 no longer takes fail."""
    with pytest.raises(TypeError, match="device"):
        fake_vllm.LLM(model="m", device="cuda")  # EngineArgs lost `device`
    with pytest.raises(TypeError, match="max_new_tokens"):
        fake_vllm.SamplingParams(max_new_tokens=5)
    llm = fake_vllm.LLM(model="m")
    with pytest.raises(TypeError, match="sampling_param"):
        llm.generate(["x"], sampling_param=fake_vllm.SamplingParams())
    with pytest.raises(TypeError, match="positional"):
        llm.generate(["x"], fake_vllm.SamplingParams(), False)  # use_tqdm is keyword-only
    with pytest.raises(TypeError, match="not a prompt"):
        llm.generate([["a", "b"]])


# -- errors -----------------------------------------------------------------------------

def test_unknown_option_names_the_closest(fake_vllm):
    with pytest.raises(BackendError, match=r"unknown option 'gpu_memory_util'.*"
                                           r"did you mean 'gpu_memory_utilization'"):
        make(gpu_memory_util=0.5)
    assert not fake_vllm.LLM.instances


def test_option_twice_and_bad_device(fake_vllm):
    with pytest.raises(BackendError, match="options.seed"):
        make(engine_args={"seed": 1})
    with pytest.raises(BackendError, match="engine_args must be a mapping"):
        make(engine_args=["x"])
    with pytest.raises(BackendError, match="CUDA_VISIBLE_DEVICES"):
        make(device="cpu")


def test_install_message_without_vllm(no_vllm):
    with pytest.raises(BackendError) as err:
        make()
    msg = str(err.value)
    assert "\n" not in msg
    assert "pip install -e '.[vllm]'" in msg and ".venv-gpu" in msg
    assert "torch 2.14" in msg and "2.13" in msg


def test_vllm_is_not_in_the_default_environment():
    found = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; print(u.find_spec('vllm'))"],
        capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    assert found == "None"


def test_unknown_option_fails_before_importing_vllm(no_vllm):
    with pytest.raises(BackendError, match="unknown option 'tensor_parallel'"):
        make(tensor_parallel=2)
    with pytest.raises(BackendError, match="options.seed"):
        make(engine_args={"seed": 1})


# -- generate ---------------------------------------------------------------------------

def test_one_generate_call_for_a_mixed_batch(fake_vllm):
    backend = make()
    reqs = [
        chat("first", temperature=0.8, top_p=0.9, max_tokens=64, seed=11),
        chat("second", temperature=0.6, max_tokens=32, n=3, seed=12, stop=["```\n"]),
        chat("third", temperature=0.0, max_tokens=16),
        chat("fourth", temperature=0.7, max_tokens=8, n=2),
    ]
    seen = []
    done = []
    out = backend.generate(reqs, progress=seen.append, on_done=lambda i, c: done.append(i))
    llm = fake_vllm.LLM.instances[0]
    assert len(llm.calls) == 1
    call = llm.calls[0]
    assert call["use_tqdm"] is False
    assert call["tokenization_kwargs"] == {"add_special_tokens": False}
    assert call["prompts"] == [backend.prompt_text(r) for r in reqs]
    given = [sp.given for sp in call["sampling_params"]]
    assert given[0] == {"n": 1, "temperature": 0.8, "top_p": 0.9, "max_tokens": 64,
                        "seed": 11, "stop": []}
    assert given[1] == {"n": 3, "temperature": 0.6, "top_p": 0.95, "max_tokens": 32,
                        "seed": 12, "stop": ["```\n"]}
    assert given[2]["n"] == 1 and given[2]["temperature"] == 0.0 and given[2]["seed"] is None
    assert given[3]["n"] == 2
    assert [len(c.texts) for c in out] == [1, 3, 1, 2]
    assert seen == [4] and done == [0, 1, 2, 3]
    # results in the callers' order: each answer is the fake's for that prompt
    for req, comp, sp in zip(reqs, out, call["sampling_params"]):
        assert comp.texts[0] == fake_vllm.default_answer(backend.prompt_text(req), sp, 0)
    assert len(set(out[1].texts)) == 3


def test_prompt_is_the_chat_template_plus_prefill(fake_vllm):
    backend = make()
    req = chat("Write double(x).", prefill="```python\ndef double(", max_tokens=50)
    text = backend.prompt_text(req)
    assert text.startswith("<s><|user|>\nWrite double(x).<|end|>\n<|assistant|>\n")
    assert text.endswith("<|assistant|>\n```python\ndef double(")
    comp = backend.generate([req])[0]
    assert comp.text.startswith("```python\ndef double(answer 0 ")


def test_token_counts_and_no_second_bos(fake_vllm):
    backend = make()
    reqs = [chat("count me", n=2, temperature=0.5), chat("and me too please")]
    out = backend.generate(reqs)
    tok = fake_vllm.LLM.instances[0].get_tokenizer()
    for req, comp in zip(reqs, out):
        ids = tok.encode(backend.prompt_text(req), add_special_tokens=False)
        assert comp.prompt_tokens == len(ids)  # the template's BOS only, not a second one
        assert comp.completion_tokens == sum(len(t.split()) for t in comp.texts)
    assert backend.stats["prompt_tokens"] == sum(c.prompt_tokens for c in out)
    assert backend.stats["completion_tokens"] == sum(c.completion_tokens for c in out)
    assert backend.stats["seconds"] > 0


def test_finish_reasons_and_stop(fake_vllm, monkeypatch):
    monkeypatch.setattr(fake_vllm.LLM, "answer",
                        staticmethod(lambda prompt, sp, k: "one two three four five six"))
    backend = make()
    out = backend.generate([
        chat("a", max_tokens=3),                   # cut by max_tokens
        chat("b", max_tokens=50),                  # ends by itself
        chat("c", max_tokens=50, stop=["four"]),   # a stop string
    ])
    assert [c.finish_reasons for c in out] == [["length"], ["stop"], ["stop"]]
    assert out[0].text == "one two three"
    assert out[2].text == "one two three "


def test_greedy_with_n_samples_asks_once(fake_vllm):
    backend = make()
    comp = backend.generate([chat("same answer", temperature=0.0, n=3)])[0]
    (sp,) = fake_vllm.LLM.instances[0].calls[0]["sampling_params"]
    assert sp.n == 1
    assert len(comp.texts) == 3 and len(set(comp.texts)) == 1
    assert comp.finish_reasons == ["stop"] * 3
    assert comp.completion_tokens == len(comp.texts[0].split())  # generated once


def test_empty_batch_calls_nothing(fake_vllm):
    backend = make()
    assert backend.generate([]) == []
    assert fake_vllm.LLM.instances[0].calls == []


# -- config to backend ------------------------------------------------------------------

def test_config_with_vllm_type_builds_through_make_backends(fake_vllm, tmp_path):
    from genetic_instruct.assemble import make_backends
    from genetic_instruct.config import load_config
    from genetic_instruct.llm.cache import CachedBackend

    path = tmp_path / "run.yaml"
    path.write_text(
        "backends:\n"
        "  default:\n"
        "    type: vllm\n"
        "    model: org/coder\n"
        "    options: {max_model_len: 2048, engine_args: {max_num_batched_tokens: 4096}}\n"
    )
    cfg = load_config(path, ["backends.default.options.gpu_memory_utilization=0.5"])
    backends = make_backends(cfg)
    assert {type(b).__name__ for b in backends.values()} == {"VLLMBackend"}
    assert len({id(b) for b in backends.values()}) == 1  # roles share one engine
    (llm,) = fake_vllm.LLM.instances
    assert llm.kwargs["model"] == "org/coder"
    assert llm.kwargs["gpu_memory_utilization"] == 0.5
    assert llm.kwargs["max_num_batched_tokens"] == 4096
    cached = make_backends(cfg, cache=tmp_path / "cache.sqlite")
    b = next(iter(cached.values()))
    assert isinstance(b, CachedBackend)
    first = b.generate([chat("hello", seed=1)])
    again = b.generate([chat("hello", seed=1)])
    assert again[0].cached and again[0].texts == first[0].texts


def test_shipped_vllm_config(fake_vllm):
    from genetic_instruct.assemble import make_backends
    from genetic_instruct.config import load_config

    cfg = load_config(ROOT / "configs" / "vllm.yaml")
    bc = cfg.backends["default"]
    assert bc.type == "vllm"
    assert cfg.seeds.path == "seeds/python_core.jsonl"
    assert (ROOT / cfg.seeds.path).is_file()
    assert cfg.roles["test_writer"].n == 1
    make_backends(cfg)
    (llm,) = fake_vllm.LLM.instances
    assert llm.kwargs == {
        "model": "Qwen/Qwen2.5-Coder-7B-Instruct", "dtype": "auto",
        "tensor_parallel_size": 1, "gpu_memory_utilization": 0.9,
        "enable_prefix_caching": True, "max_model_len": 8192, "trust_remote_code": False,
    }


# -- the API snapshot -------------------------------------------------------------------

def test_snapshot_names_what_the_backend_uses():
    api = json.loads(SNAPSHOT.read_text())
    init = {p["name"]: p for p in api["LLM"]["__init__"]}
    assert init["model"]["kind"] == "positional_or_keyword"
    for name in ("dtype", "tensor_parallel_size", "gpu_memory_utilization", "seed",
                 "trust_remote_code", "enforce_eager"):
        assert init[name]["kind"] == "keyword_only"
    engine = {f["name"] for f in api["EngineArgs"]["fields"]}
    assert {"enable_prefix_caching", "max_model_len", "max_num_seqs"} <= engine
    generate = {p["name"]: p["kind"] for p in api["LLM"]["generate"]}
    assert generate["use_tqdm"] == generate["tokenization_kwargs"] == "keyword_only"
    fields = {f["name"] for f in api["SamplingParams"]["fields"]}
    assert {"n", "temperature", "top_p", "max_tokens", "seed", "stop"} <= fields
    assert {"prompt_token_ids", "outputs"} <= set(api["RequestOutput"]["attributes"])
    out = {f["name"] for f in api["CompletionOutput"]["fields"]}
    assert {"index", "text", "token_ids", "finish_reason"} <= out


@pytest.mark.skipif(not WHEEL.is_file(), reason="the vLLM wheel is not downloaded here")
def test_snapshot_matches_the_wheel():
    spec = importlib.util.spec_from_file_location("vllm_api_snapshot",
                                                  ROOT / "scripts" / "vllm_api_snapshot.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.snapshot(str(WHEEL)) == json.loads(SNAPSHOT.read_text()), (
        "regenerate: python scripts/vllm_api_snapshot.py WHEEL > tests/data/vllm_api.json")


def test_broken_vllm_install_says_why(monkeypatch, tmp_path):
    """vLLM present but unimportable (say, a torch it was not built for): one line too."""
    pkg = tmp_path / "vllm"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "raise ImportError('undefined symbol: _ZN3c10', name='vllm._C')\n")
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(BackendError) as err:
            make()
    finally:
        sys.modules.pop("vllm", None)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("vllm failed to import (undefined symbol") and "[vllm]" in msg
