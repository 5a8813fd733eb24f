"""What running the colonies as Ray actors costs against the single-process loop.

The same small run (fake backend that sleeps ``--delay`` seconds per batch, as an LLM
would take; the local executor really runs every candidate's asserts) in one process and
under a local Ray instance, with 1 and 2 colonies. Prints wall time per run and per
generation, and each Ray figure as a ratio to the single process with as many colonies,
measured in the same run. Ray's own start (``ray.init``) is printed apart, and each run's
setup (the single process: executor and fitness; Ray: starting the backend, executor and
colony actors) apart from its generations: a real run pays both once.

    .venv/bin/python benchmarks/ray_overhead.py [--offspring 8] [--generations 5]
        [--delay 0.2] [--colonies 1 2] [--rounds 1]

With ``--model PATH`` (and ``--device cuda``, ``--random-init``) the backend is the
transformers backend instead: on a GPU machine Ray places it with ``num_gpus=1``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from genetic_instruct.assemble import executor_from_config, make_backends, make_fitness
from genetic_instruct.config import validate_config
from genetic_instruct.evolution.loop import Evolution
from genetic_instruct.execution.local import UnsafeExecutorWarning
from genetic_instruct.seeds import load_seeds
from genetic_instruct.store import RunStore

ROOT = Path(__file__).resolve().parent.parent


def make_config(colonies: int, offspring: int, generations: int, args):
    backend = {"type": "fake", "options": {"delay_s": args.delay}}
    if args.model:
        backend = {"type": "transformers", "model": args.model, "device": args.device,
                   "batch_size": 256, "options": {"random_init": args.random_init}}
    return validate_config({
        "seed": 11,
        "seeds": {"path": str(ROOT / "seeds/python_core.jsonl"), "limit": 24},
        "backends": {"default": backend},
        "roles": {"instructor": {"max_tokens": 80}, "coder": {"max_tokens": 160},
                  "test_writer": {"max_tokens": 64, "n": 3}},
        "execution": {"executor": "local", "workers": 1},
        "cache": {"enabled": False},
        "evolution": {"colonies": colonies, "offspring_per_colony": offspring,
                      "max_generations": generations, "target_size": 10**9},
    })


def single(cfg, out: Path) -> tuple[float, list[float], int]:
    t0 = time.perf_counter()
    store = RunStore(out)
    store.create(cfg)
    executor = executor_from_config(cfg)
    try:
        evo = Evolution(cfg, make_backends(cfg), make_fitness(cfg, executor),
                        load_seeds(cfg.seeds), store)
        result = evo.run()
    finally:
        executor.close()
    return time.perf_counter() - t0, [r["seconds"] for r in result.logbook], len(result.corpus)


def on_ray(cfg, out: Path) -> tuple[float, list[float], int, dict]:
    import ray

    from genetic_instruct.distributed.driver import RayEvolution

    t0 = time.perf_counter()
    store = RunStore(out)
    store.create(cfg)
    evo = RayEvolution(cfg, store, load_seeds(cfg.seeds))
    try:
        result = evo.run()
        stats = ray.get(evo.backends[0].stats.remote())
    finally:
        evo.close()
    return (time.perf_counter() - t0, [r["seconds"] for r in result.logbook],
            len(result.corpus), stats)


def fmt(seconds: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offspring", type=int, default=8)
    ap.add_argument("--generations", type=int, default=5)
    ap.add_argument("--delay", type=float, default=0.2, help="seconds per LLM batch")
    ap.add_argument("--colonies", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--model", help="a model folder: the transformers backend, not the fake")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--random-init", action="store_true", help="random weights, same work")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UnsafeExecutorWarning)  # our own fake code

    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)
    print(f"ray.init (once per run, not counted below): {time.perf_counter() - t0:.1f} s")
    what = (f"transformers backend ({args.model}, {args.device})" if args.model
            else f"fake backend, {args.delay} s per LLM batch")
    print(f"{args.generations} generations x {args.offspring} offspring per colony, "
          f"{what}, local executor")
    with tempfile.TemporaryDirectory(prefix="ray-overhead-") as tmp:
        compare(args, Path(tmp))
    ray.shutdown()


def compare(args, tmp: Path) -> None:
    k = 0
    for colonies in args.colonies:
        cfg = make_config(colonies, args.offspring, args.generations, args)
        for rnd in range(args.rounds):
            k += 1
            if rnd % 2 == 0:  # alternate which goes first (a warm process, a warm GPU)
                s_wall, s_gens, s_acc = single(cfg, tmp / f"s{k}")
                r_wall, r_gens, r_acc, stats = on_ray(cfg, tmp / f"r{k}")
            else:
                r_wall, r_gens, r_acc, stats = on_ray(cfg, tmp / f"r{k}")
                s_wall, s_gens, s_acc = single(cfg, tmp / f"s{k}")
            s_gen, r_gen = statistics.median(s_gens), statistics.median(r_gens)
            s_setup, r_setup = s_wall - sum(s_gens), r_wall - sum(r_gens)
            print(f"colonies {colonies} round {rnd + 1}:\n"
                  f"  single: {s_wall:6.2f} s = setup {s_setup:5.2f} s + {len(s_gens)} x "
                  f"{s_gen:.3f} s/gen (median); {s_acc} accepted\n"
                  f"  ray:    {r_wall:6.2f} s = setup {r_setup:5.2f} s + {len(r_gens)} x "
                  f"{r_gen:.3f} s/gen (median); {r_acc} accepted; the colonies' "
                  f"{stats['calls']} LLM batches reached the backend as {stats['batches']}"
                  f"{'; backend on GPU ' + str(stats['gpus']) if stats['gpus'] else ''}"
                  f"{'; torch threads there ' + str(stats['threads']) if stats['threads'] else ''}"
                  f"\n  per generation: single {fmt(s_gens)}; ray {fmt(r_gens)}\n"
                  f"  ratio ray/single: whole run {r_wall / s_wall:.2f}, "
                  f"per generation {r_gen / s_gen:.2f}")


if __name__ == "__main__":
    main()
