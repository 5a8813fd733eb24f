"""Exact + near-duplicate removal at scale (quality/dedup.py), on a corpus with planted
duplicates and a known answer.

    .venv/bin/python benchmarks/dedup_scale.py [--rows 1000000] [--threshold 0.7]
        [--repeat 1] [--verify exact|estimate] [--baselines pairwise datasketch rensa]

The corpus (built from seeds/python_core.jsonl, deterministic for a --seed):

- *bases* (about 72% of the rows): distinct instructions. Each joins the first part of one
  seed instruction to the last part of another (random cut points) and then replaces each
  word with probability 0.3 by a word of a 50,000-word random vocabulary. Two bases share
  few 3-shingles (the pairwise baseline prints the largest exact Jaccard between rows of
  different groups in its sample: far below 0.7).
- *near duplicates* (20%): a copy of a base, or of an earlier near duplicate of the same
  base (chains, so clusters need transitivity), with 1 to 3 small edits: an adjacent word
  swap, an inserted word, a deleted word, a synonym, a changed number. Its exact Jaccard
  with the text it was made from is computed, and it is kept only when that is >= the
  threshold (fewer edits are tried first when it is not). A third of them go to 1% of the
  bases, so some clusters are large.
- *hard negatives* (3%): a base with heavier edits, kept when its Jaccard with the base
  lies in [0.3, 0.6] and with each near duplicate of the base stays below the threshold:
  a distinct instruction (its own group) that LSH will often propose.
- *exact duplicates* (5%): a copy of any row above with its case, whitespace and
  punctuation changed (same tokens).

Rows are shuffled. The *true groups* are: a base with its near duplicates and every exact
copy of any of them; every hard negative alone (with its own exact copies).

Scores, over the predicted clusters against the true groups:

- **pair precision / recall**: over all pairs of rows, "same predicted cluster" against
  "same true group" (the Rand-index style pair counts). Reported over all rows and over
  the rows that are not planted exact copies (the near-duplicate part alone).
- **planted recall by Jaccard band**: of the near duplicates, the share that ended in the
  same cluster as the text they were made from, by that pair's exact Jaccard.
- **hard negatives merged**: the share of hard negatives put in their base's cluster.

Baselines, measured in the same run on samples and scaled to --rows:

- ``pairwise``: the exact Jaccard of every pair of a 2,000-row sample (Python sets of
  shingles), scaled by (rows / 2000) ** 2: what checking every pair would cost.
- ``datasketch``: datasketch MinHash (64 perms, same shingles) + MinHashLSH at the
  threshold + candidates verified by their estimated Jaccard + union-find, on a sample of
  about 20,000 rows made of whole true groups, scaled linearly (which flatters it); its
  pair precision and recall on that sample are printed beside ours on the same sample.
- ``rensa``: rensa's bulk digest matrix (64 perms) from Python shingle lists, on a 50,000
  row sample, scaled linearly: signatures only, against our sketch stage.
(Baselines whose package is missing are skipped.)
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

from genetic_instruct.quality.dedup import (
    NGRAM,
    NUM_PERM,
    dedup_texts,
    lsh_params,
    run_dedup,
)
from genetic_instruct.quality.minhash import jaccard, shingles

ROOT = Path(__file__).resolve().parent.parent
SYNONYMS = {
    "return": "output", "returns": "outputs", "list": "array", "string": "text",
    "integer": "int", "integers": "ints", "function": "routine", "write": "implement",
    "given": "provided", "number": "value", "numbers": "values", "compute": "calculate",
    "each": "every", "empty": "blank", "sorted": "ordered", "largest": "biggest",
    "smallest": "tiniest", "first": "initial", "count": "tally", "the": "this", "a": "one",
    "of": "from", "and": "plus", "is": "being", "in": "within", "with": "using",
}
NUMBER = re.compile(r"\d+")
BANDS = [(0.70, 0.75), (0.75, 0.80), (0.80, 0.90), (0.90, 1.01)]


# -- the corpus --------------------------------------------------------------------------------
TOKEN = re.compile(r"\w+")


def shingle_set(text: str) -> set:
    """minhash.shingles(text, 3) as tuples of tokens: the same set, built faster."""
    t = TOKEN.findall(text.lower())
    if len(t) < NGRAM:
        return {tuple(t)} if t else set()
    return set(zip(t, t[1:], t[2:]))


def make_corpus(n: int, threshold: float, seed: int = 0) -> dict:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    seeds = [json.loads(line)["instruction"].split()
             for line in (ROOT / "seeds" / "python_core.jsonl").open()]
    letters = nrng.integers(ord("a"), ord("z") + 1, (52_000, 9), dtype=np.uint8)
    sizes = nrng.integers(3, 10, 52_000)
    vocab_words = sorted({row[:k].tobytes().decode() for row, k in zip(letters, sizes)})
    vocab_words = [vocab_words[i] for i in nrng.permutation(len(vocab_words))[:50_000]]
    seed_words = sorted({w for s in seeds for w in s})
    words = np.array(seed_words + vocab_words, dtype=object)
    wid = {w: i for i, w in enumerate(seed_words)}
    n_seed_words = len(seed_words)

    n_exact = int(0.05 * n)
    n_near = int(0.20 * n)
    n_hard = int(0.03 * n)
    n_base = n - n_exact - n_near - n_hard

    # bases, vectorized: seed A's first part + seed B's last part, 30% of words replaced
    flat = np.concatenate([[wid[w] for w in s] for s in seeds]).astype(np.int64)
    slen = np.array([len(s) for s in seeds])
    sstart = np.cumsum(slen) - slen
    a = nrng.integers(0, len(seeds), n_base)
    b = nrng.integers(0, len(seeds), n_base)
    cut_a = (slen[a] * nrng.uniform(0.35, 0.65, n_base)).astype(np.int64)
    cut_b = (slen[b] * nrng.uniform(0.35, 0.65, n_base)).astype(np.int64)
    len1, len2 = cut_a, slen[b] - cut_b
    lens = len1 + len2
    total = int(lens.sum())
    starts = np.cumsum(lens) - lens
    within = np.arange(total) - np.repeat(starts, lens)
    first_part = within < np.repeat(len1, lens)
    src = np.where(first_part, np.repeat(sstart[a], lens) + within,
                   np.repeat(sstart[b] + cut_b - len1, lens) + within)
    ids = flat[src]
    swap = nrng.random(total) < 0.3
    ids[swap] = n_seed_words + nrng.integers(0, len(vocab_words), int(swap.sum()))
    tokens = words[ids].tolist()
    bounds = np.append(starts, total).tolist()
    base_words = [tokens[bounds[i]:bounds[i + 1]] for i in range(n_base)]
    del tokens, ids, src

    texts: list[str] = [" ".join(w) for w in base_words]
    group = list(range(n_base))
    kind = ["base"] * n_base
    parent = [-1] * n_base
    pair_j = [math.nan] * n_base
    word_lists: list[list[str]] = list(base_words)

    def edit(ws: list[str], k: int) -> list[str]:
        ws = list(ws)
        for _ in range(k):
            op = rng.randrange(5)
            p = rng.randrange(len(ws))
            if op == 0 and len(ws) > 1:  # swap adjacent
                q = min(p + 1, len(ws) - 1)
                ws[p], ws[q] = ws[q], ws[p]
            elif op == 1:  # insert
                ws.insert(p, vocab_words[rng.randrange(len(vocab_words))])
            elif op == 2 and len(ws) > 3:  # delete
                del ws[p]
            elif op == 3:  # synonym (or a random word)
                w = ws[p].lower()
                ws[p] = SYNONYMS.get(w, vocab_words[rng.randrange(len(vocab_words))])
            else:  # a number changed, or one added
                nums = [i for i, w in enumerate(ws) if NUMBER.search(w)]
                if nums:
                    i = rng.choice(nums)
                    ws[i] = NUMBER.sub(lambda _: str(rng.randrange(1000)), ws[i], count=1)
                else:
                    ws.insert(p, str(rng.randrange(1000)))
        return ws

    # near duplicates: 2/3 uniform over bases, 1/3 over 1% "popular" bases; 20% chained
    popular = max(1, n_base // 100)
    shingle_cache: dict[int, set] = {}

    def sh(i: int) -> set:
        got = shingle_cache.get(i)
        if got is None:
            got = shingle_cache[i] = shingle_set(texts[i])
        return got

    members: dict[int, list[int]] = {}
    made = 0
    while made < n_near:
        g = rng.randrange(popular) if rng.random() < 1 / 3 else rng.randrange(n_base)
        src = g
        if members.get(g) and rng.random() < 0.2:
            src = rng.choice(members[g])
        for k in (rng.choice((1, 2, 2, 3)), 2, 1):
            ws = edit(word_lists[src], k)
            text = " ".join(ws)
            j = jaccard(sh(src), shingle_set(text))
            if threshold <= j < 1.0:
                break
        else:
            continue
        i = len(texts)
        texts.append(text)
        word_lists.append(ws)
        group.append(g)
        kind.append("near")
        parent.append(src)
        pair_j.append(j)
        members.setdefault(g, []).append(i)
        made += 1

    # hard negatives: heavier edits, Jaccard with the base in [0.3, 0.6]
    made = 0
    while made < n_hard:
        g = rng.randrange(n_base)
        ws = list(word_lists[g])
        for _ in range(12):
            ws = edit(ws, 2)
            text = " ".join(ws)
            j = jaccard(sh(g), shingle_set(text))
            if j <= 0.6:
                break
        if not 0.3 <= j <= 0.6:
            continue
        mine = shingle_set(text)  # distinct from the whole group, not just from the base
        if any(jaccard(sh(m), mine) >= threshold for m in members.get(g, ())):
            continue
        texts.append(text)
        word_lists.append(ws)
        group.append(len(group))  # its own group
        kind.append("hard")
        parent.append(g)
        pair_j.append(j)
        made += 1

    # exact duplicates: case, whitespace and punctuation changed
    def restyle(text: str) -> str:
        ws = text.split()
        out = []
        for w in ws:
            r = rng.random()
            if r < 0.15:
                w = w.upper()
            elif r < 0.3:
                w = w.capitalize()
            elif r < 0.35:
                w = w + ","
            out.append(w)
        sep = rng.choice([" ", "  ", "\n", " \t "])
        return sep.join(out) + rng.choice(["", ".", "!", " ?", "\n"])

    for _ in range(n_exact):
        src = rng.randrange(len(texts))
        texts.append(restyle(texts[src]))
        group.append(group[src])
        kind.append("exact")
        parent.append(src)
        pair_j.append(1.0)

    order = list(range(len(texts)))
    rng.shuffle(order)
    pos = np.empty(len(order), dtype=np.int64)
    pos[order] = np.arange(len(order))
    return {
        "texts": [texts[i] for i in order],
        "group": np.array(group, dtype=np.int64)[order],
        "kind": np.array(kind)[order],
        "parent": np.array([pos[p] if p >= 0 else -1 for p in parent], dtype=np.int64)[order],
        "pair_j": np.array(pair_j)[order],
    }


# -- scores ------------------------------------------------------------------------------------
def pair_scores(pred: np.ndarray, true: np.ndarray) -> tuple[float, float, int, int]:
    def pairs(*cols: np.ndarray) -> int:
        _, counts = np.unique(np.stack(cols, axis=1), axis=0, return_counts=True)
        return int((counts * (counts - 1) // 2).sum())

    tp, pp, tt = pairs(pred, true), pairs(pred), pairs(true)
    return (tp / pp if pp else 1.0), (tp / tt if tt else 1.0), pp, tt


def score(corpus: dict, label: np.ndarray) -> dict:
    group, kind, parent, pj = (corpus[k] for k in ("group", "kind", "parent", "pair_j"))
    out = {}
    p, r, pp, tt = pair_scores(label, group)
    out["all"] = {"pair_precision": p, "pair_recall": r, "pred_pairs": pp, "true_pairs": tt}
    keep = kind != "exact"
    p, r, pp, tt = pair_scores(label[keep], group[keep])
    out["no_exact_copies"] = {"pair_precision": p, "pair_recall": r, "pred_pairs": pp,
                              "true_pairs": tt}
    near = np.flatnonzero(kind == "near")
    found = label[near] == label[parent[near]]
    out["planted_recall"] = float(found.mean()) if len(near) else 1.0
    out["planted_by_band"] = {}
    for lo, hi in BANDS:
        m = (pj[near] >= lo) & (pj[near] < hi)
        out["planted_by_band"][f"{lo:.2f}-{min(hi, 1.0):.2f}"] = {
            "n": int(m.sum()), "recall": float(found[m].mean()) if m.any() else None}
    hard = np.flatnonzero(kind == "hard")
    out["hard_negatives_merged"] = float((label[hard] == label[parent[hard]]).mean()) \
        if len(hard) else 0.0
    ex = np.flatnonzero(kind == "exact")
    out["exact_recall"] = float((label[ex] == label[parent[ex]]).mean()) if len(ex) else 1.0
    return out


# -- baselines ---------------------------------------------------------------------------------
def pairwise_baseline(texts: list[str], group: np.ndarray, n_base: int, threshold: float,
                      n: int = 2000) -> dict:
    """Every pair of the first n rows (a random sample: rows are shuffled), exactly; also
    the largest Jaccard between rows of different true groups (how distinct they are), and
    the same leaving out hard negatives (group ids >= n_base), which sit at 0.3-0.6 by
    design."""
    sample = texts[:n]
    t0 = time.perf_counter()
    sets = [shingles(t, NGRAM) for t in sample]
    sims = []
    for i in range(len(sets)):
        a = sets[i]
        for j in range(i + 1, len(sets)):
            b = sets[j]
            inter = len(a & b)
            sims.append(inter / (len(a) + len(b) - inter) if (a or b) else 1.0)
    took = time.perf_counter() - t0
    sims = np.array(sims)
    i, j = np.triu_indices(len(sample), 1)
    g = group[:n]
    other = g[i] != g[j]
    plain = other & (g[i] < n_base) & (g[j] < n_base)  # no hard negative in the pair

    def top(mask: np.ndarray) -> float | None:
        return round(float(sims[mask].max()), 4) if mask.any() else None

    return {"sample": len(sample), "seconds": took,
            "pairs_at_threshold": int((sims >= threshold).sum()),
            "max_jaccard_across_groups": top(other),
            "max_jaccard_across_base_groups": top(plain)}


def datasketch_baseline(texts: list[str], group: np.ndarray, threshold: float,
                        n: int = 20_000) -> dict | None:
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:
        return None
    # whole true groups (every group id = 0 mod m), so the sample holds each group entire
    m = max(1, round(len(texts) / n))
    pick = np.flatnonzero(group % m == 0)
    sample, group = [texts[i] for i in pick.tolist()], group[pick]
    n = len(sample)
    t0 = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    sigs = []
    for i, t in enumerate(sample):
        m = MinHash(num_perm=NUM_PERM)
        m.update_batch([s.encode() for s in shingles(t, NGRAM)])
        sigs.append(m)
        lsh.insert(i, m)
    parent = list(range(len(sample)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, m in enumerate(sigs):
        for j in lsh.query(m):
            if j != i and m.jaccard(sigs[j]) >= threshold:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    took = time.perf_counter() - t0
    label = np.array([find(i) for i in range(len(sample))])
    p, r, _, _ = pair_scores(label, group)
    ours = dedup_texts(sample, threshold).label
    p2, r2, _, _ = pair_scores(ours, group)
    return {"sample": len(sample), "seconds": took, "kept": int((label == np.arange(n)).sum()),
            "pair_precision": round(p, 4), "pair_recall": round(r, 4),
            "ours_on_sample": {"kept": int((ours == np.arange(n)).sum()),
                               "pair_precision": round(p2, 4), "pair_recall": round(r2, 4)}}


def rensa_baseline(texts: list[str], n: int = 50_000) -> dict | None:
    try:
        from rensa import RMinHash
    except ImportError:
        return None
    sample = texts[:n]
    t0 = time.perf_counter()
    sets = [list(shingles(t, NGRAM)) for t in sample]
    RMinHash.digest_matrix_from_token_sets(sets, NUM_PERM, 42)
    return {"sample": len(sample), "seconds": time.perf_counter() - t0}


# -- main --------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--verify", default="exact", choices=("exact", "estimate"))
    ap.add_argument("--num-perm", type=int, default=NUM_PERM)
    ap.add_argument("--baselines", nargs="*", default=["pairwise", "datasketch", "rensa"])
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    t0 = time.perf_counter()
    corpus = make_corpus(args.rows, args.threshold, args.seed)
    texts = corpus["texts"]
    kinds, counts = np.unique(corpus["kind"], return_counts=True)
    print(f"corpus: {len(texts)} rows ({', '.join(f'{k} {c}' for k, c in zip(kinds, counts))}),"
          f" {np.mean([len(t.split()) for t in texts[:20000]]):.1f} words on average, built in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    bands, rows_per_band = lsh_params(args.threshold, args.num_perm)
    print(f"params: num_perm={args.num_perm} bands={bands} rows={rows_per_band} "
          f"ngram={NGRAM} verify={args.verify}", flush=True)

    rows = [{"id": i, "instruction": t} for i, t in enumerate(texts)]
    runs = []
    label = None
    for r in range(args.repeat):
        t1 = time.perf_counter()
        kept, report, result = run_dedup(
            rows, args.threshold, verify=args.verify, num_perm=args.num_perm,
            progress=lambda m: print("  " + m, file=sys.stderr, flush=True))
        wall = time.perf_counter() - t1
        label = result.label
        runs.append({"wall": wall, "seconds": report["seconds"], "counts": report["counts"],
                     "pairs": report["pairs"]})
        stages = ", ".join(f"{k} {v:.2f}" for k, v in report["seconds"].items())
        print(f"run {r + 1}: {wall:.2f} s end to end ({stages}); counts {report['counts']}; "
              f"pairs {report['pairs']}", flush=True)
        del kept, report, result
    scores = score(corpus, label)
    print("scores:", json.dumps(scores, indent=1), flush=True)

    best = min(run["wall"] for run in runs)
    base = {}
    if "pairwise" in args.baselines:
        b = pairwise_baseline(texts, corpus["group"], int((corpus["kind"] == "base").sum()),
                              args.threshold)
        b["scaled_seconds"] = b["seconds"] * (len(texts) / b["sample"]) ** 2
        base["pairwise"] = b
    if "datasketch" in args.baselines:
        b = datasketch_baseline(texts, corpus["group"], args.threshold)
        if b:
            b["scaled_seconds"] = b["seconds"] * len(texts) / b["sample"]
            base["datasketch"] = b
    if "rensa" in args.baselines:
        b = rensa_baseline(texts)
        if b:
            b["scaled_seconds"] = b["seconds"] * len(texts) / b["sample"]
            base["rensa_signatures"] = b
    for name, b in base.items():
        print(f"baseline {name}: {b['seconds']:.2f} s on {b['sample']} rows -> "
              f"{b['scaled_seconds']:.1f} s scaled to {len(texts)}; ours (best run) "
              f"{best:.2f} s: {b['scaled_seconds'] / best:.1f}x; {b}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"rows": len(texts), "runs": runs, "scores": scores,
                                         "baselines": base}, indent=1, default=str))


if __name__ == "__main__":
    main()
