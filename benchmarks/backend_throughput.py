"""Raw tokens/s of the transformers backend at several batch sizes, on CPU or CUDA.

    python benchmarks/backend_throughput.py [--model embedded|DIR] [--device auto|cpu|cuda]
        [--batches 1,8,32] [--new-tokens 128] [--random-init]

--random-init builds the model from DIR's config.json with random weights (for a machine
that has the architecture and tokenizer but not the weights: same shapes, same work per
token, so the same tokens/s; the text is noise). Every row generates exactly --new-tokens
tokens (no stop string, EOS suppressed), so rows of one batch cost the same.
"""

from __future__ import annotations

import argparse
import time

from genetic_instruct.llm.base import ChatRequest, Sampling
from genetic_instruct.llm.transformers import TransformersBackend


def load(args) -> TransformersBackend:
    return TransformersBackend(model=args.model, device=args.device, batch_size=1,
                               decode=args.decode, random_init=args.random_init)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--random-init", action="store_true")
    ap.add_argument("--decode", default="own", choices=["own", "generate"])
    ap.add_argument("--compare-hf", action="store_true",
                    help="also time transformers' model.generate on the same prompts (baseline)")
    args = ap.parse_args()
    backend = load(args)
    prompt = [{"role": "user", "content": "Write a Python function that merges two sorted lists."}]
    warm = ChatRequest(messages=prompt, sampling=Sampling(max_tokens=8, seed=0))
    backend.generate([warm])
    for size in [int(x) for x in args.batches.split(",")]:
        backend.batch_size = size
        reqs = [ChatRequest(messages=prompt, sampling=Sampling(
            temperature=0.8, max_tokens=args.new_tokens, seed=i)) for i in range(size)]
        backend.generate(reqs)  # warm-up at this shape (kernel choice, allocator)
        t0 = time.perf_counter()
        comps = backend.generate(reqs)
        if backend.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        tokens = sum(c.completion_tokens for c in comps)
        line = (f"{backend.device} ({backend.decode}) batch {size:>3}: {tokens / dt:8.1f} tokens/s "
                f"({tokens} tokens in {dt:.2f} s)")
        if args.compare_hf:
            hf_rate = hf_generate(backend, reqs, args.new_tokens)
            line += f"; model.generate {hf_rate:8.1f} tokens/s; ratio {tokens / dt / hf_rate:.2f}"
        print(line, flush=True)


def hf_generate(backend: TransformersBackend, reqs: list[ChatRequest], new_tokens: int) -> float:
    """Tokens/s of ``model.generate`` on the same prompts (every row full length)."""
    import torch

    texts = [backend.prompt_text(r) for r in reqs]
    enc = backend.tokenizer(texts, return_tensors="pt", padding=True,
                            add_special_tokens=False).to(backend.device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = backend.model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                     do_sample=True, temperature=0.8, top_p=0.95,
                                     pad_token_id=backend.tokenizer.pad_token_id)
    if backend.device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return (out.shape[1] - enc["input_ids"].shape[1]) * len(reqs) / dt


if __name__ == "__main__":
    main()
