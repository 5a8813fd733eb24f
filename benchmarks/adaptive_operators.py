"""Adaptive operators: the bandit on against off, same seed, same budget.

Runs the quickstart on the embedded model for a fixed number of generations twice (or
more: one run per mode), once per ``evolution.adaptive`` mode, and prints accepted
samples per 1,000 LLM output tokens for each, and the ratio against ``off`` measured in
the same run. Nothing is cached between the runs.

    .venv/bin/python benchmarks/adaptive_operators.py [--generations 4] [--offspring 24]
        [--modes off,thompson] [--seed 7]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from genetic_instruct.assemble import executor_from_config, make_backends, make_fitness
from genetic_instruct.config import load_config
from genetic_instruct.evolution.loop import Evolution
from genetic_instruct.seeds import load_seeds
from genetic_instruct.store import RunStore

ROOT = Path(__file__).resolve().parent.parent


def run(mode: str, args, backends, executor) -> dict:
    cfg = load_config(ROOT / "configs/quickstart.yaml", [
        f"evolution.adaptive={mode}", f"evolution.max_generations={args.generations}",
        f"evolution.offspring_per_colony={args.offspring}", "evolution.target_size=100000",
        f"seed={args.seed}", "cache.enabled=false", f"execution.executor={args.executor}",
    ])
    seeds = load_seeds(cfg.seeds, root=ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "run")
        store.create(cfg)
        t0 = time.perf_counter()
        result = Evolution(cfg, backends, make_fitness(cfg, executor, backends), seeds,
                           store).run()
        seconds = time.perf_counter() - t0
    out_tokens = sum(t["out"] for t in result.tokens.values())
    mix = {}
    for row in result.logbook:
        for arm, counts in row["mix"].items():
            m = mix.setdefault(arm, [0, 0])
            m[0] += counts.get("proposed", 0)
            m[1] += counts.get("accepted", 0)
    return {"mode": mode, "accepted": len(result.corpus), "out_tokens": out_tokens,
            "per_1k": 1000 * len(result.corpus) / max(1, out_tokens), "seconds": seconds,
            "mix": mix, "per_generation": [r["accepted"] for r in result.logbook]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--offspring", type=int, default=24)
    ap.add_argument("--modes", default="off,thompson")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--executor", default="auto")
    args = ap.parse_args()
    base_cfg = load_config(ROOT / "configs/quickstart.yaml",
                           [f"execution.executor={args.executor}"])
    backends = make_backends(base_cfg)  # one loaded model for every run
    executor = executor_from_config(base_cfg)
    try:
        rows = [run(mode, args, backends, executor) for mode in args.modes.split(",")]
    finally:
        executor.close()
    base = rows[0]["per_1k"] or float("nan")
    print(f"{args.generations} generations x {2 * args.offspring} candidates, seed {args.seed}")
    for r in rows:
        print(f"{r['mode']:>9}: {r['accepted']:3d} accepted, {r['out_tokens']:6d} output tokens, "
              f"{r['per_1k']:.3f} accepted / 1k tokens (ratio {r['per_1k'] / base:.2f}), "
              f"{r['seconds']:.0f} s, per generation {r['per_generation']}")
        for arm, (proposed, accepted) in sorted(r["mix"].items()):
            print(f"           {arm:<28} {accepted:3d}/{proposed:3d}")


if __name__ == "__main__":
    main()
