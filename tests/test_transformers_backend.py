"""The transformers backend on the real embedded model (SmolLM2-135M-Instruct, CPU)."""

from __future__ import annotations

import pytest

from genetic_instruct.llm.base import ChatRequest, Sampling

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def backend():
    from genetic_instruct.llm.transformers import TransformersBackend

    return TransformersBackend(batch_size=8)


def chat(text, **sampling):
    return ChatRequest(messages=[{"role": "user", "content": text}],
                       sampling=Sampling(**{"max_tokens": 24, **sampling}))


def test_batch_keeps_order_and_is_deterministic(backend):
    reqs = [chat("Name a colour."), chat("Write the number seven in digits. " * 6),
            chat("Say hello in French.")]
    greedy = [dict(r.__dict__) for r in reqs]
    for r in reqs:
        r.sampling.temperature = 0.0
    together = backend.generate(reqs)
    alone = [backend.generate([r])[0] for r in reqs]
    assert [c.text for c in together] == [c.text for c in alone]
    assert all(c.completion_tokens > 0 and c.prompt_tokens > 0 for c in together)
    assert greedy  # requests untouched apart from sampling


def test_n_samples_seed_and_stop(backend):
    req = chat("Write a Python function that adds two numbers.", temperature=0.9, n=3, seed=1,
               max_tokens=40)
    a = backend.generate([req])[0]
    b = backend.generate([req])[0]
    assert len(a.texts) == 3
    assert a.texts == b.texts  # same seed, same samples
    stop = chat("Count from 1 to 20, one number per line.", temperature=0.0, stop=["5"],
                max_tokens=60)
    text = backend.generate([stop])[0].text
    assert "5" not in text


def test_prefill_is_part_of_the_answer(backend):
    req = chat("Write a function double(x) in Python.", temperature=0.0, max_tokens=30)
    req.prefill = "```python\ndef double("
    text = backend.generate([req])[0].text
    assert text.startswith("```python\ndef double(")


def test_dequantized_cache_is_reused(backend):
    from genetic_instruct.llm.embedded import cache_dir, ensure_dequantized

    assert ensure_dequantized() == cache_dir()
    assert (cache_dir() / "model.safetensors").is_file()


def test_generate_path_keeps_the_contract(backend):
    """decode='generate' (the GPU default) answers like the own loop: order, n, stop, prefill."""
    backend.decode = "generate"
    try:
        req = chat("Count from 1 to 20, one number per line.", temperature=0.7, n=2, seed=3,
                   stop=["5"], max_tokens=40)
        req.prefill = "1\n"
        [comp] = backend.generate([req, ])
        assert len(comp.texts) == 2 and len(comp.finish_reasons) == 2
        assert all(t.startswith("1\n") and "5" not in t for t in comp.texts)
        assert comp.completion_tokens > 0
    finally:
        backend.decode = "own"
