"""MovieLens 100K / 1M (Harper & Konstan 2015) read from a user-given GroupLens folder.

MovieLens is not redistributed (GroupLens license): pass ``path=``, set ``$RECSYS_LAB_ML100K`` /
``$RECSYS_LAB_ML1M``, or keep the folder at ``../shared/data/<name>`` next to the repository.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .files import report_unknown_copies, sha256sum
from .interactions import Interactions
from .registry import register_dataset

_SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"   # sibling of the repo
_MOVIELENS_ENV = {"ml-100k": "RECSYS_LAB_ML100K", "ml-1m": "RECSYS_LAB_ML1M"}
# sha256 of the files of the official ml-100k.zip that the loader reads
# (shared/data/ml-100k/SOURCE.md; many copies online are corrupted).
ML100K_SHA256 = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
}
ML100K_UDATA_SHA256 = ML100K_SHA256["u.data"]


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


def read_delimited(path: Path, sep: str, names: list[str], numeric: bool = True,
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
def load_ml100k(path: str | os.PathLike | None = None, verify: bool | None = None,
                duplicates: str = "warn") -> Interactions:
    """MovieLens 100K: ``u.data`` (tab: user item rating timestamp), titles and genres from
    ``u.item`` (latin-1, ``|``) and ``u.genre`` when present.

    ``verify``: each file read is compared with the official release's sha256 (``ML100K_SHA256``);
    None warns naming the files that differ, True raises, False skips. ``duplicates``: the
    policy of ``recsys_lab.data.validation`` (the official u.data has none).
    """
    folder = _movielens_folder("ml-100k", path)
    udata = folder / "u.data" if folder.is_dir() else folder
    if not udata.exists():
        raise FileNotFoundError(f"{udata} not found; expected the GroupLens ml-100k folder")
    uitem, ugenre = udata.parent / "u.item", udata.parent / "u.genre"
    if verify is not False:
        files = {udata: "u.data", uitem: "u.item", ugenre: "u.genre"}
        differ = [p for p, official in files.items()
                  if p.exists() and sha256sum(p) != ML100K_SHA256[official]]
        report_unknown_copies(differ, "the official GroupLens ml-100k release", verify)
    df = read_delimited(udata, "\t", ["user", "item", "rating", "timestamp"])
    info = None
    if uitem.exists():
        items = pd.read_csv(uitem, sep="|", header=None, encoding="latin-1", dtype=str,
                            quoting=csv.QUOTE_NONE, keep_default_na=False)
        info = pd.DataFrame({"title": items[1].to_numpy()}, index=items[0].astype(np.int64).to_numpy())
        if ugenre.exists() and items.shape[1] > 5:
            genres = pd.read_csv(ugenre, sep="|", header=None, dtype=str).dropna()[0].tolist()
            flags = items.iloc[:, 5:5 + len(genres)].to_numpy() == "1"
            info["genres"] = ["|".join(g for g, f in zip(genres, row) if f) for row in flags]
    return Interactions.from_frame(df, "user", "item", "rating", "timestamp", item_info=info,
                                   name="ml-100k", duplicates=duplicates, source=str(udata))


@register_dataset("ml-1m", "MovieLens 1M ratings from a local GroupLens folder (path=; "
                  "not redistributed)")
def load_ml1m(path: str | os.PathLike | None = None, duplicates: str = "warn") -> Interactions:
    """MovieLens 1M: ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``), titles and genres
    from ``movies.dat`` (latin-1, ``MovieID::Title::Genres``) when present.

    No per-file sha256 of the official ml-1m release is recorded here (GroupLens publishes only
    the zip's md5), so its files are not checksum-verified. ``duplicates``: as for ml-100k.
    """
    folder = _movielens_folder("ml-1m", path)
    ratings = folder / "ratings.dat" if folder.is_dir() else folder
    if not ratings.exists():
        raise FileNotFoundError(f"{ratings} not found; expected the GroupLens ml-1m folder")
    df = read_delimited(ratings, "::", ["user", "item", "rating", "timestamp"])
    info = None
    movies = ratings.parent / "movies.dat"
    if movies.exists():
        m = read_delimited(movies, "::", ["item", "title", "genres"], numeric=False,
                           encoding="latin-1")
        info = m.set_index(m["item"].astype(np.int64))[["title", "genres"]]
    return Interactions.from_frame(df, "user", "item", "rating", "timestamp", item_info=info,
                                   name="ml-1m", duplicates=duplicates, source=str(ratings))
