"""Approximate nearest-neighbour retrieval of an embedding model's top-k with faiss.

Maximum inner product search: top-k_i of <p_u, q_i> over the item vectors q_i.
    flat   exact scan (the reference)
    hnsw   graph search (Malkov & Yashunin, TPAMI 2018): ``M`` links per node, ``ef_search`` beam
    ivf    inverted file: k-means into ``nlist`` cells, scan the ``nprobe`` nearest cells
    ivfpq  IVF with product-quantised residuals (Jegou et al., TPAMI 2011): ``pq_m`` sub-vectors,
           ``pq_bits`` bits each (approximate scores as well as approximate neighbours)
Seen items are removed after the search, so the index is asked for k + (largest seen count in the
batch) candidates; rows it cannot fill (an IVF probe with few items) are completed exactly.
Quality is ``overlap_at_k``: the fraction of the exact top-k that the index returns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models.base import mask_rows, topk
from ..ties import best_first
from .base import Wrapper, has_vectors

BACKENDS = ("flat", "hnsw", "ivf", "ivfpq")


def overlap_at_k(approx_items: np.ndarray, exact_items: np.ndarray, k: int | None = None) -> float:
    """Mean over rows of |approx top-k  n  exact top-k| / k (order ignored; -1 padding never counts)."""
    a, e = np.atleast_2d(approx_items), np.atleast_2d(exact_items)
    if a.shape[0] != e.shape[0]:
        raise ValueError(f"row counts differ: {a.shape[0]} vs {e.shape[0]}")
    k = e.shape[1] if k is None else int(k)
    if not 0 < k <= min(a.shape[1], e.shape[1]):
        raise ValueError(f"k={k} must be in 1..{min(a.shape[1], e.shape[1])}")
    a, e = a[:, :k], e[:, :k]
    hits = (a[:, :, None] == e[:, None, :]) & (a[:, :, None] >= 0)
    return float(hits.any(2).sum(1).mean() / k)


def default_nlist(n_items: int) -> int:
    """About 4 sqrt(n) cells, with >= 39 training points per cell (faiss's k-means floor)."""
    return int(max(1, min(round(4 * np.sqrt(n_items)), n_items // 39)))


def build_index(vectors: np.ndarray, backend: str = "hnsw", M: int = 32, ef_construction: int = 80,
                nlist: int | None = None, pq_m: int | None = None, pq_bits: int = 8, seed: int = 0):
    """A faiss inner-product index over ``vectors`` [n, d] (float32), trained and filled."""
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    ip = faiss.METRIC_INNER_PRODUCT
    if backend == "flat":
        index = faiss.IndexFlatIP(d)
    elif backend == "hnsw":
        index = faiss.IndexHNSWFlat(d, int(M), ip)
        index.hnsw.efConstruction = int(ef_construction)
    elif backend in ("ivf", "ivfpq"):
        nlist = default_nlist(n) if nlist is None else int(nlist)
        if not 1 <= nlist <= n:
            raise ValueError(f"nlist must be in 1..{n} (the number of items), got {nlist}")
        quantizer = faiss.IndexFlatIP(d)
        if backend == "ivf":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, ip)
        else:
            pq_m = max(1, d // 4) if pq_m is None else int(pq_m)
            if d % pq_m:
                raise ValueError(f"pq_m={pq_m} must divide the embedding size {d}")
            bits = int(min(pq_bits, max(1, np.floor(np.log2(max(n, 2))))))  # <= n centroids per sub-space
            index = faiss.IndexIVFPQ(quantizer, d, nlist, pq_m, bits, ip)
        index.cp.seed = seed
        if backend == "ivfpq":
            index.pq.cp.seed = seed
        index.train(x)
    else:
        raise ValueError(f"unknown ANN backend {backend!r}; choose one of {BACKENDS}")
    index.add(x)
    if backend in ("ivf", "ivfpq"):
        index.make_direct_map()       # reconstruct() for score()
    return index


@dataclass(eq=False)
class ANNIndex(Wrapper):
    """Top-k from a faiss index over the wrapped model's item vectors (user vectors as queries).

    ``score`` gives the inner products the index ranks by (exact vectors for flat/hnsw/ivf,
    PQ-decoded vectors for ivfpq), so ``recommend`` agrees with it.
    """

    backend: str = "hnsw"
    M: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    nlist: int | None = None
    nprobe: int = 8
    pq_m: int | None = None
    pq_bits: int = 8
    seed: int = 0

    def _check_config(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown ANN backend {self.backend!r}; choose one of {BACKENDS}")
        for name in ("M", "ef_construction", "ef_search", "nprobe", "pq_bits"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

    def _build(self):
        if not has_vectors(self.model):
            raise TypeError(f"ANNIndex needs an embedding model (user_vectors/item_vectors); "
                            f"{type(self.model).__name__} has none")
        self.index_ = build_index(self.model.item_vectors(), self.backend, M=self.M,
                                  ef_construction=self.ef_construction, nlist=self.nlist,
                                  pq_m=self.pq_m, pq_bits=self.pq_bits, seed=self.seed)
        self._set_search_params()

    def _set_search_params(self):
        if self.backend == "hnsw":
            self.index_.hnsw.efSearch = int(self.ef_search)
        elif self.backend in ("ivf", "ivfpq"):
            self.index_.nprobe = int(min(self.nprobe, self.index_.nlist))

    def set_params(self, ef_search: int | None = None, nprobe: int | None = None) -> "ANNIndex":
        """Change the search-time knobs without rebuilding the index."""
        if ef_search is not None:
            self.ef_search = int(ef_search)
        if nprobe is not None:
            self.nprobe = int(nprobe)
        self._check_config()
        self._set_search_params()
        return self

    # ---- search ---------------------------------------------------------------------------
    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw faiss search: (items int64 [n, k], -1 where none; inner products float32 [n, k])."""
        self._check_fitted()
        scores, items = self.index_.search(np.ascontiguousarray(vectors, dtype=np.float32), int(k))
        return items.astype(np.int64), scores.astype(np.float32)

    def recommend(self, users, k: int = 10, filter_seen: bool = True, exclude=None):
        users = self._check_users(users)
        k = int(k)
        if not 0 < k <= self.n_items_:
            return super().recommend(users, k=k)          # raises the contract's messages
        q = self.model.user_vectors(users)                # [n, d]
        masks = [m for m in (self.seen_ if filter_seen else None, exclude) if m is not None]
        masks = [m.tocsr() for m in masks]
        extra = sum(int(np.diff(m[users].indptr).max(initial=0)) for m in masks)
        cand, cscore = self.search(q, min(self.n_items_, k + extra))
        drop = cand < 0
        rows = np.arange(len(users), dtype=np.int64)[:, None]
        for m in masks:                                    # candidate stored in the user's mask row?
            sub = m[users]
            masked = np.repeat(rows[:, 0], np.diff(sub.indptr)) * self.n_items_ + sub.indices
            drop |= np.isin(rows * self.n_items_ + cand, masked)
        cscore = np.where(drop, -np.inf, cscore)
        order = best_first(cscore, cand)[:, :k]                    # ties: lower item index
        items = np.take_along_axis(cand, order, 1)
        scores = np.take_along_axis(cscore, order, 1)
        # the index ran out, or a tie at the k-th score reaches the last candidate searched (the
        # index may have cut a tied group anywhere): finish those rows exactly
        last = np.where(np.isfinite(cscore), cscore, np.inf).min(1)        # lowest kept candidate
        boundary = (cand.shape[1] < self.n_items_) & (scores[:, -1] == last)
        short = np.flatnonzero(~np.isfinite(scores).all(1) | boundary)
        if len(short):
            s = self._score(users[short])
            for m in masks:
                mask_rows(s, m, users[short])
            items[short], scores[short] = topk(s, k)
        return items, scores

    def _item_matrix(self) -> np.ndarray:
        return self.index_.reconstruct_n(0, self.index_.ntotal)      # [n_items, d]

    def _score(self, users):
        return self.model.user_vectors(users) @ self._item_matrix().T

    def user_vectors(self, users=None):
        return self.model.user_vectors(users)

    def item_vectors(self):
        return self._item_matrix()

    def serving_bytes(self) -> int:
        """The index (serialised size) plus the wrapped model (it computes the query vectors)."""
        import faiss
        return int(faiss.serialize_index(self.index_).nbytes) + self.model.serving_bytes()

    # ---- persistence: the index is saved (HNSW builds are not bit-reproducible across threads)
    def _extra_state(self):
        import faiss
        return {"index_": faiss.serialize_index(self.index_)}

    def _restore(self, state):
        import faiss
        self.index_ = faiss.deserialize_index(np.asarray(state["index_"], dtype=np.uint8))
        self._set_search_params()
