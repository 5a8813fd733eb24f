"""MinHash signatures per second on synthetic instructions (quality/minhash.py).

The texts are seed instructions (seeds/python_core.jsonl) with a fifth of their words
replaced by random ones, cut to ``--words`` words (0: whole, about 60 on average), so the
vocabulary keeps growing as it would in a large corpus.

    .venv/bin/python benchmarks/minhash_speed.py [--n 10000] [--words 25] [--perm 64 128]
        [--workers 1 2] [--lsh-bands 32]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from genetic_instruct.quality.minhash import MinHasher, candidate_pairs

ROOT = Path(__file__).resolve().parent.parent


def make_texts(n: int, words: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    seeds = [json.loads(line)["instruction"]
             for line in (ROOT / "seeds" / "python_core.jsonl").open()]
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
             for _ in range(50_000)]
    out = []
    for _ in range(n):
        w = rng.choice(seeds).split()
        if words:
            start = rng.randint(0, max(0, len(w) - words))
            w = w[start:start + words]
        out.append(" ".join(rng.choice(vocab) if rng.random() < 0.2 else x for x in w))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--words", type=int, default=25)
    ap.add_argument("--perm", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lsh-bands", type=int, default=0)
    args = ap.parse_args()
    texts = make_texts(args.n, args.words)
    mean_words = sum(len(t.split()) for t in texts) / len(texts)
    print(f"{len(texts)} texts, {mean_words:.1f} words on average")
    for perm in args.perm:
        for workers in args.workers:
            hasher = MinHasher(num_perm=perm, workers=workers)
            best = min(_timed(hasher.signatures, texts) for _ in range(args.repeat))
            print(f"num_perm={perm:4d} workers={workers}: {len(texts) / best:10.0f} "
                  f"signatures/s (best of {args.repeat}: {best:.3f} s)")
            if args.lsh_bands:
                sigs = hasher.signatures(texts)
                t0 = time.perf_counter()
                pairs = candidate_pairs(sigs, args.lsh_bands)
                print(f"  candidate_pairs(bands={args.lsh_bands}): {len(pairs)} pairs in "
                      f"{time.perf_counter() - t0:.3f} s")


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
