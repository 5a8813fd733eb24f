"""Transformers backend: batched, left-padded generation on CPU or CUDA.

The default model is the embedded SmolLM2-135M-Instruct; ``model`` may also be a local
folder. The Hub is never contacted (``local_files_only``).
"""

from __future__ import annotations

import hashlib
import inspect
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
        decode: str = "own",
        random_init: bool = False,
        **options,
    ):
        """``random_init`` builds the model from the folder's config with random weights
        (benchmarks on a machine that has the architecture but not the weights)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        path = ensure_dequantized() if model in EMBEDDED_NAMES else model
        self.model_name = "smollm2-135m" if model in EMBEDDED_NAMES else str(model)
        if decode not in ("own", "generate"):
            raise ValueError(f"decode must be 'own' or 'generate', not {decode!r}")
        # "own": our loop, where finished rows leave the batch (same speed as model.generate
        # at equal lengths, on CPU and GPU alike; faster when answers differ in length).
        self.decode = decode
        self.device = device
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if random_init:
            from transformers import AutoConfig

            torch.manual_seed(0)
            self.model = AutoModelForCausalLM.from_config(
                AutoConfig.from_pretrained(path, local_files_only=True), dtype=getattr(torch, dtype)
            ).to(device)
        else:
            self.model = AutoModelForCausalLM.from_pretrained(
                path, dtype=getattr(torch, dtype), local_files_only=True
            ).to(device)
        self.model.eval()
        # transformers renamed `past_key_values` to `cache` (5.2x); take what this one has
        params = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        cfg_eos = self.model.generation_config.eos_token_id
        self.eos_ids = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        self.eos_ids |= set(cfg_eos if isinstance(cfg_eos, list) else [cfg_eos]) - {None}
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
        # the chat template already holds the special tokens: add none twice
        enc = self.tokenizer(texts, return_tensors="pt", padding=True,
                             add_special_tokens=False).to(self.device)
        seeds = [requests[i].sampling.seed for i in idx]
        gen = torch.Generator(device=self.device)
        digest = hashlib.sha256(repr(seeds).encode()).digest()
        gen.manual_seed(int.from_bytes(digest[:8], "little"))
        decode = self._decode if self.decode == "own" else self._decode_generate
        rows, reasons = decode(enc, s, gen)
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        results = []
        for j, i in enumerate(idx):
            comp = Completion(texts=[], prompt_tokens=int(prompt_lens[j]))
            for k in range(s.n):
                row = rows[j * s.n + k]
                text = self.tokenizer.decode(row, skip_special_tokens=True)
                text, stopped = apply_stop(text, s.stop)
                comp.texts.append(requests[i].prefill + text)
                comp.finish_reasons.append("stop" if stopped else reasons[j * s.n + k])
                comp.completion_tokens += len(row)
            results.append(comp)
        self.stats["prompt_tokens"] += sum(c.prompt_tokens for c in results)
        self.stats["completion_tokens"] += sum(c.completion_tokens for c in results)
        self.stats["seconds"] += time.perf_counter() - t0
        return results

    def _decode_generate(self, enc, s: Sampling, gen) -> tuple[list[list[int]], list[str]]:
        """The same contract through ``model.generate`` (the faster path on a GPU)."""
        import torch

        torch.manual_seed(gen.initial_seed())
        kwargs = dict(max_new_tokens=s.max_tokens, num_return_sequences=s.n,
                      pad_token_id=self.tokenizer.pad_token_id)
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if s.stop:
            kwargs.update(stop_strings=list(s.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1]:].tolist()
        eos = self.eos_ids
        rows, reasons = [], []
        for row in new:
            end = next((i for i, t in enumerate(row) if t in eos), None)
            rows.append(row if end is None else row[:end])
            reasons.append("length" if end is None else "stop")
        return rows, reasons

    def _decode(self, enc, s: Sampling, gen) -> tuple[list[list[int]], list[str]]:
        """Sample up to ``max_tokens`` for each row; finished rows leave the batch at once.

        ``model.generate`` keeps computing a row after it has stopped until every row has;
        with answers of very different lengths that is most of the work on a CPU. Here a
        row that meets EOS or a stop string is dropped from the batch and its KV cache.
        """
        import torch
        from transformers import DynamicCache

        ids, mask = enc["input_ids"], enc["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        eos = self.eos_ids
        total = ids.shape[0] * s.n
        rows: list[list[int]] = [[] for _ in range(total)]
        reasons = ["length"] * total
        active = list(range(total))
        finished: set[int] = set()  # rows done but still in the batch
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                             **{self._cache_arg: cache}, use_cache=True, logits_to_keep=1)
            logits = out.logits[:, -1, :]
            if s.n > 1:  # the n samples of a prompt share its prefill
                cache.batch_repeat_interleave(s.n)
                logits = logits.repeat_interleave(s.n, dim=0)
                mask = mask.repeat_interleave(s.n, dim=0)
                positions = positions.repeat_interleave(s.n, dim=0)
            next_pos = positions[:, -1] + 1
            for step in range(s.max_tokens):
                tokens = _sample(logits, s, gen).tolist()
                keep = []
                for j, tok in enumerate(tokens):
                    r = active[j]
                    if r in finished:
                        continue
                    if tok in eos:
                        reasons[r] = "stop"
                        continue
                    rows[r].append(tok)
                    if s.stop and _hit_stop(self.tokenizer, rows[r], s.stop):
                        reasons[r] = "stop"
                        continue
                    keep.append(j)
                if not keep or step == s.max_tokens - 1:
                    break
                if len(keep) < len(active) and not _worth_pruning(len(keep), len(active)):
                    # too few rows finished to pay for copying the cache: carry them along
                    keep_rows = set(keep)
                    tokens = [t if j in keep_rows else self.tokenizer.eos_token_id
                              for j, t in enumerate(tokens)]
                    done_rows = {active[j] for j in range(len(active)) if j not in keep_rows}
                    finished |= done_rows
                elif len(keep) < len(active):
                    sel = torch.tensor(keep, device=mask.device)
                    cache.batch_select_indices(sel)
                    mask, next_pos = mask[sel], next_pos[sel]
                    active = [active[j] for j in keep]
                    tokens = [tokens[j] for j in keep]
                    finished.clear()
                mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
                step_ids = torch.tensor(tokens, device=mask.device).unsqueeze(1)
                out = self.model(input_ids=step_ids, attention_mask=mask,
                                 position_ids=next_pos.unsqueeze(1),
                                 **{self._cache_arg: cache}, use_cache=True)
                logits = out.logits[:, -1, :]
                next_pos = next_pos + 1
        return rows, reasons


def _worth_pruning(kept: int, active: int) -> bool:
    """Drop finished rows once a quarter of the batch (or 8 rows) is done."""
    return active - kept >= max(1, min(8, active // 4))


def _sample(logits, s: Sampling, gen):
    import torch

    if s.temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / s.temperature, dim=-1)
    if s.top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        outside = sorted_p.cumsum(dim=-1) - sorted_p > s.top_p
        sorted_p = sorted_p.masked_fill(outside, 0.0)
        choice = torch.multinomial(sorted_p, 1, generator=gen)
        return order.gather(-1, choice).squeeze(-1)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


def _hit_stop(tokenizer, row: list[int], stop: list[str]) -> bool:
    longest = max(len(x) for x in stop)
    tail = tokenizer.decode(row[-(longest + 8):], skip_special_tokens=True)
    return any(x in tail for x in stop)
