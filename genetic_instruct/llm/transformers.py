"""Transformers backend: batched, left-padded generation on CPU or CUDA.

The default model is the embedded SmolLM2-135M-Instruct; ``model`` may also be a local
folder. The Hub is never contacted (``local_files_only``).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict

from .base import ChatRequest, Completion, Sampling, apply_stop
from .embedded import EMBEDDED_NAMES, ensure_dequantized


class TransformersBackend:
    """Generates with a causal LM through ``model.generate`` in padded batches.

    Requests with the same sampling parameters are grouped, sorted by prompt length (less
    padding) and cut into batches of ``batch_size`` sequences; results come back in the
    caller's order.
    """

    name = "transformers"

    def __init__(
        self,
        model: str = "embedded",
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 32,
        **options,
    ):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        path = ensure_dequantized() if model in EMBEDDED_NAMES else model
        self.model_name = "smollm2-135m" if model in EMBEDDED_NAMES else str(model)
        self.device = device
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            path, dtype=getattr(torch, dtype), local_files_only=True
        ).to(device)
        self.model.eval()
        self.stats = {"prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}

    def prompt_text(self, req: ChatRequest) -> str:
        text = self.tokenizer.apply_chat_template(
            req.messages, tokenize=False, add_generation_prompt=True
        )
        return text + req.prefill

    def generate(self, requests: list[ChatRequest], progress=None) -> list[Completion]:
        """Answer ``requests`` in order; ``progress(n)`` is called as batches finish."""
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, req in enumerate(requests):
            s = req.sampling
            groups[(s.temperature, s.top_p, s.max_tokens, s.n, tuple(s.stop))].append(i)
        out: list[Completion | None] = [None] * len(requests)
        texts = [self.prompt_text(r) for r in requests]
        for idx in groups.values():
            sampling = requests[idx[0]].sampling
            per_batch = max(1, self.batch_size // sampling.n)
            order = sorted(idx, key=lambda i: len(texts[i]))
            for start in range(0, len(order), per_batch):
                chunk = order[start : start + per_batch]
                done = self._generate_batch([texts[i] for i in chunk], chunk, requests, sampling)
                for i, comp in zip(chunk, done):
                    out[i] = comp
                if progress:
                    progress(len(chunk))
        return [c for c in out if c is not None]

    def _generate_batch(
        self, texts: list[str], idx: list[int], requests: list[ChatRequest], s: Sampling
    ) -> list[Completion]:
        import torch

        t0 = time.perf_counter()
        enc = self.tokenizer(texts, return_tensors="pt", padding=True).to(self.device)
        seeds = [requests[i].sampling.seed for i in idx]
        if any(x is not None for x in seeds):
            digest = hashlib.sha256(repr(seeds).encode()).digest()
            torch.manual_seed(int.from_bytes(digest[:8], "little"))
        kwargs = dict(
            max_new_tokens=s.max_tokens,
            num_return_sequences=s.n,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if s.stop:
            kwargs.update(stop_strings=list(s.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            gen = self.model.generate(**enc, **kwargs)
        new = gen[:, enc["input_ids"].shape[1] :].cpu()
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        eos = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        results = []
        for j, i in enumerate(idx):
            comp = Completion(texts=[], prompt_tokens=int(prompt_lens[j]))
            for k in range(s.n):
                row = new[j * s.n + k].tolist()
                length = next((p for p, t in enumerate(row) if t in eos), len(row))
                text = self.tokenizer.decode(row[:length], skip_special_tokens=True)
                text, stopped = apply_stop(text, s.stop)
                finish = "stop" if stopped or length < len(row) else "length"
                comp.texts.append(requests[i].prefill + text)
                comp.finish_reasons.append(finish)
                comp.completion_tokens += length
            results.append(comp)
        self.stats["prompt_tokens"] += sum(c.prompt_tokens for c in results)
        self.stats["completion_tokens"] += sum(c.completion_tokens for c in results)
        self.stats["seconds"] += time.perf_counter() - t0
        return results
