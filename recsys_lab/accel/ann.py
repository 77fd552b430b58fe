"""Approximate nearest-neighbour retrieval of a model's top-k with faiss.

Embedding models (``EmbeddingModel``): maximum inner product search, top-k_i of <p_u, q_i> over
the item vectors q_i (cosine models: the item vectors are normalised first).
Multi-vector models (``MultiVectorModel``, e.g. TwoTower, MultiSegmentLateInteraction): ColBERT's
retrieval (Khattab & Zaharia, SIGIR 2020), each of the user's V vectors searches the index, the
candidates are merged, and the merged candidates are re-scored exactly with the model's
late-interaction operator on the indexed item vectors. For MaxSim, s(u, i) = max_k <v_k, q_i>,
a flat index makes this exact: an item missing from every vector's top-(k + masked) list has at
least k unmasked items scoring above it (ties at the boundary are finished exactly).
    flat   exact scan (the reference)
    hnsw   graph search (Malkov & Yashunin, TPAMI 2018): ``M`` links per node, ``ef_search`` beam
    ivf    inverted file: k-means into ``nlist`` cells, scan the ``nprobe`` nearest cells
    ivfpq  IVF with product-quantised residuals (Jegou et al., TPAMI 2011): ``pq_m`` sub-vectors,
           ``pq_bits`` bits each (approximate scores as well as approximate neighbours)
Seen items are removed after the search, so the index is asked for 2k + (largest seen count in
the batch) candidates; rows it cannot fill (an IVF probe with few items), or whose k-th kept item
is the last one searched (a tied group may continue past it), are completed exactly, in bounded
chunks of users, over the catalog decoded from the index once per call.
Norm-ranged search (``exact_head`` > 0, embedding models): the ``exact_head`` items of largest
norm are scored exactly on every request, and the index is searched only for a row the head
cannot certify. By Cauchy-Schwarz no other item scores above ||p_u|| max_{i outside head} ||q_i||,
so a row whose k-th kept head score exceeds that bound is exact without the index (the length
bound of LEMP, Teflioudi et al., SIGMOD 2015; norm ranges as in Yan et al., NeurIPS 2018). MF
item norms grow with popularity, so on a shop the few largest-norm items hold nearly every top-k.
Quality is ``overlap_at_k``: the fraction of the exact top-k that the index returns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models.arguments import check_params
from ..models.capabilities import EmbeddingModel, MultiVectorModel
from ..ties import best_first
from .base import Wrapper

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

    ``score`` gives the scores the index ranks by (the indexed item vectors: exact for
    flat/hnsw/ivf, PQ-decoded for ivfpq; a multi-vector model's operator on them), so
    ``recommend`` agrees with it.
    """

    backend: str = "hnsw"
    M: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    nlist: int | None = None
    nprobe: int = 8
    pq_m: int | None = None
    pq_bits: int = 8
    exact_head: int = 0
    seed: int = 0

    def _check_config(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown ANN backend {self.backend!r}; choose one of {BACKENDS}")
        for name in ("M", "ef_construction", "ef_search", "nprobe", "pq_bits"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.exact_head < 0:
            raise ValueError(f"exact_head must be >= 0 (0: off), got {self.exact_head!r}")

    def _check_model(self, model):
        if not (model.supports(EmbeddingModel) or model.supports(MultiVectorModel)):
            raise TypeError(f"ANNIndex needs an embedding model (EmbeddingModel) or a multi-vector model "
                            f"(MultiVectorModel); {type(model).__name__} is neither")

    def _multi(self) -> bool:
        return not self.model.supports(EmbeddingModel)

    def _build(self):
        items = np.asarray(self.model.item_vectors(), dtype=np.float32)
        if not self._multi() and self.model.vector_measure() == "cosine":
            items = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
        self.index_ = build_index(items, self.backend, M=self.M, ef_construction=self.ef_construction,
                                  nlist=self.nlist, pq_m=self.pq_m, pq_bits=self.pq_bits, seed=self.seed)
        self._set_search_params()
        self._set_head()

    def _set_head(self):
        """The norm-ranged head: the ``exact_head`` indexed vectors of largest norm (ties: lower
        item index), and the largest norm outside it (0 when the head holds every item)."""
        self.head_items_ = self.head_vectors_ = None
        self.tail_searches_ = 0                     # rows the head could not certify (searched)
        if not self.exact_head:
            return
        if self._multi():
            raise ValueError("exact_head (norm-ranged search) needs an embedding model; "
                             f"{type(self.model).__name__} is multi-vector")
        items = self._item_matrix()                                         # [n_items, d]
        norm = np.linalg.norm(items, axis=1)
        order = best_first(norm[None, :], np.arange(len(norm))[None, :])[0]
        self.head_items_ = np.sort(order[:self.exact_head])                 # [H]
        self.head_vectors_ = np.ascontiguousarray(items[self.head_items_])  # [H, d]
        self.tail_norm_ = float(norm[order[self.exact_head]]) if self.exact_head < len(norm) else 0.0
        self.is_head_ = np.zeros(len(norm), dtype=bool)
        self.is_head_[self.head_items_] = True

    def _set_search_params(self):
        if self.backend == "hnsw":
            self.index_.hnsw.efSearch = int(self.ef_search)
        elif self.backend in ("ivf", "ivfpq"):
            self.index_.nprobe = int(min(self.nprobe, self.index_.nlist))

    def set_params(self, ef_search: int | None = None, nprobe: int | None = None) -> "ANNIndex":
        """Change the search-time knobs without rebuilding the index."""
        if ef_search is not None:
            self.ef_search = ef_search
        if nprobe is not None:
            self.nprobe = nprobe
        check_params(self)
        self._check_config()
        self._set_search_params()
        return self

    # ---- search ---------------------------------------------------------------------------
    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw faiss search: (items int64 [n, k], -1 where none; inner products float32 [n, k])."""
        self._check_fitted()
        scores, items = self.index_.search(np.ascontiguousarray(vectors, dtype=np.float32), int(k))
        return items.astype(np.int64), scores.astype(np.float32)

    def _recommend(self, users, k, filter_seen, exclude, items):
        if items is not None:                              # candidates given: score them exactly
            return super()._recommend(users, k, filter_seen, exclude, items)
        masks = [m for m in (self.seen_ if filter_seen else None, exclude) if m is not None]
        keys, extra = self._mask_keys(users, masks)        # the batch's mask rows, read once
        # k unmasked items survive in every list; k more, so that the k-th kept item seldom ends
        # the searched list (where an exact finish would be needed)
        depth = min(self.n_items_, 2 * k + extra)
        multi = self._multi()
        if multi:
            cand, cscore, reach = self._multi_candidates(users, depth)
        elif self.head_items_ is not None:
            cand, cscore, hidden = self._head_candidates(users, depth, k, keys)
        else:
            cand, cscore = self.search(self.model.user_vectors(users), depth)
        if self.head_items_ is None:
            hidden = self._masked(cand, keys)
        drop = cand < 0
        low = np.where(drop, np.inf, cscore).min(1)          # lowest score the search returned
        cscore = np.where(drop | hidden, -np.inf, cscore)
        order = best_first(cscore, cand)[:, :k]                    # ties: lower item index
        top = np.take_along_axis(cand, order, 1)
        scores = np.take_along_axis(cscore, order, 1)
        # the index ran out, or the k-th score reaches the end of what was searched (a tied group
        # may be cut there; multi-vector: within float noise of the operator): finish those exactly
        if multi:
            boundary = reach >= scores[:, -1] - 1e-4 * np.maximum(1.0, np.abs(scores[:, -1]))
        else:
            boundary = scores[:, -1] <= low                # the k-th kept item ends the searched list
        boundary &= depth < self.n_items_
        short = np.flatnonzero(~np.isfinite(scores).all(1) | boundary)
        if len(short):                                     # exact, in the base's bounded chunks
            top[short], scores[short] = self._exact(users[short], k, filter_seen, exclude)
        return top, scores

    def _mask_keys(self, users, masks) -> tuple[np.ndarray, int]:
        """The (batch row r, item i) pairs the masks store for ``users``, as sorted int64 keys
        ``r * n_items + i``, and the largest number of them in one row (summed over the masks).
        Read from each CSR's indptr/indices directly: no sparse sub-matrix is built per request."""
        keys, extra = [], 0
        for m in masks:
            lo = m.indptr[users].astype(np.int64)
            n = m.indptr[users + 1] - lo                            # [n_batch] entries per row
            start = np.repeat(lo - (np.cumsum(n) - n), n)           # row r's entries, flattened
            pos = start + np.arange(int(n.sum()), dtype=np.int64)
            keys.append(np.repeat(np.arange(len(users), dtype=np.int64), n) * self.n_items_ + m.indices[pos])
            extra += int(n.max(initial=0))
        return (np.unique(np.concatenate(keys)) if keys else np.zeros(0, dtype=np.int64)), extra

    def _masked(self, cand, keys) -> np.ndarray:
        """[n, C] bool: candidate ``cand[r, j]`` (>= 0) is masked for batch row r (``_mask_keys``)."""
        if not len(keys):
            return np.zeros(cand.shape, dtype=bool)
        q = np.arange(len(cand), dtype=np.int64)[:, None] * self.n_items_ + cand      # [n, C]
        return (keys[np.minimum(np.searchsorted(keys, q), len(keys) - 1)] == q) & (cand >= 0)

    def _head_candidates(self, users, depth, k, keys):
        """Norm-ranged candidates [n, 2 depth], their scores and which are masked: the head's
        top-``depth`` by exact score, then, for the rows whose k-th kept head score does not exceed
        the Cauchy-Schwarz bound, the index's top-``depth`` outside the head (-1 / -inf elsewhere)."""
        u = np.asarray(self.model.user_vectors(users), dtype=np.float32)           # [n, d]
        hs = u @ self.head_vectors_.T                                              # [n, H]
        dh = min(depth, hs.shape[1])
        part = np.argpartition(-hs, dh - 1, axis=1)[:, :dh] if dh < hs.shape[1] else \
            np.broadcast_to(np.arange(dh), hs.shape)
        cand, cscore = self.head_items_[part], np.take_along_axis(hs, part, 1)     # [n, dh]
        hidden = self._masked(cand, keys)
        kept = np.where(hidden, -np.inf, cscore)
        kth = -np.partition(-kept, k - 1, axis=1)[:, k - 1] if dh >= k else np.full(len(u), -np.inf)
        bound = np.linalg.norm(u, axis=1) * self.tail_norm_ * (1 + 1e-5)          # float margin
        open_rows = np.flatnonzero(~(kth > bound + 1e-12))
        self.tail_searches_ += len(open_rows)
        tail = np.full((len(u), depth), -1, dtype=np.int64)
        tscore = np.full((len(u), depth), -np.inf, dtype=np.float32)
        if len(open_rows):
            ti, ts = self.search(u[open_rows], depth)
            dup = (ti >= 0) & self.is_head_[np.maximum(ti, 0)]        # scored above already
            tail[open_rows], tscore[open_rows] = np.where(dup, -1, ti), np.where(dup, -np.inf, ts)
        return (np.concatenate([cand, tail], 1), np.concatenate([cscore, tscore], 1),
                np.concatenate([hidden, self._masked(tail, keys)], 1))

    def _multi_candidates(self, users, depth):
        """Each valid user vector searches ``depth`` items; the merged, de-duplicated candidates
        [n, V * depth] (-1 = none), their exact scores, and per row the highest last-searched
        inner product of any list (an item outside every list scores at most that)."""
        V = np.asarray(self.model.user_vectors(users), dtype=np.float32)    # [n, V, d]
        valid = np.asarray(self.model.user_vector_mask(users), dtype=bool)  # [n, V]
        n, n_vec, d = V.shape
        cand, ip = self.search(V.reshape(n * n_vec, d), depth)              # [n V, depth]
        full = (cand >= 0).all(1).reshape(n, n_vec)
        last = np.where(valid & full, ip[:, -1].reshape(n, n_vec), -np.inf).max(1)   # [n]
        last = np.where((valid & ~full).any(1), np.inf, last)               # a short list: no bound
        cand = np.where(valid[:, :, None], cand.reshape(n, n_vec, depth), -1).reshape(n, -1)
        cand = np.sort(cand, axis=1)
        cand[:, 1:][cand[:, 1:] == cand[:, :-1]] = -1                       # merge repeats
        scores = self._score_items(users, np.maximum(cand, 0))
        return cand, np.where(cand >= 0, scores, -np.inf).astype(np.float32), last

    def _exact(self, users, k, filter_seen, exclude):
        """Exact top-k over the indexed vectors in the base's bounded chunks of users, with the
        catalog decoded from the index once for the call (not once per chunk)."""
        self._decoded_ = self._item_matrix()
        try:
            return super()._recommend(users, k, filter_seen, exclude, None)
        finally:
            del self._decoded_

    def _item_matrix(self) -> np.ndarray:
        """The indexed item vectors [n_items, d] (PQ-decoded for ivfpq)."""
        cached = self.__dict__.get("_decoded_")
        return self.index_.reconstruct_n(0, self.index_.ntotal) if cached is None else cached

    def _score(self, users):
        if self._multi():
            return self.model.late_interaction(self.model.user_vectors(users),
                                               self.model.user_vector_mask(users), self._item_matrix())
        return self.model.user_vectors(users) @ self._item_matrix().T

    def _score_items(self, users, items):
        n, c = items.shape
        e = self.index_.reconstruct_batch(np.ascontiguousarray(items.ravel())).reshape(n, c, -1)  # [n, C, d]
        if self._multi():
            return self.model.late_interaction(self.model.user_vectors(users),
                                               self.model.user_vector_mask(users), e)
        return np.einsum("nd,ncd->nc", self.model.user_vectors(users), e)

    def item_vectors(self):
        self._require_embedding()
        return self._item_matrix()

    def embedding_bytes(self) -> int:
        self._require_embedding()
        return int(np.asarray(self.user_vectors()).nbytes + self._item_matrix().nbytes)

    def serving_bytes(self) -> int:
        """The index (serialised size) plus the wrapped model (it computes the query vectors)."""
        import faiss
        return int(faiss.serialize_index(self.index_).nbytes) + self.model.serving_bytes()

    # ---- persistence: the index is saved (HNSW builds are not bit-reproducible across threads)
    def _own_state(self):
        import faiss
        return {"index_": faiss.serialize_index(self.index_)}

    def _restore(self, state):
        import faiss
        self.index_ = faiss.deserialize_index(np.asarray(state["index_"], dtype=np.uint8))
        self._set_search_params()
        self._set_head()
