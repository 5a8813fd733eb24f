"""vLLM backend: in-process generation on GPUs with continuous batching.

vLLM is an optional extra (``pip install -e '.[vllm]'``) that lives in its own GPU
environment: vLLM 0.33 pins torch 2.14 while the default install uses the CPU torch 2.13.
It is imported only when this backend is built. Every request of a ``generate`` call goes
to vLLM in one ``LLM.generate`` call, so its scheduler keeps the GPU full.

Prompts are rendered exactly as the transformers backend renders them: the tokenizer's
chat template with the generation prompt, followed by the request's ``prefill``; the
returned texts start with the prefill. The argument names used here were checked against
vLLM 0.33's sources (tests/data/vllm_api.json, scripts/vllm_api_snapshot.py).
"""

from __future__ import annotations

import difflib
import time
from typing import Any, Callable

from .base import BackendError, ChatRequest, Completion, Sampling, apply_stop
from .embedded import EMBEDDED_NAMES

# Config ``options:`` and their defaults. None means "leave vLLM's default".
OPTIONS: dict[str, Any] = {
    "tensor_parallel_size": 1,
    "gpu_memory_utilization": 0.9,
    "enable_prefix_caching": True,
    "max_model_len": None,
    "seed": None,
    "trust_remote_code": False,
    "max_num_seqs": None,
    "enforce_eager": None,
    "engine_args": None,
}

INSTALL_HINT = (
    "vLLM is not installed here: it needs its own GPU environment "
    "(python -m venv .venv-gpu && .venv-gpu/bin/pip install -e '.[vllm]'), because vLLM 0.33 "
    "needs torch 2.14 and the default install uses the CPU torch 2.13; see docs/gpu.md"
)



def check_options(options: dict[str, Any]) -> None:
    for name in options:
        if name not in OPTIONS:
            close = difflib.get_close_matches(name, list(OPTIONS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BackendError(
                f"vllm backend: unknown option {name!r}{hint}; known: {', '.join(OPTIONS)}; "
                "other vLLM engine arguments go under options.engine_args"
            )


def engine_kwargs(model_path: str, dtype: str, options: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments for ``vllm.LLM``: named options, then ``engine_args``."""
    opts = {**OPTIONS, **options}
    kwargs: dict[str, Any] = {"model": model_path, "dtype": dtype}
    for name, value in opts.items():
        if name != "engine_args" and value is not None:
            kwargs[name] = value
    extra = opts["engine_args"] or {}
    if not isinstance(extra, dict):
        raise BackendError("vllm backend: options.engine_args must be a mapping of "
                           f"vLLM engine arguments, not {type(extra).__name__}")
    for name in extra:
        if name in OPTIONS or name in ("model", "dtype"):
            where = f"backends.*.{name}" if name in ("model", "dtype") else f"options.{name}"
            raise BackendError(f"vllm backend: set {name!r} as {where}, not under "
                               "options.engine_args")
    kwargs.update(extra)
    return kwargs


def import_vllm():
    try:
        import vllm
    except ImportError as exc:
        if exc.name == "vllm":
            raise BackendError(INSTALL_HINT) from None
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BackendError(f"vllm failed to import ({first}); {INSTALL_HINT}") from None
    return vllm


class VLLMBackend:
    """Generates with an in-process ``vllm.LLM`` (one engine per distinct backend config).

    ``batch_size`` is not used: vLLM's scheduler sizes its batches itself (see the
    ``max_num_seqs`` option). ``device`` must be ``auto`` or ``cuda``; which GPUs vLLM uses
    is chosen with ``CUDA_VISIBLE_DEVICES`` and ``tensor_parallel_size``.
    """

    name = "vllm"

    def __init__(self, model: str = "embedded", device: str = "auto", dtype: str = "auto",
                 batch_size: int = 32, **options):
        check_options(options)
        if device not in ("auto", "cuda"):
            raise BackendError(
                f"vllm backend: device {device!r} is not supported; use auto (vLLM picks its "
                "GPUs: set CUDA_VISIBLE_DEVICES and options.tensor_parallel_size)"
            )
        self.engine_kwargs = engine_kwargs(str(model), dtype, options)  # checked first
        vllm = import_vllm()
        self.model_name = str(model)
        if model in EMBEDDED_NAMES:
            from .embedded import ensure_dequantized

            self.engine_kwargs["model"] = str(ensure_dequantized())
            self.model_name = "smollm2-135m"
        self.identity = f"vllm:{self.model_name}:{dtype}"
        self.batch_size = batch_size
        self._sampling_params = vllm.SamplingParams
        self.llm = vllm.LLM(**self.engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.stats = {"prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}

    def prompt_text(self, req: ChatRequest) -> str:
        text = self.tokenizer.apply_chat_template(
            req.messages, tokenize=False, add_generation_prompt=True
        )
        return text + req.prefill

    def sampling_params(self, s: Sampling):
        """vLLM's SamplingParams for one request; greedy requests ask for one sample
        (vLLM refuses n > 1 when greedy) and it is repeated ``n`` times afterwards."""
        greedy = s.temperature <= 0  # vLLM raises a temperature in (0, 0.01) to 0.01
        return self._sampling_params(
            n=1 if greedy else s.n,
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            seed=s.seed,
            stop=list(s.stop),
        )

    def generate(self, requests: list[ChatRequest], progress: Callable | None = None,
                 on_done: Callable | None = None) -> list[Completion]:
        """Answer ``requests`` in order, all of them in one ``LLM.generate`` call."""
        if not requests:
            return []
        t0 = time.perf_counter()
        prompts = [self.prompt_text(r) for r in requests]
        params = [self.sampling_params(r.sampling) for r in requests]
        # The chat template already holds the special tokens (BOS): add none twice.
        outputs = self.llm.generate(prompts, params, use_tqdm=False,
                                    tokenization_kwargs={"add_special_tokens": False})
        if len(outputs) != len(requests):
            raise BackendError(f"vllm returned {len(outputs)} outputs for "
                               f"{len(requests)} prompts")
        results = [to_completion(req, out) for req, out in zip(requests, outputs)]
        self.stats["prompt_tokens"] += sum(c.prompt_tokens for c in results)
        self.stats["completion_tokens"] += sum(c.completion_tokens for c in results)
        self.stats["seconds"] += time.perf_counter() - t0
        if progress:
            progress(len(requests))
        if on_done:
            for i, comp in enumerate(results):
                on_done(i, comp)
        return results


def to_completion(req: ChatRequest, out) -> Completion:
    """One vLLM RequestOutput as a Completion with ``req.sampling.n`` texts."""
    s = req.sampling
    samples = sorted(out.outputs, key=lambda o: o.index)
    comp = Completion(texts=[], prompt_tokens=len(out.prompt_token_ids or ()))
    comp.completion_tokens = sum(len(o.token_ids) for o in samples)
    if len(samples) == 1 and s.n > 1:  # greedy: one sample stands for all n
        samples = samples * s.n
    for o in samples:
        text, stopped = apply_stop(o.text, s.stop)
        comp.texts.append(req.prefill + text)
        comp.finish_reasons.append(finish_reason(o.finish_reason, stopped))
    return comp


def finish_reason(reason: str | None, stopped: bool) -> str:
    """vLLM's reason as ours: "stop" (EOS or a stop string) or "length"; vLLM's rarer
    reasons ("abort", "error", "repetition") pass through."""
    if stopped or reason is None:
        return "stop"
    return str(reason)
