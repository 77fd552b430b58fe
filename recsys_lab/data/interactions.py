"""`Interactions`: the one data structure every model, split and metric reads.

Users and items are dense integer indices ``0..n_users-1`` / ``0..n_items-1``; the raw ids
(customer numbers, stock codes, MovieLens ids) live in ``user_ids`` / ``item_ids`` so that
splits of one data set share one id space and can be compared index by index.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .validation import (check_present, duplicate_rows_to_keep, numeric_values,
                         timestamp_seconds)


@dataclass(eq=False)
class Interactions:
    """A log of (user, item[, rating][, timestamp]) events over a fixed id space.

    user, item : int32 arrays of indices, one entry per event
    rating     : float32 array or None (implicit feedback)
    timestamp  : int64 seconds since the epoch, or None
    session    : int64 basket / session id per event (e.g. the invoice), or None
    user_ids, item_ids : raw ids, ``user_ids[u]`` is the raw id of index ``u``
    item_info  : optional per-item table (title, price, ...) indexed by item index
    """

    user: np.ndarray
    item: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    rating: np.ndarray | None = None
    timestamp: np.ndarray | None = None
    item_info: pd.DataFrame | None = None
    name: str = "interactions"
    session: np.ndarray | None = None
    _user_index: dict | None = field(default=None, repr=False)
    _item_index: dict | None = field(default=None, repr=False)

    def __post_init__(self):
        self.user = np.asarray(self.user, dtype=np.int32)
        self.item = np.asarray(self.item, dtype=np.int32)
        self.user_ids = np.asarray(self.user_ids)
        self.item_ids = np.asarray(self.item_ids)
        n = len(self.user)
        if len(self.item) != n:
            raise ValueError(f"user and item arrays differ in length ({n} vs {len(self.item)})")
        if self.rating is not None:
            self.rating = np.asarray(self.rating, dtype=np.float32)
            if len(self.rating) != n:
                raise ValueError("rating array length differs from user array length")
        if self.timestamp is not None:
            self.timestamp = np.asarray(self.timestamp, dtype=np.int64)
            if len(self.timestamp) != n:
                raise ValueError("timestamp array length differs from user array length")
        if self.session is not None:
            self.session = np.asarray(self.session, dtype=np.int64)
            if len(self.session) != n:
                raise ValueError("session array length differs from user array length")
        if n:
            if self.user.min() < 0 or self.user.max() >= len(self.user_ids):
                raise ValueError("user indices out of range of user_ids")
            if self.item.min() < 0 or self.item.max() >= len(self.item_ids):
                raise ValueError("item indices out of range of item_ids")

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str | None = None,
        timestamp_col: str | None = None,
        item_info: pd.DataFrame | None = None,
        name: str = "interactions",
        session_col: str | None = None,
        duplicates: str = "warn",
        source: str | None = None,
    ) -> "Interactions":
        """Build from a frame of raw ids; indices follow the sorted order of the raw ids.

        ``item_info`` (optional) is indexed by raw item id and is re-indexed to item indices.
        Timestamps may be datetimes or numbers (seconds). A missing user / item, a non-numeric,
        missing or infinite rating, or a timestamp that does not parse is a ValueError naming the
        rows (numbered from 1, see ``recsys_lab.data.validation``). Duplicated rows follow
        ``duplicates`` ("warn", "keep", "drop", "raise"; the policy is documented once, in
        ``recsys_lab.data.validation``). ``source`` names the input in messages (default ``name``).
        """
        source = source or name
        cols = [c for c in (user_col, item_col, rating_col, timestamp_col, session_col) if c is not None]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise KeyError(f"{source}: column(s) {missing} not found; available columns: "
                           f"{list(df.columns)}")
        if len(df) == 0:
            raise ValueError(f"{source}: no interactions (the table is empty)")
        check_present(df[user_col], user_col, source)
        check_present(df[item_col], item_col, source)
        u_codes, user_ids = pd.factorize(df[user_col], sort=True)
        i_codes, item_ids = pd.factorize(df[item_col], sort=True)
        rating = None if rating_col is None else numeric_values(df[rating_col], rating_col, source)
        ts = None if timestamp_col is None else timestamp_seconds(df[timestamp_col], timestamp_col, source)
        session = None
        if session_col is not None:
            check_present(df[session_col], session_col, source)
            session = pd.factorize(df[session_col], sort=True)[0]
        columns = {user_col: u_codes, item_col: i_codes, rating_col: rating, timestamp_col: ts,
                   session_col: session}
        read = pd.DataFrame({c: v for c, v in columns.items() if c is not None and v is not None})
        keep = duplicate_rows_to_keep(read, duplicates, source)
        if keep is not None:
            u_codes, i_codes = u_codes[keep], i_codes[keep]
            rating, ts, session = (None if a is None else a[keep] for a in (rating, ts, session))
        info = None
        if item_info is not None:
            info = item_info.reindex(np.asarray(item_ids)).reset_index(drop=True)
        return cls(u_codes, i_codes, np.asarray(user_ids), np.asarray(item_ids), rating, ts, info, name,
                   session)

    # ---- shape --------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.user)

    @property
    def density(self) -> float:
        """Fraction of the user x item matrix with at least one event."""
        return self.to_csr().nnz / max(1, self.n_users * self.n_items)

    def __repr__(self) -> str:
        extras = [n for n in ("rating", "timestamp") if getattr(self, n) is not None]
        return (f"Interactions({self.name!r}: {len(self):,} events, {self.n_users:,} users, "
                f"{self.n_items:,} items{', ' + ', '.join(extras) if extras else ''})")

    # ---- views --------------------------------------------------------------------------
    def to_csr(self, binary: bool = True) -> sp.csr_matrix:
        """User x item matrix; ``binary`` gives 1 where any event, else sums ratings (or counts)."""
        if binary:
            data = np.ones(len(self), dtype=np.float32)
        else:
            data = self.rating if self.rating is not None else np.ones(len(self), dtype=np.float32)
        m = sp.csr_matrix((data, (self.user, self.item)), shape=(self.n_users, self.n_items), dtype=np.float32)
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        m.sort_indices()
        return m

    def to_frame(self, raw_ids: bool = False) -> pd.DataFrame:
        cols = {"user": self.user_ids[self.user] if raw_ids else self.user,
                "item": self.item_ids[self.item] if raw_ids else self.item}
        if self.rating is not None:
            cols["rating"] = self.rating
        if self.timestamp is not None:
            cols["timestamp"] = self.timestamp
        if self.session is not None:
            cols["session"] = self.session
        return pd.DataFrame(cols)

    def histories(self) -> list[np.ndarray]:
        """Per-user item sequences in time order (event order where there is no timestamp)."""
        key = self.timestamp if self.timestamp is not None else np.arange(len(self))
        order = np.lexsort((np.arange(len(self)), key, self.user))
        items = self.item[order]
        bounds = np.searchsorted(self.user[order], np.arange(self.n_users + 1))
        return [items[bounds[u]:bounds[u + 1]] for u in range(self.n_users)]

    def subset(self, mask_or_index: np.ndarray, name: str | None = None) -> "Interactions":
        """Events selected by a boolean mask or index array, keeping the id space."""
        idx = mask_or_index if isinstance(mask_or_index, slice) else np.asarray(mask_or_index)
        return replace(
            self,
            user=self.user[idx],
            item=self.item[idx],
            rating=None if self.rating is None else self.rating[idx],
            timestamp=None if self.timestamp is None else self.timestamp[idx],
            session=None if self.session is None else self.session[idx],
            name=name or self.name,
        )

    def user_counts(self) -> np.ndarray:
        return np.bincount(self.user, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.item, minlength=self.n_items)

    # ---- id maps ------------------------------------------------------------------------
    def user_index(self, raw_ids) -> np.ndarray:
        """Indices of raw user ids; unknown ids raise KeyError naming them."""
        if self._user_index is None:
            self._user_index = {v: i for i, v in enumerate(self.user_ids.tolist())}
        return _lookup(self._user_index, raw_ids, "user")

    def item_index(self, raw_ids) -> np.ndarray:
        if self._item_index is None:
            self._item_index = {v: i for i, v in enumerate(self.item_ids.tolist())}
        return _lookup(self._item_index, raw_ids, "item")


def _lookup(index: dict, raw_ids, kind: str) -> np.ndarray:
    raw = np.atleast_1d(np.asarray(raw_ids)).tolist()
    unknown = [r for r in raw if r not in index]
    if unknown:
        raise KeyError(f"unknown {kind} id(s): {unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
    return np.array([index[r] for r in raw], dtype=np.int64)

