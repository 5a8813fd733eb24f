"""A stand-in for the ``vllm`` package in tests: no GPU, no model, same argument names.

Every keyword given to ``LLM``, ``LLM.generate``, ``LLM.get_tokenizer`` and
``SamplingParams`` is checked against vLLM's real API as recorded from the wheel in
tests/data/vllm_api.json (``LLM(**kwargs)`` against ``EngineArgs``' fields, as vLLM passes
them on): a name vLLM does not have raises TypeError, as Python would. The outputs are
built with the recorded attribute names only. Calls are recorded for the tests to inspect.

Only the tests of the vLLM backend put this folder on ``sys.path``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

API = json.loads((Path(__file__).resolve().parents[2] / "data" / "vllm_api.json").read_text())
__version__ = API["vllm_version"]

BOS = "<s>"


def bind(where: str, params: list[dict], args: tuple, kwargs: dict) -> dict[str, Any]:
    """Python's argument binding for a recorded signature; returns what was passed.

    Keywords that only a ``**kwargs`` parameter takes come back under its name.
    """
    named = [p for p in params if p["kind"] not in ("var_positional", "var_keyword")]
    positional = [p for p in named if p["kind"] != "keyword_only"]
    var_kw = next((p["name"] for p in params if p["kind"] == "var_keyword"), None)
    if len(args) > len(positional) and not any(p["kind"] == "var_positional" for p in params):
        raise TypeError(f"{where}() takes {len(positional)} positional arguments but "
                        f"{len(args)} were given")
    out: dict[str, Any] = {p["name"]: a for p, a in zip(positional, args)}
    extra: dict[str, Any] = {}
    by_name = {p["name"]: p for p in named}
    for key, value in kwargs.items():
        p = by_name.get(key)
        if p is None or p["kind"] == "positional_only":
            if var_kw is None:
                raise TypeError(f"{where}() got an unexpected keyword argument {key!r}")
            extra[key] = value
        elif key in out:
            raise TypeError(f"{where}() got multiple values for argument {key!r}")
        else:
            out[key] = value
    for p in named:
        if p["required"] and p["name"] not in out:
            raise TypeError(f"{where}() missing required argument: {p['name']!r}")
    if var_kw is not None:
        out[var_kw] = extra
    return out


def check_fields(where: str, fields: list[dict], kwargs: dict) -> None:
    known = {f["name"] for f in fields}
    for key in kwargs:
        if key not in known:
            raise TypeError(f"{where}.__init__() got an unexpected keyword argument {key!r}")


def defaults(fields: list[dict]) -> dict[str, Any]:
    return {f["name"]: (f.get("default") or {}).get("value") for f in fields}


class VLLMValidationError(ValueError):
    """What vLLM raises for bad sampling values."""


class SamplingParams:
    """Takes the real class's field names, positionally or by keyword (a msgspec Struct)."""

    _fields = API["SamplingParams"]["fields"]

    def __init__(self, *args, **kwargs):
        names = [f["name"] for f in self._fields]
        if len(args) > len(names):
            raise TypeError("SamplingParams: too many positional arguments")
        given = dict(zip(names, args))
        check_fields("SamplingParams", self._fields, kwargs)
        for key in kwargs:
            if key in given:
                raise TypeError(f"SamplingParams: argument {key!r} given twice")
        given.update(kwargs)
        self.given = given  # what the caller passed, for the tests
        for name, value in {**defaults(self._fields), **given}.items():
            setattr(self, name, value)
        # what vLLM 0.33's __post_init__ does with the values our backend can send
        if 0 < self.temperature < 1e-2:
            self.temperature = 1e-2
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = list(self.stop or [])
        if not 0.0 <= self.temperature <= 2.0:
            raise VLLMValidationError(f"temperature must be in [0, 2], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise VLLMValidationError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise VLLMValidationError(f"max_tokens must be at least 1, got {self.max_tokens}.")
        if self.temperature < 1e-5 and self.n > 1:
            raise VLLMValidationError(f"n must be 1 when using greedy sampling, got {self.n}.")


class CompletionOutput:
    _fields = API["CompletionOutput"]["fields"]

    def __init__(self, **kwargs):
        check_fields("CompletionOutput", self._fields, kwargs)
        for f in self._fields:
            if f["required"] and f["name"] not in kwargs:
                raise TypeError(f"CompletionOutput missing {f['name']!r}")
        for name, value in {**defaults(self._fields), **kwargs}.items():
            setattr(self, name, value)


class RequestOutput:
    def __init__(self, **kwargs):
        bound = bind("RequestOutput", API["RequestOutput"]["init"], (), kwargs)
        bound.pop("kwargs", None)
        for name in API["RequestOutput"]["attributes"]:
            setattr(self, name, bound.get(name))


class Tokenizer:
    """A ChatML-like template that starts with a BOS marker; one token per word."""

    bos_token = BOS

    def apply_chat_template(self, messages, tools=None, *, tokenize=True,
                            add_generation_prompt=False, **kwargs):
        text = BOS + "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in messages)
        if add_generation_prompt:
            text += "<|assistant|>\n"
        return self.encode(text, add_special_tokens=False) if tokenize else text

    def encode(self, text: str, truncation=None, max_length=None,
               add_special_tokens: bool = True) -> list[int]:
        ids = [_word_id(w) for w in text.split()]
        return ([1] + ids) if add_special_tokens else ids

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return " ".join(f"t{i}" for i in ids)


def _word_id(word: str) -> int:
    return 2 + int(hashlib.sha256(word.encode()).hexdigest()[:6], 16) % 50000


def default_answer(prompt: str, params: SamplingParams, k: int) -> str:
    """Deterministic text: the same prompt, seed and sample index give the same words."""
    h = hashlib.sha256(f"{prompt}|{params.seed}|{k}".encode()).hexdigest()[:8]
    return f"answer {k} {h} seed {params.seed} done"


class LLM:
    instances: list["LLM"] = []  # every engine built, newest last
    # (prompt text, params, sample index) -> text; the tests may replace it
    answer: Callable[[str, SamplingParams, int], str] = staticmethod(default_answer)

    def __init__(self, *args, **kwargs):
        bound = bind("LLM.__init__", API["LLM"]["__init__"], args, kwargs)
        engine_extra = bound.pop("kwargs", {})
        check_fields("EngineArgs", API["EngineArgs"]["fields"], engine_extra)
        self.kwargs = {**bound, **engine_extra}  # everything passed, for the tests
        self.calls: list[dict] = []
        self._tokenizer = Tokenizer()
        LLM.instances.append(self)

    def get_tokenizer(self, *args, **kwargs):
        bind("LLM.get_tokenizer", API["LLM"]["get_tokenizer"], args, kwargs)
        return self._tokenizer

    def chat(self, *args, **kwargs):
        bind("LLM.chat", API["LLM"]["chat"], args, kwargs)
        raise NotImplementedError("the fake answers LLM.generate only")

    def generate(self, *args, **kwargs) -> list[RequestOutput]:
        bound = bind("LLM.generate", API["LLM"]["generate"], args, kwargs)
        prompts = bound["prompts"]
        if isinstance(prompts, (str, dict)):
            prompts = [prompts]
        params = bound.get("sampling_params") or SamplingParams()
        if isinstance(params, SamplingParams):
            params = [params] * len(prompts)
        if len(params) != len(prompts):
            raise VLLMValidationError(f"The lengths of prompts ({len(prompts)}) and params "
                                      f"({len(params)}) must be the same.")
        tok_kwargs = dict(bound.get("tokenization_kwargs") or {})
        add_special = tok_kwargs.pop("add_special_tokens", True)
        self.calls.append({**bound, "prompts": list(prompts), "sampling_params": list(params)})
        return [self._answer(i, p, sp, add_special)
                for i, (p, sp) in enumerate(zip(prompts, params))]

    def _answer(self, i: int, prompt, sp: SamplingParams, add_special: bool) -> RequestOutput:
        if not isinstance(sp, SamplingParams):
            raise TypeError(f"sampling_params[{i}] is {type(sp).__name__}, not SamplingParams")
        text, ids = prompt_of(prompt, self._tokenizer, add_special)
        outs = []
        for k in range(sp.n):
            words = LLM.answer(text, sp, k).split(" ")
            finish = "stop"
            if sp.max_tokens is not None and len(words) > sp.max_tokens:
                words, finish = words[:sp.max_tokens], "length"
            answer = " ".join(words)
            for s in sp.stop:  # vLLM cuts at a stop string and leaves it out
                if s and s in answer:
                    answer, finish = answer[:answer.index(s)], "stop"
            token_ids = [_word_id(w) for w in answer.split()]
            outs.append(CompletionOutput(index=k, text=answer, token_ids=token_ids,
                                         cumulative_logprob=None, logprobs=None,
                                         finish_reason=finish,
                                         stop_reason=None))
        return RequestOutput(request_id=str(i), prompt=text, prompt_token_ids=ids,
                             prompt_logprobs=None, outputs=outs, finished=True)


def prompt_of(prompt, tokenizer: Tokenizer, add_special: bool) -> tuple[str | None, list[int]]:
    """A prompt the way vLLM 0.33 accepts it: a string, or a TextPrompt / TokensPrompt."""
    if isinstance(prompt, str):
        return prompt, tokenizer.encode(prompt, add_special_tokens=add_special)
    if isinstance(prompt, dict):
        if "prompt_token_ids" in prompt:
            ids = prompt["prompt_token_ids"]
            if not all(isinstance(t, int) for t in ids):
                raise TypeError("prompt_token_ids must be a list of ints")
            return prompt.get("prompt"), list(ids)
        if isinstance(prompt.get("prompt"), str):
            return prompt["prompt"], tokenizer.encode(prompt["prompt"],
                                                      add_special_tokens=add_special)
    raise TypeError(f"not a prompt vLLM accepts: {prompt!r:.80}")
