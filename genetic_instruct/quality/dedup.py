"""Exact and near-duplicate removal over instructions (and/or solutions), at corpus scale.

    kept, report = dedup_rows(rows, threshold=0.7, field="instruction", keep="first")

    index = NearDuplicateIndex(threshold=0.7)     # incremental, for the evolution loop
    index.add("a1", "Write a function that ...")
    index.query("write a function that ...!")     # ("a1", 1.0), or None

**What counts as a duplicate.** A text is reduced to its lowercased ``\\w+`` tokens (the
tokenizer of quality/minhash.py), so case, whitespace and punctuation never matter:
``"Sort the list, then return it."`` and ``"sort the list then RETURN it"`` are *exact*
duplicates. (So are ``a+b`` and ``a-b``: punctuation-only differences are stripped by
design, operators included.) Two texts are *near* duplicates when the Jaccard similarity
of their word 3-shingle sets is at least ``threshold`` (default 0.7). Duplicates cluster
transitively (connected components), and each cluster keeps one row: the first, or the one
with the highest score.

**How, and why it is fast.** Every stage is numpy over whole arrays; per row, Python only
joins strings and builds lists.

1. *sketch*: one pass over the texts computes, per text, a 64-perm MinHash signature
   (32-bit permutations, quality/minhash.py ``hash_bits=32``) and a 64-bit fingerprint of
   its token sequence.
2. *exact*: rows with equal fingerprints form exact groups (one argsort); only the first
   row of each group goes on to the near-duplicate stages. (A false exact match needs a
   64-bit collision: about n**2 / 2**65, 3e-8 for a million rows.)
3. *lsh*: 16 bands of 4 rows (:func:`lsh_params`): a pair at Jaccard exactly 0.7 shares a
   band with probability 0.988, at 0.75 with 0.998, at 0.5 with 0.65, at 0.3 with 0.12. In
   each band, texts with equal band keys share a bucket; every member is paired with the
   bucket's first ``ANCHORS`` members (all pairs in buckets up to ANCHORS + 1, linear
   work in larger ones).
4. *verify*: the candidate pairs' Jaccard is estimated from the signatures (the share of
   equal slots). Estimates far from the threshold decide alone (at least ``margin`` =
   3 standard errors of a 64-slot estimate away: 0.17 at 0.7); the pairs in between get
   their exact Jaccard, from their shingle hash sets, recomputed for just those texts
   (and skipped where clear pairs already join the two texts). So the cut-off is the
   true Jaccard, not a noisy estimate of it (a 64-slot estimate has a standard error of
   0.057 at 0.7). ``verify="estimate"`` skips the exact check and cuts at the estimate.
5. *cluster*: union-find in bulk (every edge hooks the larger root to the smaller, then
   pointer jumping; repeat); a cluster's label is its smallest row index.
6. *select*: per cluster, the first row or the best-scoring one.

``field="both"`` links two rows when their instructions *or* their solutions are
duplicates (exact or near).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import numpy as np

from .minhash import CHUNK_TEXTS, MinHasher, band_keys_t

THRESHOLD = 0.7
NUM_PERM = 64
NGRAM = 3
HASH_BITS = 32
ANCHORS = 8          # a bucket member is paired with this many of its bucket's first members
RECALL_AT_THRESHOLD = 0.985  # lsh_params: P(candidate) for a pair exactly at the threshold
MARGIN_SE = 3.0      # estimates this many standard errors from the threshold decide alone
MAX_CLUSTERS = 1000  # clusters listed in a report (the largest first)
MAX_MEMBERS = 50     # member ids listed per cluster
FIELDS = ("instruction", "solution", "both")
FIELD_COLUMNS = {"instruction": ("instruction",), "solution": ("solution",),
                 "both": ("instruction", "solution")}
KEEPS = ("first", "score")
VERIFY = ("exact", "estimate")
_PAIR_CHUNK = 1 << 20     # candidate pairs per verification block
_EXACT_BITS = 40          # shingle hash bits kept for exact Jaccard (ids above them)
_SET_BLOCK = 4096          # pairs per exact-Jaccard sort (small: the sort stays in cache)


# -- parameters ------------------------------------------------------------------------------
def candidate_probability(j: float | np.ndarray, bands: int, rows: int) -> float | np.ndarray:
    """P(two texts at Jaccard j share at least one band): 1 - (1 - j**rows)**bands."""
    return 1.0 - (1.0 - np.asarray(j, dtype=float) ** rows) ** bands


def lsh_params(threshold: float, num_perm: int,
               recall: float = RECALL_AT_THRESHOLD) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm: the most rows per band (the fewest
    false candidates) for which a pair exactly at ``threshold`` still becomes a candidate
    with probability >= ``recall``. Candidates are verified afterwards, so the S-curve sits
    below the threshold on purpose: a missed candidate is lost, a false one only costs a
    comparison."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1] (got {threshold!r})")
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if candidate_probability(threshold, bands, rows) >= recall:
            best = (bands, rows)
    return best


def margin(threshold: float, num_perm: int, se: float = MARGIN_SE) -> float:
    """How far an estimate must lie from the threshold to decide without the exact check."""
    return se * math.sqrt(max(threshold * (1.0 - threshold), 0.01) / num_perm)


# -- the result ------------------------------------------------------------------------------
@dataclass
class Dedup:
    """The outcome over n texts (or rows): ``label[i]`` is the smallest row index of i's
    cluster; ``kept`` the rows kept, ascending; ``exact_groups`` how many distinct texts."""

    label: np.ndarray
    kept: np.ndarray
    exact_groups: int
    stats: dict[str, Any] = dc_field(default_factory=dict)
    seconds: dict[str, float] = dc_field(default_factory=dict)


class _Clock:
    def __init__(self, progress: Callable[[str], None] | None):
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self.t = time.perf_counter()

    def lap(self, stage: str, note: str = "") -> None:
        now = time.perf_counter()
        took = now - self.t
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + took, 4)
        self.t = now
        if self.progress is not None:
            self.progress(f"dedup: {stage} {took:.2f} s" + (f" ({note})" if note else ""))


# -- the stages ------------------------------------------------------------------------------
def exact_first(keys: np.ndarray) -> np.ndarray:
    """Per row, the index of the first row with the same fingerprint."""
    n = len(keys)
    if not n:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(keys)
    k = keys[order]
    new = np.ones(n, dtype=bool)
    np.not_equal(k[1:], k[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    first = np.empty(n, dtype=np.int64)
    first[order] = np.repeat(np.minimum.reduceat(order, starts), np.diff(np.append(starts, n)))
    return first


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    """np.unique by np.sort (numpy's own unique is many times slower on uint64)."""
    x = np.sort(x)
    if len(x) > 1:
        keep = np.ones(len(x), dtype=bool)
        np.not_equal(x[1:], x[:-1], out=keep[1:])
        x = x[keep]
    return x


def candidates(sigs: np.ndarray, bands: int, rows: int, anchors: int = ANCHORS) -> np.ndarray:
    """(m, 2) int64 pairs i < j that share a bucket in some band (each pair once); a member
    of a bucket is paired with up to ``anchors`` members before it (all of a small bucket).

    Per band, each text's key keeps its top bits and gets the text's index in the low bits,
    so one plain ``np.sort`` (several times faster than ``argsort``) groups the buckets,
    members in index order. Keys cut to 64 - log2(n) bits (44 at a million texts) can
    collide by chance: about n**2 / 2**(65 - log2 n) false candidates per band (0.03 at a
    million), which verification removes.
    """
    n = len(sigs)
    if n < 2:
        return np.empty((0, 2), dtype=np.int64)
    keys = band_keys_t(sigs, bands, rows)
    bits = max(1, (n - 1).bit_length())
    low = np.uint64((1 << bits) - 1)
    idx = np.arange(n, dtype=np.uint64)
    codes = []
    for j in range(bands):
        packed = keys[j]
        packed &= ~low
        packed |= idx
        packed.sort()
        top = packed >> np.uint64(bits)
        same = top[1:] == top[:-1]
        if not same.any():
            continue
        inb = np.zeros(n, dtype=bool)
        inb[1:] = same
        inb[:-1] |= same
        at = np.flatnonzero(inb)
        member = (packed[at] & low).astype(np.int64)  # bucket by bucket, ascending within
        t = top[at]
        new = np.ones(len(at), dtype=bool)
        np.not_equal(t[1:], t[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        sizes = np.diff(np.append(starts, len(at)))
        # the member at rank q >= 1 of its bucket pairs with ranks 0 .. min(q, anchors) - 1
        later = np.repeat(starts, sizes - 1)
        rank = np.arange(len(later)) - np.repeat(np.cumsum(sizes - 1) - (sizes - 1),
                                                 sizes - 1) + 1
        take = np.minimum(rank, anchors)
        step = np.arange(int(take.sum())) - np.repeat(np.cumsum(take) - take, take)
        hi = member[np.repeat(later + rank, take)]
        lo = member[np.repeat(later, take) + step]
        codes.append(lo * np.int64(n) + hi)  # lo < hi: members ascend within a bucket
    if not codes:
        return np.empty((0, 2), dtype=np.int64)
    code = _sorted_unique(np.concatenate(codes))
    return np.stack([code // n, code % n], axis=1)


def estimated_jaccard(sigs: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """The share of equal signature slots for each pair (blockwise, to bound memory)."""
    out = np.empty(len(pairs), dtype=np.float32)
    for lo in range(0, len(pairs), _PAIR_CHUNK):
        p = pairs[lo:lo + _PAIR_CHUNK]
        same = sigs[p[:, 0]] == sigs[p[:, 1]]
        out[lo:lo + len(p)] = same.view(np.uint8).sum(axis=1, dtype=np.uint32)
    out /= sigs.shape[1]
    return out


def shingle_sets(hasher: MinHasher, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every text's distinct shingle hashes (their top 40 bits), sorted, text after text;
    and each text's start in that array (len(texts) + 1 entries)."""
    parts, sizes = [], []
    shift = np.uint64(_EXACT_BITS)
    for lo in range(0, len(texts), CHUNK_TEXTS):
        h, counts = hasher.shingle_hashes(texts[lo:lo + CHUNK_TEXTS])
        tid = np.repeat(np.arange(len(counts), dtype=np.uint64), counts)
        key = _sorted_unique((tid << shift) | (h >> np.uint64(64 - _EXACT_BITS)))
        sizes.append(np.bincount((key >> shift).astype(np.int64), minlength=len(counts)))
        parts.append(key & np.uint64((1 << _EXACT_BITS) - 1))
    if not parts:
        return np.empty(0, np.uint64), np.zeros(1, np.int64)
    return np.concatenate(parts), np.concatenate(([0], np.cumsum(np.concatenate(sizes))))


def set_jaccard(flat: np.ndarray, bounds: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Exact Jaccard of the shingle sets of each pair (local text ids into ``bounds``).

    Per block of pairs, each pair's two sets are tagged with the pair's number (above the
    hash bits) and sorted together: a shared shingle shows up as two equal neighbours.
    """
    out = np.empty(len(pairs), dtype=np.float32)
    sizes = np.diff(bounds)
    shift = np.uint64(_EXACT_BITS)
    block = _SET_BLOCK
    for lo in range(0, len(pairs), block):
        p = pairs[lo:lo + block]
        su, sv = sizes[p[:, 0]], sizes[p[:, 1]]
        pid = np.arange(len(p), dtype=np.uint64) << shift
        both = np.concatenate([_gather(flat, bounds[p[:, 0]], su) | np.repeat(pid, su),
                               _gather(flat, bounds[p[:, 1]], sv) | np.repeat(pid, sv)])
        both.sort()
        twice = both[1:][both[1:] == both[:-1]]
        inter = np.bincount((twice >> shift).astype(np.int64), minlength=len(p))
        union = su + sv - inter
        out[lo:lo + len(p)] = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return out


def _gather(flat: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """flat[starts[0]:starts[0]+sizes[0]], flat[starts[1]:...], ... concatenated."""
    total = int(sizes.sum())
    offset = np.repeat(starts - (np.cumsum(sizes) - sizes), sizes)
    return flat[np.arange(total) + offset]


def components(n: int, edges: np.ndarray) -> np.ndarray:
    """Connected components of n nodes: per node, the smallest node of its component.

    Union-find in bulk: hook the larger root of every edge to the smaller, compress paths
    by pointer jumping, drop the edges now inside one component, repeat.
    """
    parent = np.arange(n, dtype=np.int64)
    if not len(edges):
        return parent
    u = edges[:, 0].astype(np.int64)
    v = edges[:, 1].astype(np.int64)
    while len(u):
        pu, pv = parent[u], parent[v]
        live = pu != pv
        if not live.all():
            u, v, pu, pv = u[live], v[live], pu[live], pv[live]
            if not len(u):
                break
        lo, hi = np.minimum(pu, pv), np.maximum(pu, pv)
        np.minimum.at(parent, hi, lo)
        while True:  # pointer jumping until every node points at a root
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt
    return parent


def _near_edges(hasher: MinHasher, texts: Sequence[str], sigs: np.ndarray, reps: np.ndarray,
                threshold: float, bands: int, rows: int, verify: str, clock: _Clock,
                stats: dict, tag: str) -> np.ndarray:
    """Verified near-duplicate pairs among the rows ``reps`` (distinct texts), as row ids."""
    sigs = sigs[reps] if len(reps) < len(sigs) else sigs
    pairs = candidates(sigs, bands, rows)
    stats[f"{tag}candidates"] = len(pairs)
    clock.lap(f"{tag}lsh", f"{len(pairs)} candidate pairs among {len(reps)} distinct texts")
    est = estimated_jaccard(sigs, pairs)
    if verify == "estimate":
        ok = est >= threshold
        stats[f"{tag}exact_checked"] = 0
    else:
        m = margin(threshold, sigs.shape[1])
        ok = est >= threshold + m
        grey = np.flatnonzero((est >= threshold - m) & ~ok)
        # a grey pair already joined through clear pairs cannot change the clusters
        label = components(len(sigs), pairs[ok])
        grey = grey[label[pairs[grey, 0]] != label[pairs[grey, 1]]]
        stats[f"{tag}exact_checked"] = len(grey)
        if len(grey):
            local = _sorted_unique(pairs[grey].ravel())
            flat, bounds = shingle_sets(hasher, [texts[i] for i in reps[local].tolist()])
            sims = set_jaccard(flat, bounds, np.searchsorted(local, pairs[grey]))
            ok[grey] = sims >= threshold
    edges = reps[pairs[ok]]
    stats[f"{tag}verified"] = len(edges)
    clock.lap(f"{tag}verify", f"{len(edges)} near-duplicate pairs")
    return edges


def dedup_texts(texts: Sequence[str] | Sequence[Sequence[str]], threshold: float = THRESHOLD,
                *, scores: Sequence[float] | np.ndarray | None = None,
                num_perm: int = NUM_PERM, ngram: int = NGRAM, bands: int | None = None,
                rows: int | None = None, verify: str = "exact", workers: int = 2,
                names: Sequence[str] | None = None,
                progress: Callable[[str], None] | None = None) -> Dedup:
    """Deduplicate n texts; ``texts`` may also be several equal-length columns (a list of
    lists), linked by either (``names`` label their stages and counts in the stats).
    ``scores``: keep the best-scoring row of each cluster (ties: the first) instead of the
    first."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1] (got {threshold!r})")
    if verify not in VERIFY:
        raise ValueError(f"verify must be one of {', '.join(VERIFY)} (got {verify!r})")
    texts = list(texts)
    columns = [list(c) for c in texts] if texts and not isinstance(texts[0], str) else [texts]
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise ValueError("all text columns must have the same length")
    if bands is None or rows is None:
        bands, rows = lsh_params(threshold, num_perm)
    if bands * rows > num_perm:
        raise ValueError(f"bands * rows ({bands} * {rows}) exceeds num_perm ({num_perm})")
    clock = _Clock(progress)
    hasher = MinHasher(num_perm=num_perm, ngram=ngram, workers=workers, hash_bits=HASH_BITS)
    stats: dict[str, Any] = {"rows": n, "num_perm": num_perm, "bands": bands,
                             "rows_per_band": rows, "ngram": ngram, "threshold": threshold,
                             "verify": verify}
    exact_edges, near_edges = [], []
    idx = np.arange(n, dtype=np.int64)
    for c, col in enumerate(columns):
        tag = "" if len(columns) == 1 else f"{names[c] if names else c}."
        sigs, keys = hasher.sketch(col)
        clock.lap(f"{tag}sketch", f"{n} texts")
        first = exact_first(keys)
        exact_edges.append(np.stack([first, idx], axis=1)[first != idx])
        reps = np.flatnonzero(first == idx)
        stats[f"{tag}distinct"] = len(reps)
        clock.lap(f"{tag}exact", f"{n - len(reps)} exact duplicates")
        near_edges.append(_near_edges(hasher, col, sigs, reps, threshold, bands, rows,
                                      verify, clock, stats, tag))
        del sigs, keys
    exact = np.concatenate(exact_edges)
    if len(columns) == 1:
        exact_groups = int(stats["distinct"])
    else:
        exact_groups = int(np.count_nonzero(components(n, exact) == idx))
    label = components(n, np.concatenate([exact] + near_edges))
    clock.lap("cluster")
    if scores is None:
        kept = np.flatnonzero(label == idx)
    else:
        score = np.asarray(scores, dtype=np.float64)
        if score.shape != (n,):
            raise ValueError(f"scores must have one value per text ({n})")
        score = np.where(np.isnan(score), -np.inf, score)
        order = np.lexsort((idx, -score, label))
        head = np.ones(n, dtype=bool)
        head[1:] = label[order][1:] != label[order][:-1]
        kept = np.sort(order[head])
    clock.lap("select", f"{len(kept)} kept")
    stats.update(exact_duplicates=n - exact_groups, near_duplicates=exact_groups - len(kept),
                 kept=len(kept))
    return Dedup(label=label, kept=kept, exact_groups=exact_groups, stats=stats,
                 seconds=clock.seconds)


# -- rows ------------------------------------------------------------------------------------
def row_score(row: dict[str, Any], path: str) -> float:
    """A row's score at a dotted path (``score``, ``fitness.novelty``); missing: -inf.
    JSON strings met on the way (nested columns read back from Parquet) are decoded."""
    value: Any = row
    for part in path.split("."):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return -math.inf
        if not isinstance(value, dict) or part not in value:
            return -math.inf
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return -math.inf
    return float(value)


def row_texts(rows: Sequence[dict[str, Any]], field: str) -> list[list[str]]:
    """The text columns of ``field`` (both: instruction and solution); ValueError on a row
    without one."""
    names = FIELD_COLUMNS[field]
    out = []
    for name in names:
        col = []
        for i, row in enumerate(rows):
            value = row.get(name) if isinstance(row, dict) else None
            if value is None:
                raise ValueError(f"row {i} (id {_row_id(row, i)!r}) has no {name!r}")
            if not isinstance(value, str):
                raise ValueError(f"row {i} (id {_row_id(row, i)!r}): {name!r} is not text")
            col.append(value)
        out.append(col)
    return out


def _row_id(row: Any, i: int) -> Any:
    return row.get("id", i) if isinstance(row, dict) else i


def dedup_rows(rows: Sequence[dict[str, Any]], threshold: float = THRESHOLD,
               field: str = "instruction", keep: str = "first", *, score: str = "score",
               verify: str = "exact", num_perm: int = NUM_PERM,
               max_clusters: int = MAX_CLUSTERS, max_members: int = MAX_MEMBERS,
               progress: Callable[[str], None] | None = None,
               ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(kept rows in their order, report). ``keep="score"`` keeps each cluster's row with
    the highest ``score`` (a dotted path into the row; missing counts as lowest)."""
    kept, report, _ = run_dedup(rows, threshold, field, keep, score=score, verify=verify,
                                num_perm=num_perm, max_clusters=max_clusters,
                                max_members=max_members, progress=progress)
    return kept, report


def run_dedup(rows: Sequence[dict[str, Any]], threshold: float = THRESHOLD,
              field: str = "instruction", keep: str = "first", *, score: str = "score",
              verify: str = "exact", num_perm: int = NUM_PERM,
              max_clusters: int = MAX_CLUSTERS, max_members: int = MAX_MEMBERS,
              progress: Callable[[str], None] | None = None,
              ) -> tuple[list[dict[str, Any]], dict[str, Any], Dedup]:
    """:func:`dedup_rows`, also returning the :class:`Dedup` (the per-row cluster labels)."""
    if field not in FIELDS:
        raise ValueError(f"field must be one of {', '.join(FIELDS)} (got {field!r})")
    if keep not in KEEPS:
        raise ValueError(f"keep must be one of {', '.join(KEEPS)} (got {keep!r})")
    rows = list(rows)
    columns = row_texts(rows, field)
    scores = [row_score(r, score) for r in rows] if keep == "score" else None
    result = dedup_texts(columns, threshold, scores=scores, num_perm=num_perm, verify=verify,
                         names=FIELD_COLUMNS[field], progress=progress)
    t0 = time.perf_counter()
    report = build_report(result, [_row_id(r, i) for i, r in enumerate(rows)],
                          field=field, keep=keep, score=score if keep == "score" else None,
                          max_clusters=max_clusters, max_members=max_members)
    kept = [rows[i] for i in result.kept.tolist()]
    seconds = report["seconds"]
    seconds["report"] = round(time.perf_counter() - t0, 4)
    seconds["total"] = round(sum(v for k, v in seconds.items() if k != "total"), 4)
    return kept, report, result


def build_report(result: Dedup, ids: Sequence[Any], *, field: str, keep: str,
                 score: str | None, max_clusters: int = MAX_CLUSTERS,
                 max_members: int = MAX_MEMBERS) -> dict[str, Any]:
    """The JSON-able report: counts, parameters, seconds per stage, the largest clusters."""
    n = len(result.label)
    stats = dict(result.stats)
    kept_flag = np.zeros(n, dtype=bool)
    kept_flag[result.kept] = True
    keeper = np.empty(n, dtype=np.int64)  # per cluster label, the kept row
    keeper[result.label[result.kept]] = result.kept
    order = np.lexsort((np.arange(n), ~kept_flag, result.label))  # by label, kept first
    lab = result.label[order]
    new = np.ones(n, dtype=bool)
    new[1:] = lab[1:] != lab[:-1]
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, n))
    dup = np.flatnonzero(sizes > 1)
    listed = dup[np.lexsort((starts[dup], -sizes[dup]))][:max_clusters]
    clusters = []
    for c in listed.tolist():
        members = order[starts[c]:starts[c] + min(sizes[c], max_members)]
        clusters.append({"kept": ids[int(keeper[lab[starts[c]]])], "size": int(sizes[c]),
                         "members": [ids[int(i)] for i in members]})
    return {
        "field": field,
        "keep": keep,
        "score": score,
        "threshold": stats.pop("threshold"),
        "params": {k: stats.pop(k) for k in ("num_perm", "bands", "rows_per_band", "ngram",
                                             "verify")},
        "counts": {"rows": stats.pop("rows"), "exact": stats.pop("exact_duplicates"),
                   "near": stats.pop("near_duplicates"), "kept": stats.pop("kept"),
                   "clusters": len(dup)},
        "pairs": stats,
        "clusters": clusters,
        "clusters_listed": len(clusters),
        "clusters_truncated": bool(len(dup) > len(clusters)),
        "max_members": max_members,
        "seconds": dict(result.seconds, total=round(sum(result.seconds.values()), 4)),
    }


# -- incremental -----------------------------------------------------------------------------
class NearDuplicateIndex:
    """Texts indexed one by one (or in batches); ``query`` finds the most similar indexed
    text at or above the threshold.

    Same definitions as :func:`dedup_rows`: tokens, 3-shingles, 64-perm signatures,
    16 x 4 LSH bands at 0.7. ``exact=True`` (default) keeps each text's shingle hash set
    and reports the exact Jaccard of the candidates (about 0.5 KB per text); ``False``
    reports the signature estimate and keeps only the signature (64 x 4 bytes).
    An id added twice keeps its first text (``add`` returns False).
    """

    def __init__(self, threshold: float = THRESHOLD, num_perm: int = NUM_PERM,
                 ngram: int = NGRAM, exact: bool = True, bands: int | None = None,
                 rows: int | None = None):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1] (got {threshold!r})")
        self.threshold = threshold
        self.exact = exact
        if bands is None or rows is None:
            bands, rows = lsh_params(threshold, num_perm)
        self.bands, self.rows = bands, rows
        self.hasher = MinHasher(num_perm=num_perm, ngram=ngram, workers=1,
                                hash_bits=HASH_BITS)
        self.ids: list[Any] = []
        self._known: set = set()
        self._sigs = np.empty((0, num_perm), dtype=np.uint32)
        self._n = 0
        self._sets: list[np.ndarray] = []
        self._tables: list[dict[int, int | list[int]]] = [{} for _ in range(bands)]

    def __len__(self) -> int:
        return self._n

    def __contains__(self, id: Any) -> bool:
        return id in self._known

    def add(self, id: Any, text: str) -> bool:
        return self.add_many([id], [text]) == 1

    def add_many(self, ids: Iterable[Any], texts: Iterable[str]) -> int:
        """Index the texts; returns how many were new ids."""
        ids, texts = list(ids), list(texts)
        if len(ids) != len(texts):
            raise ValueError("ids and texts must have the same length")
        fresh, seen = [], set()
        for k, i in enumerate(ids):
            if i not in self._known and i not in seen:
                seen.add(i)
                fresh.append(k)
        if not fresh:
            return 0
        texts = [texts[k] for k in fresh]
        sigs = self.hasher.signatures(texts)
        keys = self._keys(sigs)
        start = self._n
        self._grow(start + len(texts))
        self._sigs[start:start + len(texts)] = sigs
        rows = range(start, start + len(texts))
        for j, table in enumerate(self._tables):  # a bucket: one row id, or a list of them
            get = table.get
            for key, i in zip(keys[:, j].tolist(), rows):
                had = get(key)
                if had is None:
                    table[key] = i
                elif type(had) is int:
                    table[key] = [had, i]
                else:
                    had.append(i)
        if self.exact:
            flat, bounds = shingle_sets(self.hasher, texts)
            self._sets.extend(flat[bounds[k]:bounds[k + 1]] for k in range(len(texts)))
        for k in fresh:
            self.ids.append(ids[k])
            self._known.add(ids[k])
        self._n += len(texts)
        return len(fresh)

    def query(self, text: str) -> tuple[Any, float] | None:
        return self.query_many([text])[0]

    def query_many(self, texts: Iterable[str]) -> list[tuple[Any, float] | None]:
        """Per text, (id, similarity) of the most similar indexed text with similarity >=
        the threshold (ties: the earliest indexed), or None. Texts of the batch are not
        compared with each other."""
        texts = list(texts)
        if not texts:
            return []
        if not self._n:
            return [None] * len(texts)
        sigs = self.hasher.signatures(texts)
        keys = self._keys(sigs)
        sets = None
        out: list[tuple[Any, float] | None] = []
        m = margin(self.threshold, sigs.shape[1])
        for k, row in enumerate(keys.tolist()):
            found: set[int] = set()
            for table, key in zip(self._tables, row):
                hit = table.get(key)
                if hit is None:
                    continue
                if type(hit) is int:
                    found.add(hit)
                else:
                    found.update(hit)
            if not found:
                out.append(None)
                continue
            cand = np.fromiter(sorted(found), dtype=np.int64, count=len(found))
            est = np.count_nonzero(self._sigs[cand] == sigs[k], axis=1) / sigs.shape[1]
            if self.exact:
                cand = cand[est >= self.threshold - m]
                if not len(cand):
                    out.append(None)
                    continue
                if sets is None:
                    flat, bounds = shingle_sets(self.hasher, texts)
                    sets = [flat[bounds[i]:bounds[i + 1]] for i in range(len(texts))]
                sim = np.array([_set_jaccard(sets[k], self._sets[c]) for c in cand.tolist()])
            else:
                sim = est
            best = int(np.argmax(sim))
            if sim[best] >= self.threshold:
                out.append((self.ids[int(cand[best])], round(float(sim[best]), 4)))
            else:
                out.append(None)
        return out

    def _keys(self, sigs: np.ndarray) -> np.ndarray:
        return band_keys_t(sigs, self.bands, self.rows).T

    def _grow(self, need: int) -> None:
        if need > len(self._sigs):
            bigger = np.empty((max(need, 2 * len(self._sigs), 64), self._sigs.shape[1]),
                              dtype=np.uint32)
            bigger[:self._n] = self._sigs[:self._n]
            self._sigs = bigger


def _set_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if not len(a) and not len(b):
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)
