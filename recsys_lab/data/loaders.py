"""``load_dataset(name_or_path, **options) -> Interactions``: the data set registry.

    load_dataset("online-retail")                    # embedded default, data/online_retail.parquet
    load_dataset("ml-100k", path="~/ml-100k")         # GroupLens folder (not redistributed)
    load_dataset("events.csv", user_col="customer", item_col="sku", timestamp_col="ts")
    load_dataset("synthetic", n_users=10_000, seed=1)

Every loader returns an :class:`Interactions` whose indices follow the sorted raw ids.
"""
from __future__ import annotations

import csv
import hashlib
import inspect
import io
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .interactions import Interactions
from .synthetic import planted_interactions, synthetic_shop

DATA_DIR = Path(__file__).resolve().parents[2] / "data"          # repo root data/
ONLINE_RETAIL_FILE = "online_retail.parquet"
ONLINE_RETAIL_SHA256 = "823f376e39d39f756a3b637bbc5e14cb3dd4e8f9e5f3a1b2b49ccac829d2f154"
ML100K_UDATA_SHA256 = "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
_SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"   # sibling of the repo
_MOVIELENS_ENV = {"ml-100k": "RECSYS_LAB_ML100K", "ml-1m": "RECSYS_LAB_ML1M"}
_FILE_TYPES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet", ".pq")

_REGISTRY: dict[str, tuple[Callable[..., Interactions], str]] = {}


def register_dataset(name: str, description: str):
    """Decorator adding a loader ``fn(**options) -> Interactions`` under ``name``."""
    def deco(fn):
        _REGISTRY[name] = (fn, description)
        return fn
    return deco


def list_datasets() -> dict[str, str]:
    """Known data set names and a one-line description of each."""
    return {name: desc for name, (_, desc) in _REGISTRY.items()}


def load_dataset(name_or_path: str | os.PathLike = "online-retail", **options) -> Interactions:
    """Load a registered data set by name, or a CSV / Parquet file (by extension) or folder.

    Options are passed to the loader (see each ``_load_*`` function); an unknown option is a
    TypeError naming it and the valid ones. A folder holding ``u.data`` or ``ratings.dat`` is read
    as MovieLens 100K / 1M.
    """
    key = str(name_or_path)
    if not isinstance(name_or_path, os.PathLike) and key in _REGISTRY:
        fn = _REGISTRY[key][0]
    else:
        path = Path(name_or_path).expanduser()
        if path.is_dir() and (path / "u.data").exists():
            fn, options = _REGISTRY["ml-100k"][0], {"path": path, **options}
        elif path.is_dir() and (path / "ratings.dat").exists():
            fn, options = _REGISTRY["ml-1m"][0], {"path": path, **options}
        elif key.lower().endswith(_FILE_TYPES):
            fn, options = load_file, {"path": path, **options}
        elif path.exists():
            raise ValueError(f"{path}: unsupported file type; expected one of {list(_FILE_TYPES)} "
                             "or a MovieLens folder (u.data / ratings.dat)")
        else:
            raise ValueError(f"unknown data set {key!r}; known names: {sorted(_REGISTRY)}, "
                             f"or a path to a {'/'.join(_FILE_TYPES)} file")
    params = inspect.signature(fn).parameters
    bad = sorted(set(options) - set(params))
    if bad:
        raise TypeError(f"load_dataset({key!r}): unknown option(s) {bad}; valid options: {list(params)}")
    return fn(**options)


# ---- Online Retail (embedded) -------------------------------------------------------------------
def sha256sum(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_sha256(path: Path, expected: str) -> None:
    got = sha256sum(path)
    if got != expected.lower():
        raise ValueError(f"{path}: sha256 mismatch (expected {expected}, got {got}); the file is "
                         "corrupted or a different version; restore it from the repository")


@register_dataset("online-retail", "UCI Online Retail purchases (CC BY 4.0), embedded: 397,924 "
                  "events, 4,339 customers, 3,665 stock codes, invoices as sessions")
def load_online_retail(path: str | os.PathLike | None = None, sha256: str | None = None) -> Interactions:
    """UCI Online Retail (Chen et al. 2012) as implicit purchases.

    Keeps rows with a CustomerID, an InvoiceNo not starting with "C" (cancellation) and
    Quantity > 0. user = CustomerID, item = StockCode, timestamp = InvoiceDate (UK local time read
    as UTC seconds), session = InvoiceNo (one basket), no rating. ``item_info`` has ``title`` (the
    item's most frequent stripped Description, ties to the alphabetically first, the StockCode
    when none) and ``price`` (median UnitPrice).

    The embedded file's sha256 is checked on every load; a file given by ``path`` is checked only
    against ``sha256`` when that is given.
    """
    if path is None:
        path, sha256 = DATA_DIR / ONLINE_RETAIL_FILE, sha256 or ONLINE_RETAIL_SHA256
        if not path.exists():
            raise FileNotFoundError(
                f"the embedded Online Retail file is missing: {path}. It ships in the repository's "
                "data/ folder (a pip-installed package does not carry it); pass "
                "path='.../online_retail.parquet'")
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"Online Retail file not found: {path}")
    if sha256 is not None:
        _check_sha256(path, sha256)
    df = _read_table(path)
    _require(df, ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
                  "CustomerID"], path)
    invoice = df["InvoiceNo"].astype(str)
    keep = df["CustomerID"].notna() & ~invoice.str.startswith("C") & (df["Quantity"] > 0)
    df = df.loc[keep.to_numpy(bool)].reset_index(drop=True)
    df["CustomerID"] = df["CustomerID"].astype(np.int64)
    df["StockCode"] = df["StockCode"].astype(str)
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
    return Interactions.from_frame(df, "CustomerID", "StockCode", timestamp_col="InvoiceDate",
                                   session_col="InvoiceNo", item_info=_retail_item_info(df),
                                   name="online-retail")


def _retail_item_info(df: pd.DataFrame) -> pd.DataFrame:
    """Per StockCode: most frequent stripped Description (ties: alphabetical) and median price."""
    desc = df["Description"].astype("string").str.strip()
    d = pd.DataFrame({"code": df["StockCode"], "title": desc}).dropna()
    d = d[d["title"] != ""]
    counts = d.groupby(["code", "title"]).size().rename("n").reset_index()
    counts = counts.sort_values(["code", "n", "title"], ascending=[True, False, True])
    title = counts.drop_duplicates("code").set_index("code")["title"]
    price = df.groupby("StockCode")["UnitPrice"].median()
    info = pd.DataFrame({"price": price})
    info.insert(0, "title", title.reindex(info.index).fillna(pd.Series(info.index, info.index)))
    info["title"] = info["title"].astype(str)
    return info


# ---- MovieLens (GroupLens formats, read from a user-given folder) -----------------------------
def find_movielens(name: str = "ml-100k") -> Path | None:
    """A local MovieLens folder: ``$RECSYS_LAB_ML100K`` / ``$RECSYS_LAB_ML1M``, else
    ``../shared/data/<name>`` next to the repository; None when neither exists."""
    env = os.environ.get(_MOVIELENS_ENV[name])
    for p in ([Path(env).expanduser()] if env else []) + [_SHARED_DATA / name]:
        if p.is_dir():
            return p
    return None


def _movielens_folder(name: str, path) -> Path:
    hint = (f"MovieLens is not redistributed with recsys_lab (GroupLens license); download it from "
            f"https://grouplens.org/datasets/movielens/ and pass path='.../{name}' "
            f"(or set ${_MOVIELENS_ENV[name]})")
    if path is None:
        found = find_movielens(name)
        if found is None:
            raise FileNotFoundError(f"no {name} folder given and none found at "
                                    f"${_MOVIELENS_ENV[name]} or {_SHARED_DATA / name}. {hint}")
        return found
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{name} folder not found: {path}. {hint}")
    return path


def _read_delimited(path: Path, sep: str, names: list[str], numeric: bool = True,
                    encoding: str = "utf-8") -> pd.DataFrame:
    """Headerless GroupLens table with exactly ``len(names)`` fields per line; ValueError naming
    the file on empty input, a wrong field count or (``numeric``) non-integer fields."""
    raw = path.read_bytes()
    if len(sep) > 1:                               # '::' -> a one-byte separator, C parser
        raw = raw.replace(sep.encode(), b"\x1f")
        sep = "\x1f"
    try:
        df = pd.read_csv(io.BytesIO(raw), sep=sep, header=None, dtype=str, encoding=encoding,
                         quoting=csv.QUOTE_NONE, keep_default_na=False, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: malformed file ({e})") from None
    if df.shape[1] != len(names):
        raise ValueError(f"{path}: expected {len(names)} {sep!r}-separated fields per line "
                         f"({', '.join(names)}), found {df.shape[1]}")
    df.columns = names
    if len(df) == 0:
        raise ValueError(f"{path}: no rows")
    if numeric:
        for c in names:
            col = df[c].str.strip()
            bad = ~col.str.fullmatch(r"[+-]?\d+(\.\d+)?")
            if bad.any():
                line = int(np.flatnonzero(bad.to_numpy())[0]) + 1
                raise ValueError(f"{path}: line {line}: field {c!r} is not a number: "
                                 f"{df[c].iloc[line - 1]!r}")
            df[c] = pd.to_numeric(col)
    return df


@register_dataset("ml-100k", "MovieLens 100K ratings from a local GroupLens folder (path=; "
                  "not redistributed)")
def load_ml100k(path: str | os.PathLike | None = None, verify: bool | None = None) -> Interactions:
    """MovieLens 100K (Harper & Konstan 2015): ``u.data`` (tab: user item rating timestamp),
    titles and genres from ``u.item`` (latin-1, ``|``) when present.

    ``verify``: None warns, True raises, False skips when ``u.data`` differs from the official
    release's sha256 (many copies online are corrupted).
    """
    folder = _movielens_folder("ml-100k", path)
    udata = folder / "u.data" if folder.is_dir() else folder
    if not udata.exists():
        raise FileNotFoundError(f"{udata} not found; expected the GroupLens ml-100k folder")
    if verify is not False and sha256sum(udata) != ML100K_UDATA_SHA256:
        msg = f"{udata}: sha256 differs from the official GroupLens ml-100k u.data"
        if verify:
            raise ValueError(msg)
        warnings.warn(msg + "; counts may not match published results", stacklevel=3)
    df = _read_delimited(udata, "\t", ["user", "item", "rating", "timestamp"])
    info = None
    uitem = udata.parent / "u.item"
    if uitem.exists():
        items = pd.read_csv(uitem, sep="|", header=None, encoding="latin-1", dtype=str,
                            quoting=csv.QUOTE_NONE, keep_default_na=False)
        info = pd.DataFrame({"title": items[1].to_numpy()}, index=items[0].astype(np.int64).to_numpy())
        ugenre = udata.parent / "u.genre"
        if ugenre.exists() and items.shape[1] > 5:
            genres = pd.read_csv(ugenre, sep="|", header=None, dtype=str).dropna()[0].tolist()
            flags = items.iloc[:, 5:5 + len(genres)].to_numpy() == "1"
            info["genres"] = ["|".join(g for g, f in zip(genres, row) if f) for row in flags]
    return Interactions.from_frame(df, "user", "item", "rating", "timestamp", item_info=info,
                                   name="ml-100k")


@register_dataset("ml-1m", "MovieLens 1M ratings from a local GroupLens folder (path=; "
                  "not redistributed)")
def load_ml1m(path: str | os.PathLike | None = None) -> Interactions:
    """MovieLens 1M: ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``), titles and genres
    from ``movies.dat`` (latin-1, ``MovieID::Title::Genres``) when present."""
    folder = _movielens_folder("ml-1m", path)
    ratings = folder / "ratings.dat" if folder.is_dir() else folder
    if not ratings.exists():
        raise FileNotFoundError(f"{ratings} not found; expected the GroupLens ml-1m folder")
    df = _read_delimited(ratings, "::", ["user", "item", "rating", "timestamp"])
    info = None
    movies = ratings.parent / "movies.dat"
    if movies.exists():
        m = _read_delimited(movies, "::", ["item", "title", "genres"], numeric=False,
                            encoding="latin-1")
        info = m.set_index(m["item"].astype(np.int64))[["title", "genres"]]
    return Interactions.from_frame(df, "user", "item", "rating", "timestamp", item_info=info,
                                   name="ml-1m")


# ---- any CSV / Parquet --------------------------------------------------------------------------
def _read_table(path: Path, sep: str | None = None) -> pd.DataFrame:
    """Read a CSV/TSV (optionally gzipped) or Parquet file; ValueError naming it when malformed."""
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path, sep=sep or ("\t" if ".tsv" in name else ","))
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty") from None
    except Exception as e:  # ParserError (bad field count), pyarrow.ArrowInvalid, OSError, ...
        raise ValueError(f"{path}: malformed or unreadable file ({type(e).__name__}: {e})") from None


def _require(df: pd.DataFrame, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"{path}: column(s) {missing} not found; available columns: {list(df.columns)}")


def load_file(path: str | os.PathLike, user_col: str = "user", item_col: str = "item",
              rating_col: str | None = None, timestamp_col: str | None = None,
              session_col: str | None = None, sep: str | None = None,
              name: str | None = None) -> Interactions:
    """Interactions from a CSV/TSV/Parquet file with one event per row.

    Timestamps may be numbers (seconds) or date strings; ``sep`` defaults to ',' (tab for .tsv).
    A missing column is a KeyError naming it and the available ones; an empty, header-only or
    malformed file (bad field count, non-numeric rating, missing ids) is a ValueError naming it.
    """
    path = Path(path).expanduser()
    df = _read_table(path, sep=sep)
    try:
        return Interactions.from_frame(df, user_col, item_col, rating_col, timestamp_col,
                                       name=name or path.name.split(".")[0], session_col=session_col)
    except KeyError as e:
        raise KeyError(f"{path}: {e.args[0]}") from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


# ---- generated ----------------------------------------------------------------------------------
register_dataset("synthetic", "synthetic shop sessions: Zipf popularity, categories, prices, "
                 "sessions in time (options of synthetic_shop)")(synthetic_shop)
register_dataset("planted", "tiny block-structured data with a known right answer "
                 "(options of planted_interactions)")(planted_interactions)
