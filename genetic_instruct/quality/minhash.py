"""MinHash signatures over word shingles, and LSH banding; batch-first, numpy-vectorized.

    hasher = MinHasher(num_perm=128, ngram=3)
    sigs = hasher.signatures(texts)              # (len(texts), 128) uint32
    jaccard_estimate(sigs[0], sigs[1])           # share of equal slots ~ Jaccard
    pairs = candidate_pairs(sigs, bands=32)      # (m, 2) int64 rows i < j

Text is lowercased and cut into ``\\w+`` tokens; a text's shingles are its runs of
``ngram`` consecutive tokens (a text shorter than that is one shingle of all its tokens).
Everything after joining a chunk of texts is numpy: tokens are found as runs of word
bytes, a token's 64-bit hash folds its bytes 8 at a time, a shingle's hash combines its
tokens' (multiply-add over the window, then the splitmix64 finalizer). Python never
touches a single token: per-token dict look-ups or blake2b calls (we measured both) cost
more than all the rest together.

Permutation i maps a shingle hash x to ``((a_i * x + b_i) mod 2**64) >> 32`` with a_i odd:
the multiply-add-shift universal family (Dietzfelbinger). We measured the textbook
``(a*x + b) mod p`` (p = 2**61 - 1, on 32-bit x so no product overflows) at about a third
of the speed in numpy, for the same accuracy on already well-mixed shingle hashes. The
a_i, b_i come from a fixed seed, so signatures are reproducible across runs and machines.

An empty text (no tokens) has the all-ones signature: two empty texts look identical.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

TOKEN = re.compile(r"\w+")
SEED = 0x5EED
EMPTY = np.uint32(0xFFFFFFFF)
_MUL = np.uint64(0x9E3779B97F4A7C15)  # window combine (golden ratio, odd)
_M1 = np.uint64(0xBF58476D1CE4E5B9)   # splitmix64 finalizer constants
_M2 = np.uint64(0x94D049BB133111EB)
CHUNK_TEXTS = 4096   # texts per work unit (one thread's tokenize + hash)
CHUNK_SHINGLES = 8192  # shingles per permutation block (keeps the block in cache)


def tokens(text: str) -> list[str]:
    """Lowercase ``\\w+`` tokens."""
    return TOKEN.findall(text.lower())


def shingles(text: str, ngram: int = 3) -> set[str]:
    """The text's word shingles as strings (for exact Jaccard on small inputs)."""
    toks = tokens(text)
    if not toks:
        return set()
    if len(toks) < ngram:
        return {" ".join(toks)}
    return {" ".join(toks[i:i + ngram]) for i in range(len(toks) - ngram + 1)}


def jaccard(a: set, b: set) -> float:
    """Exact Jaccard similarity of two sets (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, in place: every output bit depends on every input bit."""
    h ^= h >> np.uint64(30)
    h *= _M1
    h ^= h >> np.uint64(27)
    h *= _M2
    h ^= h >> np.uint64(31)
    return h


def _masked(words: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The first ``min(size, 8)`` bytes of each little-endian word, the rest zeroed."""
    keep = np.minimum(size, 8).astype(np.uint64) * np.uint64(8)
    mask = np.where(keep >= 64, np.uint64(0xFFFFFFFFFFFFFFFF),
                    (np.uint64(1) << (keep & np.uint64(63))) - np.uint64(1))
    return words & mask


def _prepare(texts: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """The texts lowercased and joined by newlines, as UTF-8; each text's byte offset.

    A non-ASCII text is first reduced to its ``\\w+`` tokens joined by spaces, so that in
    the joined bytes a word is exactly a run of [a-z0-9_] and non-ASCII bytes.
    """
    joined = "\n".join(texts)
    if joined.isascii():
        sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        data = joined.lower().encode()
    else:
        parts = [t.lower() if t.isascii() else " ".join(tokens(t)) for t in texts]
        encoded = [t.encode() for t in parts]
        sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        data = b"\n".join(encoded)
    offsets = np.cumsum(sizes + 1) - (sizes + 1)
    return data, offsets


class MinHasher:
    """Computes MinHash signatures (uint32) for many texts at once.

    ``workers`` threads share the chunks (numpy releases the GIL); the output does not
    depend on their number.
    """

    def __init__(self, num_perm: int = 128, ngram: int = 3, seed: int = SEED,
                 workers: int = 2):
        if num_perm < 1 or ngram < 1:
            raise ValueError("num_perm and ngram must be >= 1")
        self.num_perm = num_perm
        self.ngram = ngram
        self.workers = max(1, workers)
        rng = np.random.default_rng(seed)
        self.a = (rng.integers(0, 2**64, num_perm, dtype=np.uint64) | np.uint64(1))[:, None]
        self.b = rng.integers(0, 2**64, num_perm, dtype=np.uint64)[:, None]

    def signature(self, text: str) -> np.ndarray:
        return self.signatures([text])[0]

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), num_perm) uint32 matrix, one row per text."""
        texts = list(texts)
        chunks = [texts[i:i + CHUNK_TEXTS] for i in range(0, len(texts), CHUNK_TEXTS)]
        if not chunks:
            return np.empty((0, self.num_perm), dtype=np.uint32)
        if self.workers == 1 or len(chunks) == 1:
            parts = [self._chunk(c) for c in chunks]
        else:
            with ThreadPoolExecutor(self.workers) as pool:
                parts = list(pool.map(self._chunk, chunks))
        return np.concatenate(parts)

    # -- internals -------------------------------------------------------------------------
    def _chunk(self, texts: Sequence[str]) -> np.ndarray:
        hashes, counts = self.shingle_hashes(texts)
        out = np.full((len(texts), self.num_perm), EMPTY, dtype=np.uint32)
        nonempty = np.flatnonzero(counts)
        if len(nonempty):
            out[nonempty] = self._min_hash(hashes, counts[nonempty])
        return out

    def token_hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(64-bit hash of every token, text after text; tokens per text).

        A token is read 8 bytes at a time (little-endian words, the bytes past its end
        masked off); its hash folds the words with multiply-add and ends with the
        splitmix64 finalizer, so tokens of up to 8 bytes never collide.
        """
        data, offsets = _prepare(texts)
        b = np.zeros(len(data) + 16, dtype=np.uint8)  # a non-word byte before, 15 after
        b[1:len(data) + 1] = np.frombuffer(data, dtype=np.uint8)
        word = b >= 0x80  # after _prepare, a word byte is [a-z0-9_] or non-ASCII
        word |= (b - np.uint8(ord("a"))) < 26
        word |= (b - np.uint8(ord("0"))) < 10
        word |= b == ord("_")
        edges = np.flatnonzero(word[1:] != word[:-1]) + 1  # start, end, start, end, ...
        starts, ends = edges[0::2], edges[1::2]
        first_token = np.searchsorted(starts, offsets + 1)  # + 1: the leading pad byte
        lens = np.diff(np.append(first_token, len(starts)))
        if not len(starts):
            return np.empty(0, np.uint64), lens
        words = np.ndarray((len(b) - 7,), dtype="<u8", buffer=b, strides=(1,))
        size = ends - starts
        h = _masked(words[starts], size)
        sel, at, rest = np.arange(len(starts)), starts, size
        while (rest > 8).any():  # the next 8 bytes of the longer tokens
            more = rest > 8
            sel, at, rest = sel[more], at[more] + 8, rest[more] - 8
            h[sel] = h[sel] * _MUL + _masked(words[at], rest)
        return _mix(h), lens

    def shingle_hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(64-bit hash of every shingle, text after text; shingles per text)."""
        tok, lens = self.token_hashes(texts)
        k, n = self.ngram, len(tok)
        counts = np.where(lens >= k, lens - k + 1, np.minimum(lens, 1))
        padded = np.concatenate([tok, np.zeros(k - 1, dtype=np.uint64)])
        h = padded[:n].copy()  # h[i]: the window of k tokens from token i
        for j in range(1, k):
            h *= _MUL
            h += padded[j:n + j]
        keep = np.ones(n, dtype=bool)
        first = np.cumsum(lens) - lens
        ends = first + lens
        for j in range(1, k):  # windows from a text's last k - 1 tokens cross its end
            keep[ends[lens >= j] - j] = False
        short = np.flatnonzero((lens > 0) & (lens < k))  # one shingle of all their tokens
        if len(short):
            at, size = first[short], lens[short]
            hs = tok[at].copy()
            for j in range(1, k - 1):
                more = size > j
                hs[more] = hs[more] * _MUL + tok[at[more] + j]
            h[at] = hs
            keep[at] = True
        out = h[keep]
        return _mix(out), counts

    def _min_hash(self, hashes: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Per text (counts > 0, consecutive in ``hashes``), the min of each permutation."""
        bounds = np.concatenate(([0], np.cumsum(counts)))
        out = np.empty((len(counts), self.num_perm), dtype=np.uint32)
        buf = np.empty(self.num_perm * max(CHUNK_SHINGLES, int(counts.max())), dtype=np.uint64)
        t = 0
        while t < len(counts):
            # whole texts per block, at least one
            stop = int(np.searchsorted(bounds, bounds[t] + CHUNK_SHINGLES, "right")) - 1
            stop = max(t + 1, stop)
            lo, hi = bounds[t], bounds[stop]
            block = buf[:self.num_perm * (hi - lo)].reshape(self.num_perm, hi - lo)
            np.multiply(self.a, hashes[lo:hi][None, :], out=block)
            block += self.b
            block >>= np.uint64(32)
            out[t:stop] = np.minimum.reduceat(block, bounds[t:stop] - lo, axis=1).T
            t = stop
        return out


def jaccard_estimate(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """The share of equal slots: a float for two signatures, an array when one is a matrix."""
    same = np.mean(np.asarray(a) == np.asarray(b), axis=-1)
    return float(same) if np.ndim(same) == 0 else same


# -- LSH banding ---------------------------------------------------------------------------
def lsh_threshold(bands: int, rows: int) -> float:
    """The Jaccard at which a pair becomes a candidate with probability ~1/2: (1/b)^(1/r)."""
    return (1.0 / bands) ** (1.0 / rows)


def band_keys(sigs: np.ndarray, bands: int) -> np.ndarray:
    """A (n, bands) uint64 matrix: one hash per band of ``rows = num_perm // bands`` slots.

    Two texts share a bucket in band j when their keys in column j are equal (a 64-bit
    hash of the band: false collisions are negligible).
    """
    n, num_perm = sigs.shape
    if bands < 1 or num_perm % bands:
        raise ValueError(f"bands ({bands}) must divide num_perm ({num_perm})")
    rows = num_perm // bands
    parts = sigs.reshape(n, bands, rows).astype(np.uint64)
    key = np.zeros((n, bands), dtype=np.uint64)
    for r in range(rows):
        key = _mix(key * _MUL + parts[:, :, r] + np.uint64(r + 1))
    return key


def _buckets(column: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by key, and for each row its bucket's start and size in that order."""
    order = np.argsort(column, kind="stable")
    keys = column[order]
    new = np.ones(len(keys), dtype=bool)
    new[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(keys)))
    group = np.cumsum(new) - 1
    return order, starts[group], sizes[group]


def bucket_edges(sigs: np.ndarray, bands: int) -> np.ndarray:
    """(m, 2) int64 edges linking each text to the first text of every bucket it shares.

    Linear in n: for clustering near-duplicates (connected components) at scale, where
    all pairs of a large bucket would be too many.
    """
    keys = band_keys(sigs, bands)
    out = []
    for j in range(bands):
        order, start, _ = _buckets(keys[:, j])
        head = order[start]
        keep = head != order
        out.append(np.stack([head[keep], order[keep]], axis=1))
    return _unique_pairs(np.concatenate(out) if out else np.empty((0, 2), np.int64))


def candidate_pairs(sigs: np.ndarray, bands: int) -> np.ndarray:
    """(m, 2) int64 rows (i, j), i < j: every pair sharing a bucket in some band, once."""
    keys = band_keys(sigs, bands)
    out = []
    for j in range(bands):
        order, start, size = _buckets(keys[:, j])
        rank = np.arange(len(order)) - start
        later = size - rank - 1  # members after this one in its bucket
        total = int(later.sum())
        if not total:
            continue
        pos = np.repeat(np.arange(len(order)), later)
        step = np.arange(total) - np.repeat(np.cumsum(later) - later, later) + 1
        out.append(np.stack([order[pos], order[pos + step]], axis=1))
    return _unique_pairs(np.concatenate(out) if out else np.empty((0, 2), np.int64))


def _unique_pairs(pairs: np.ndarray) -> np.ndarray:
    if not len(pairs):
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.sort(pairs.astype(np.int64), axis=1)
    width = np.int64(pairs[:, 1].max() + 1)
    code = np.unique(pairs[:, 0] * width + pairs[:, 1])
    return np.stack([code // width, code % width], axis=1)
