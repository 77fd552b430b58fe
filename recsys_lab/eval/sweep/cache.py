"""The sweep's on-disk cache: verified JSON results and fitted base models (``.npz``, no pickle).

Layout under the cache folder: ``{key}.json``, one record per configuration, and
``models/{model_key}.npz`` (``Recommender.save``) with its record ``models/{model_key}.json``, so a
new accelerator on a known base model does not retrain it.

A result record is ``{"version", "key", "config", "data", "eval", "result", "sha256"}``: ``key``
(also the file name) is the SHA-256 of the configuration, the evaluation settings and ``data``, the
SHA-256 of the interaction arrays of every split; ``sha256`` is the SHA-256 of the rest of the
record. A model record holds the SHA-256 of its ``.npz``. A file that does not parse, or whose
content, key or data hash does not match, is named in a :class:`SweepCacheWarning`, ignored and
recomputed (then overwritten). The hashes catch corruption, stale files and hand edits; they are
not a signature (whoever can write the cache can recompute them). Writes are atomic
(:mod:`recsys_lab.fileio`: ``mkstemp`` names, rename on success).
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np

from ...data.interactions import Interactions
from ...fileio import atomic_write

CACHE_VERSION = 2
RECORD_FIELDS = ("version", "key", "config", "data", "eval", "result", "sha256")


class SweepCacheWarning(UserWarning):
    """A cache file was unreadable or failed its integrity check; it is recomputed."""


def canonical(obj) -> str:
    """Compact JSON with sorted keys: the text every hash of the sweep is taken over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON-serialisable in a sweep config: {v!r} ({type(v).__name__})")


def sha(obj, n: int = 20) -> str:
    """First ``n`` hex digits of the SHA-256 of ``canonical(obj)``."""
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:n]


def data_hash(*splits: Interactions | None) -> str:
    """SHA-256 of the interaction arrays (user, item, rating, timestamp) and id-space sizes."""
    h = hashlib.sha256()
    for part in splits:
        if part is None:
            h.update(b"none")
            continue
        h.update(np.array([part.n_users, part.n_items, len(part)], dtype=np.int64).tobytes())
        for arr in (part.user, part.item, part.rating, part.timestamp):
            h.update(b"-" if arr is None else np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:20]


def result_key(config: dict, data: str, settings: dict) -> str:
    """The key (and file name) of one configuration's result on one data set."""
    return sha({"v": CACHE_VERSION, "config": config, "data": data, "eval": settings})


def model_key(model: str, params: dict, data: str) -> str:
    """The key of a fitted base model: its class, parameters and training data."""
    return sha({"v": CACHE_VERSION, "model": model, "params": params, "data": data})


def _sealed(record: dict) -> dict:
    return {**record, "sha256": sha({k: v for k, v in record.items() if k != "sha256"}, n=64)}


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class SweepCache:
    """Results and fitted models under ``root`` (None: a cache that holds nothing)."""

    def __init__(self, root: str | Path | None):
        self.root = None if root is None else Path(root)

    def _warn(self, path: Path, reason: str) -> None:
        warnings.warn(f"sweep cache: ignoring {path}: {reason}; recomputing it", SweepCacheWarning,
                      stacklevel=3)

    def _read(self, path: Path, fields: tuple) -> dict | None:
        """The parsed, hash-checked record at ``path``; None (with a warning) when it is not one."""
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            self._warn(path, f"not a readable JSON file ({type(e).__name__}: {e})")
            return None
        missing = sorted(set(fields) - set(record)) if isinstance(record, dict) else list(fields)
        if missing:
            self._warn(path, f"not a sweep cache record (missing {missing})")
            return None
        if record.get("version") != CACHE_VERSION:
            self._warn(path, f"written by cache version {record.get('version')!r}, not {CACHE_VERSION}")
            return None
        if _sealed(record)["sha256"] != record["sha256"]:
            self._warn(path, "its content does not match its sha256 (edited or corrupted)")
            return None
        return record

    # ---- results --------------------------------------------------------------------------
    def result_path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def load_result(self, key: str, data: str) -> dict | None:
        """The verified result stored under ``key`` for data hash ``data``, or None."""
        if self.root is None:
            return None
        path = self.result_path(key)
        record = self._read(path, RECORD_FIELDS)
        if record is None:
            return None
        if record["key"] != key or record["data"] != data or \
                result_key(record["config"], record["data"], record["eval"]) != key:
            self._warn(path, "its key does not match its configuration and data (a stale or moved file)")
            return None
        return record["result"]

    def store_result(self, key: str, config: dict, data: str, settings: dict, result: dict) -> None:
        if self.root is None:
            return
        record = _sealed({"version": CACHE_VERSION, "key": key, "config": config, "data": data,
                          "eval": settings, "result": json.loads(canonical(result))})
        atomic_write(self.result_path(key), canonical(record))

    # ---- fitted base models ---------------------------------------------------------------
    def model_path(self, mkey: str) -> Path:
        return self.root / "models" / f"{mkey}.npz"

    def load_model(self, mkey: str):
        """``(model, fit_s)`` of a verified cached base model, or None."""
        if self.root is None:
            return None
        npz = self.model_path(mkey)
        record = self._read(npz.with_suffix(".json"), ("version", "key", "fit_s", "npz_sha256", "sha256"))
        if record is None:
            return None
        if record["key"] != mkey:
            self._warn(npz.with_suffix(".json"), "written for another model")
            return None
        if not npz.exists() or _file_sha256(npz) != record["npz_sha256"]:
            self._warn(npz, "missing, or its content does not match the sha256 in its record")
            return None
        from ...models.base import Recommender
        try:
            model = Recommender.load(npz)
        except Exception as e:  # noqa: BLE001 - any unreadable model is refitted, and named
            self._warn(npz, f"cannot be loaded ({type(e).__name__}: {e})")
            return None
        return model, float(record["fit_s"])

    def store_model(self, mkey: str, model, fit_s: float) -> None:
        if self.root is None:
            return
        npz = self.model_path(mkey)
        try:
            model.save(npz)
        except Exception as e:  # noqa: BLE001 - a model that cannot be saved is refitted next time
            npz.unlink(missing_ok=True)
            warnings.warn(f"sweep cache: cannot keep the fitted {type(model).__name__} "
                          f"({type(e).__name__}: {e}); it is refitted next time", SweepCacheWarning,
                          stacklevel=2)
            return
        record = _sealed({"version": CACHE_VERSION, "key": mkey, "fit_s": float(fit_s),
                          "npz_sha256": _file_sha256(npz)})
        atomic_write(npz.with_suffix(".json"), canonical(record))

    def forget_model(self, mkey: str) -> None:
        if self.root is not None:
            for path in (self.model_path(mkey), self.model_path(mkey).with_suffix(".json")):
                path.unlink(missing_ok=True)
