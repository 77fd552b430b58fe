"""One validation of the arguments of every public entry point (recommend, score, update, evaluate, ...).

Rules, the same everywhere:

- ``k`` is a positive integer (Python or numpy int). bool, float (even 5.0), str and None are
  refused with a TypeError naming the value; 0 or less is a ValueError; more than the catalog
  (or the candidate list) is a ValueError.
- User and item indices are any integer array-like: a scalar, a list, a tuple or an integer array,
  including an empty one (``recommend(users=[])`` gives [0, k] arrays). Floats are refused (1.7 is
  never read as user 1), and so are bools, strings and nested lists; an index outside the id space
  is an IndexError naming it.
- Hyper-parameters are checked against their dataclass annotations when a model is built
  (``check_params``): ``EASE(reg="x")`` is a TypeError naming the field, the value and the type;
  an unknown name is answered with the valid ones (``check_names``).
"""
from __future__ import annotations

import types
import typing
from dataclasses import fields

import numpy as np
import scipy.sparse as sp

from ..data.interactions import Interactions


def check_k(k, n_items: int, what: str = "the catalog") -> int:
    """``k`` as an int in 1..n_items (TypeError for a non-integer, ValueError for a bad value)."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be a positive integer, got {k!r} ({type(k).__name__})")
    k = int(k)
    if k <= 0:
        raise ValueError(f"k must be a positive integer, got {k}")
    if k > n_items:
        raise ValueError(f"k={k} is larger than {what} ({n_items} items)")
    return k


def as_indices(values, n: int, what: str = "user") -> np.ndarray:
    """Integer indices in 0..n-1 as int64 [m] (m may be 0); floats, bools and strings refused."""
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise TypeError(f"{what} indices must be a 1-d integer array-like, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what} indices must be integers, got {arr.dtype} values {arr[:5].tolist()}")
    bad = arr[(arr < 0) | (arr >= n)]
    if len(bad):
        raise IndexError(f"unknown {what} index {bad[:5].tolist()} (model knows {n} {what}s)")
    return arr.astype(np.int64, copy=False)


def as_candidates(items, n_users: int, n_items: int) -> np.ndarray:
    """Candidate items as int64 [n_users, C]: a 2-D array per user, or one 1-D list for all."""
    arr = np.asarray(items)
    if arr.ndim == 1:
        arr = np.broadcast_to(arr, (n_users, len(arr)))
    if arr.ndim != 2 or arr.shape[0] != n_users:
        raise ValueError(f"items must be [n_users, C] = [{n_users}, C] or one [C] list, got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError("items: the candidate list is empty")
    flat = as_indices(arr.reshape(-1), n_items, "item") if arr.size else np.zeros(0, np.int64)
    return flat.reshape(arr.shape)


def as_mask(exclude, shape: tuple[int, int]) -> sp.csr_matrix | None:
    """``exclude`` (None, Interactions or a sparse [n_users, n_items] matrix) as CSR, shape checked."""
    if exclude is None:
        return None
    if isinstance(exclude, Interactions):
        exclude = exclude.to_csr()
    if not sp.issparse(exclude):
        raise TypeError(f"exclude must be Interactions or a scipy sparse matrix [n_users, n_items], got "
                        f"{type(exclude).__name__}")
    if exclude.shape != shape:
        raise ValueError(f"exclude has shape {exclude.shape}, the model's id space is {shape}")
    return exclude.tocsr()


def check_flag(name: str, value) -> bool:
    """A bool argument (numpy bools too); anything else is a TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_timestamp(timestamp) -> int | None:
    """None or an integer timestamp."""
    if timestamp is None:
        return None
    if isinstance(timestamp, (bool, np.bool_)) or not isinstance(timestamp, (int, np.integer)):
        raise TypeError(f"timestamp must be an integer or None, got {timestamp!r} ({type(timestamp).__name__})")
    return int(timestamp)


# ---- hyper-parameters --------------------------------------------------------------------
def init_names(cls) -> set[str]:
    return {f.name for f in fields(cls) if f.init}


def check_names(cls, kwargs: dict) -> None:
    """TypeError naming unknown keyword arguments and listing the valid ones."""
    bad = sorted(set(kwargs) - init_names(cls))
    if bad:
        raise TypeError(f"{cls.__name__}: unknown parameter(s) {bad}; valid: {sorted(init_names(cls))}")


_HINTS: dict[type, dict] = {}


def _accepts(value, t) -> bool:
    if t is type(None):
        return value is None
    if t is bool:
        return isinstance(value, (bool, np.bool_))
    if isinstance(value, (bool, np.bool_)):
        return False                                   # a bool is never a number here
    if t is int:
        return isinstance(value, (int, np.integer))
    if t is float:
        return isinstance(value, (int, float, np.integer, np.floating))
    if t is tuple:
        return isinstance(value, (tuple, list))
    if isinstance(t, type):
        return isinstance(value, t)
    return True                                        # typing constructs we do not check


def _describe(options) -> str:
    return " or ".join("None" if t is type(None) else getattr(t, "__name__", str(t)) for t in options)


def check_params(obj) -> None:
    """Every field of a dataclass instance against its annotation (int, float, str, bool, tuple,
    a class, or a union of them): TypeError naming the field, the value and the expected type."""
    cls = type(obj)
    hints = _HINTS.get(cls)
    if hints is None:
        try:
            hints = typing.get_type_hints(cls)
        except NameError:                              # an annotation that cannot be resolved:
            hints = {}                                 # nothing to check it against
        _HINTS[cls] = hints
    for f in fields(obj):
        hint = hints.get(f.name)
        if hint is None:
            continue
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        options = typing.get_args(hint) if union else (hint,)
        value = getattr(obj, f.name)
        if not any(_accepts(value, t) for t in options):
            raise TypeError(f"{cls.__name__}: {f.name} must be {_describe(options)}, got {value!r} "
                            f"({type(value).__name__})")
