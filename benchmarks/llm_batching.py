"""How much of the backend's throughput the evolution loop keeps.

Runs the loop on the embedded model for a few generations while recording every batch it
sends to the backend, then sends the same batches straight to the backend. Prints both
tokens/s and their ratio (target: the loop keeps >= 0.9). With --sweep, also prints the
backend's raw tokens/s at batch sizes 1, 8 and 32.

    .venv/bin/python benchmarks/llm_batching.py [--offspring 16] [--generations 1] [--sweep]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from genetic_instruct.assemble import executor_from_config, make_fitness
from genetic_instruct.config import load_config
from genetic_instruct.evolution.loop import Evolution
from genetic_instruct.llm.base import ChatRequest, Sampling
from genetic_instruct.llm.transformers import TransformersBackend
from genetic_instruct.seeds import load_seeds

ROOT = Path(__file__).resolve().parent.parent


class Recording:
    """Wraps a backend; keeps each batch and the seconds spent generating it."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.batches: list[list[ChatRequest]] = []
        self.tokens = 0

    def generate(self, requests):
        self.batches.append(list(requests))
        comps = self.inner.generate(requests)
        self.tokens += sum(c.completion_tokens for c in comps)
        return comps


def sweep(backend: TransformersBackend, new_tokens: int = 64) -> None:
    prompt = [{"role": "user", "content": "Write a Python function that merges two sorted lists."}]
    for size in (1, 8, 32):
        reqs = [ChatRequest(messages=prompt, sampling=Sampling(
            temperature=0.8, max_tokens=new_tokens, seed=i)) for i in range(size)]
        backend.batch_size = size
        t0 = time.perf_counter()
        comps = backend.generate(reqs)
        dt = time.perf_counter() - t0
        tokens = sum(c.completion_tokens for c in comps)
        print(f"raw backend, batch {size:>2}: {tokens / dt:7.1f} tokens/s "
              f"({tokens} tokens in {dt:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offspring", type=int, default=16)
    ap.add_argument("--generations", type=int, default=1)
    ap.add_argument("--executor", default="auto")
    ap.add_argument("--sweep", action="store_true")
    args = ap.parse_args()

    cfg = load_config(ROOT / "configs/quickstart.yaml", [
        f"evolution.offspring_per_colony={args.offspring}", "evolution.colonies=1",
        f"evolution.max_generations={args.generations}", "evolution.target_size=100000",
        f"execution.executor={args.executor}"])
    b = cfg.backends["default"]
    backend = TransformersBackend(model=b.model, device=b.device, batch_size=b.batch_size)
    if args.sweep:
        sweep(backend)
        backend.batch_size = b.batch_size
    rec = Recording(backend)
    executor = executor_from_config(cfg)
    try:
        evo = Evolution(cfg, {"default": rec}, make_fitness(cfg, executor),
                        load_seeds(cfg.seeds, root=ROOT))
        t0 = time.perf_counter()
        result = evo.run()
        loop_s = time.perf_counter() - t0
    finally:
        executor.close()
    loop_rate = rec.tokens / loop_s

    t0 = time.perf_counter()
    raw_tokens = sum(c.completion_tokens for batch in rec.batches
                     for c in backend.generate(batch))
    raw_s = time.perf_counter() - t0
    raw_rate = raw_tokens / raw_s
    print(f"device: {backend.device}; batches: {len(rec.batches)}; "
          f"candidates: {sum(r['proposed'] for r in result.logbook)}; "
          f"accepted: {len(result.corpus)}")
    print(f"backend alone: {raw_rate:7.1f} tokens/s ({raw_tokens} tokens in {raw_s:.1f} s)")
    print(f"the loop:      {loop_rate:7.1f} tokens/s ({rec.tokens} tokens in {loop_s:.1f} s)")
    print(f"ratio loop/backend: {loop_rate / raw_rate:.3f}")


if __name__ == "__main__":
    main()
