"""Result and user-vector caches in front of a model, and a Zipf request stream to exercise them.

Shoppers' requests are skewed: a few users ask often. With request probability p(u) ~ 1 / rank^s
(Zipf, s ~ 1), an LRU cache of C entries hits with probability about the mass of the C most active
users. A cached list is valid only while the user's history is unchanged, so ``update(user, item)``
grows the seen set and drops that user's entries; a hit also checks that the user's seen count is
the one the entry was computed with, so a history changed behind the cache's back is a miss.
Eviction policies: ``LRU`` (a hit renews the entry) and ``FIFO`` (it does not), one class each.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .base import Wrapper


class BoundedCache:
    """A mapping of at most ``capacity`` entries that evicts in insertion order (the oldest first)
    and counts hits, misses and evictions. As it stands it is FIFO; ``LRU`` refreshes on hits."""

    def __init__(self, capacity: int):
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self.data: OrderedDict = OrderedDict()
        self.hits = self.misses = self.evictions = 0

    def _touch(self, key) -> None:
        """A hit on ``key`` (default: nothing; LRU moves it to the most recent end)."""

    def get(self, key):
        v = self.data.get(key)
        if v is None:
            self.misses += 1
            return None
        self.hits += 1
        self._touch(key)
        return v

    def put(self, key, value) -> list:
        """Insert (or replace and renew) ``key``; returns the evicted keys, oldest first."""
        self.data[key] = value
        self.data.move_to_end(key)
        evicted = []
        while len(self.data) > self.capacity:
            evicted.append(self.data.popitem(last=False)[0])
            self.evictions += 1
        return evicted

    def pop(self, key) -> None:
        self.data.pop(key, None)

    @property
    def hit_rate(self) -> float:
        n = self.hits + self.misses
        return self.hits / n if n else 0.0


class FIFO(BoundedCache):
    """First in, first out: a hit does not renew an entry; the oldest insertion is evicted."""


class LRU(BoundedCache):
    """Least recently used: every hit renews the entry; the entry unused longest is evicted."""

    def _touch(self, key) -> None:
        self.data.move_to_end(key)


POLICIES = {"lru": LRU, "fifo": FIFO}


@dataclass(eq=False)
class Cached(Wrapper):
    """Caches result lists keyed by (user, k, filter_seen) and user vectors keyed by user.

    ``recommend`` answers hits from the cache and sends the misses to the wrapped model in one
    batch; requests with ``exclude`` bypass it. ``user_vectors`` (embedding models) is cached too,
    so a wrapper over this one (``ANNIndex(Cached(seq_model))``) reuses the encoded user state.
    Counters: ``stats()`` gives hits, misses, hit rate and evictions of both caches.
    """

    capacity: int = 10_000
    policy: str = "lru"

    def _check_config(self):
        if self.capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {self.capacity!r}")
        if self.policy not in POLICIES:
            raise ValueError(f"unknown cache policy {self.policy!r}; choose one of {tuple(POLICIES)}")

    def _build(self):
        self.results = POLICIES[self.policy](self.capacity)
        self.vectors = POLICIES[self.policy](self.capacity)
        self._keys_by_user: dict[int, set] = {}

    # ---- invalidation ---------------------------------------------------------------------
    def invalidate(self, user: int | None = None) -> None:
        """Drop the cached entries of ``user`` (all entries when None)."""
        if user is None:
            self.results.data.clear()
            self.vectors.data.clear()
            self._keys_by_user.clear()
            return
        user = int(user)
        for key in self._keys_by_user.pop(user, ()):
            self.results.pop(key)
        self.vectors.pop(user)

    def _update_users(self, users):
        for u in users:
            self.invalidate(int(u))

    def _n_seen(self, u: int) -> int:
        return self.seen_set_.count(u)

    # ---- serving --------------------------------------------------------------------------
    def _recommend(self, users, k, filter_seen, exclude, items):
        if exclude is not None or items is not None:
            return self.model._recommend(users, k, filter_seen, exclude, items)
        items = np.empty((len(users), k), dtype=np.int64)
        scores = np.empty((len(users), k), dtype=np.float32)
        miss = []
        for r, u in enumerate(users.tolist()):
            hit = self.results.get((u, k, bool(filter_seen)))
            if hit is not None and hit[0] == self._n_seen(u):
                items[r], scores[r] = hit[1], hit[2]
            else:
                if hit is not None:  # history changed behind the cache: a miss, not a hit
                    self.results.hits -= 1
                    self.results.misses += 1
                miss.append(r)
        if miss:
            mu = users[miss]
            uniq, inv = np.unique(mu, return_inverse=True)
            mi, ms = self.model._recommend(uniq, k, filter_seen, None, None)
            items[miss], scores[miss] = mi[inv], ms[inv]
            for j, u in enumerate(uniq.tolist()):
                key = (u, k, bool(filter_seen))
                for old in self.results.put(key, (self._n_seen(u), mi[j].copy(), ms[j].copy())):
                    keys = self._keys_by_user.get(old[0])
                    if keys is not None:
                        keys.discard(old)
                self._keys_by_user.setdefault(u, set()).add(key)
        return items, scores

    def _score_items(self, users, items):
        return self.model._score_items(users, items)

    def user_vectors(self, users=None) -> np.ndarray:
        """The wrapped model's user vectors, cached per user until the user's history changes."""
        self._require_embedding()
        users = np.arange(self.n_users_) if users is None else self._check_users(users)
        out, miss = [None] * len(users), []
        for r, u in enumerate(users.tolist()):
            hit = self.vectors.get(u)
            if hit is not None and hit[0] == self._n_seen(u):
                out[r] = hit[1]
            else:
                miss.append(r)
        if miss:
            fresh = self.model.user_vectors(users[miss])
            for j, r in enumerate(miss):
                u = int(users[r])
                self.vectors.put(u, (self._n_seen(u), fresh[j]))
                out[r] = fresh[j]
        return np.stack(out).astype(np.float32, copy=False)

    def stats(self) -> dict:
        """Hit/miss counters of the result and vector caches (after those of the wrapped chain)."""
        own = {f"{name}_{k}": v for name, c in (("results", self.results), ("vectors", self.vectors))
               for k, v in (("hits", c.hits), ("misses", c.misses), ("hit_rate", c.hit_rate),
                            ("evictions", c.evictions), ("size", len(c.data)))}
        return {**super().stats(), **own}

    def reset_stats(self) -> None:
        for c in (self.results, self.vectors):
            c.hits = c.misses = c.evictions = 0


def zipf_requests(n_users: int, n: int, exponent: float = 1.1, seed: int = 0,
                  shuffle_ranks: bool = True) -> np.ndarray:
    """``n`` user indices drawn i.i.d. with p(rank r) ~ r^-exponent over ``n_users`` users.

    A bounded Zipf (numpy's ``zipf`` is unbounded and needs exponent > 1). With ``shuffle_ranks``
    the most active user is a random one, not user 0. Returns int64 [n].
    """
    if n_users < 1 or n < 0:
        raise ValueError(f"need n_users >= 1 and n >= 0, got n_users={n_users}, n={n}")
    if exponent < 0:
        raise ValueError(f"exponent must be >= 0, got {exponent}")
    rng = np.random.default_rng(seed)
    p = np.arange(1, n_users + 1, dtype=np.float64) ** -float(exponent)
    ranks = rng.choice(n_users, size=n, p=p / p.sum())
    users = rng.permutation(n_users) if shuffle_ranks else np.arange(n_users)
    return users[ranks].astype(np.int64)
