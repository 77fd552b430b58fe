"""``load_dataset(name_or_path, **options) -> Interactions``: the data set registry.

    load_dataset("online-retail")                    # embedded default, data/online_retail.parquet
    load_dataset("online-retail", path="retail_II.csv")   # Online Retail / Online Retail II file
    load_dataset("ml-100k", path="~/ml-100k")         # GroupLens folder (not redistributed)
    load_dataset("events.csv", user_col="customer", item_col="sku", timestamp_col="ts")
    load_dataset("synthetic", n_users=10_000, seed=1)

Every loader returns an :class:`Interactions` whose indices follow the sorted raw ids. Value
errors name the rows, duplicated rows follow one policy (``recsys_lab.data.validation``), files
of known data sets are checked against their sha256 (``recsys_lab.data.files``).
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path

from .files import read_table, sha256sum
from .interactions import Interactions
from .registry import REGISTRY, list_datasets, register_dataset
# importing a loader registers it; the import order is the order list_datasets() shows
from .retail import DATA_DIR, ONLINE_RETAIL_FILE, ONLINE_RETAIL_SHA256, load_online_retail  # noqa: I001
from .movielens import ML100K_SHA256, ML100K_UDATA_SHA256, find_movielens, load_ml100k, load_ml1m
from .synthetic import planted_interactions, synthetic_shop

__all__ = ["load_dataset", "load_file", "list_datasets", "register_dataset", "find_movielens",
           "load_online_retail", "load_ml100k", "load_ml1m", "sha256sum", "DATA_DIR",
           "ONLINE_RETAIL_FILE", "ONLINE_RETAIL_SHA256", "ML100K_SHA256", "ML100K_UDATA_SHA256"]

_FILE_TYPES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet", ".pq")


def load_dataset(name_or_path: str | os.PathLike = "online-retail", **options) -> Interactions:
    """Load a registered data set by name, or a CSV / Parquet file (by extension) or folder.

    Options are passed to the loader (see each ``load_*`` function); an unknown option is a
    TypeError naming it and the valid ones. A folder holding ``u.data`` or ``ratings.dat`` is read
    as MovieLens 100K / 1M.
    """
    key = str(name_or_path)
    if not isinstance(name_or_path, os.PathLike) and key in REGISTRY:
        fn = REGISTRY[key][0]
    else:
        path = Path(name_or_path).expanduser()
        if path.is_dir() and (path / "u.data").exists():
            fn, options = REGISTRY["ml-100k"][0], {"path": path, **options}
        elif path.is_dir() and (path / "ratings.dat").exists():
            fn, options = REGISTRY["ml-1m"][0], {"path": path, **options}
        elif key.lower().endswith(_FILE_TYPES):
            fn, options = load_file, {"path": path, **options}
        elif path.exists():
            raise ValueError(f"{path}: unsupported file type; expected one of {list(_FILE_TYPES)} "
                             "or a MovieLens folder (u.data / ratings.dat)")
        else:
            raise ValueError(f"unknown data set {key!r}; known names: {sorted(REGISTRY)}, "
                             f"or a path to a {'/'.join(_FILE_TYPES)} file")
    params = inspect.signature(fn).parameters
    bad = sorted(set(options) - set(params))
    if bad:
        raise TypeError(f"load_dataset({key!r}): unknown option(s) {bad}; valid options: {list(params)}")
    return fn(**options)


def load_file(path: str | os.PathLike, user_col: str = "user", item_col: str = "item",
              rating_col: str | None = None, timestamp_col: str | None = None,
              session_col: str | None = None, sep: str | None = None,
              name: str | None = None, duplicates: str = "warn") -> Interactions:
    """Interactions from a CSV/TSV/Parquet file with one event per row.

    Timestamps may be numbers (seconds) or date strings; ``sep`` defaults to ',' (tab for .tsv).
    A missing column is a KeyError naming it and the available ones; an empty, header-only or
    malformed file (bad field count, non-numeric rating, missing ids, unparseable timestamps) is
    a ValueError naming the file and the rows. ``duplicates``: the policy of
    ``recsys_lab.data.validation`` (default: keep every row, warn with their count).
    """
    path = Path(path).expanduser()
    df = read_table(path, sep=sep)
    return Interactions.from_frame(df, user_col, item_col, rating_col, timestamp_col,
                                   name=name or path.name.split(".")[0], session_col=session_col,
                                   duplicates=duplicates, source=str(path))


# ---- generated ----------------------------------------------------------------------------------
register_dataset("synthetic", "synthetic shop sessions: Zipf popularity, categories, prices, "
                 "sessions in time (options of synthetic_shop)")(synthetic_shop)
register_dataset("planted", "tiny block-structured data with a known right answer "
                 "(options of planted_interactions)")(planted_interactions)
