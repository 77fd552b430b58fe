"""load_dataset: GroupLens folders and their checksums, CSV/Parquet, malformed files, registry.

Online Retail: tests/test_data_retail.py; row-numbered errors and duplicates:
tests/test_data_validation.py.
"""
import warnings

import numpy as np
import pandas as pd
import pytest

from recsys_lab.data import DataWarning, Interactions, find_movielens, list_datasets, load_dataset
from recsys_lab.data import movielens

RATINGS = [(1, 10, 5, 100), (1, 20, 3, 200), (2, 10, 4, 150), (3, 30, 1, 50), (3, 20, 2, 60)]
TITLES = {10: "Toy Story (1995)", 20: "Café Society (1995)", 30: "Heat (1995)"}


def _check_ratings(data: Interactions, rows=RATINGS):
    """Compare against the rows directly, through the raw ids."""
    assert len(data) == len(rows)
    assert data.n_users == len({r[0] for r in rows}) and data.n_items == len({r[1] for r in rows})
    got = sorted(zip(data.user_ids[data.user].tolist(), data.item_ids[data.item].tolist(),
                     data.rating.tolist(), data.timestamp.tolist()))
    assert got == sorted(rows)


@pytest.fixture
def ml100k_dir(tmp_path):
    d = tmp_path / "ml-100k"
    d.mkdir()
    (d / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS))
    flags = "|".join(["0"] * 19)
    (d / "u.item").write_bytes("".join(f"{i}|{t}|01-Jan-1995||http://x|{flags}\n"
                                       for i, t in TITLES.items()).encode("latin-1"))
    return d


@pytest.fixture
def ml1m_dir(tmp_path):
    d = tmp_path / "ml-1m"
    d.mkdir()
    (d / "ratings.dat").write_text("".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in RATINGS))
    (d / "movies.dat").write_bytes("".join(f"{i}::{t}::Comedy|Drama\n"
                                           for i, t in TITLES.items()).encode("latin-1"))
    return d


# ---- MovieLens formats ---------------------------------------------------------------------------
def test_ml100k_folder(ml100k_dir):
    with pytest.warns(DataWarning, match="sha256"):
        data = load_dataset("ml-100k", path=ml100k_dir)
    _check_ratings(data)
    assert data.name == "ml-100k"
    titles = data.item_info["title"].to_numpy()
    for raw, title in TITLES.items():
        assert titles[data.item_index(raw)[0]] == title


def test_ml100k_verify(ml100k_dir):
    with pytest.raises(ValueError, match="sha256"):
        load_dataset("ml-100k", path=ml100k_dir, verify=True)
    _check_ratings(load_dataset("ml-100k", path=ml100k_dir, verify=False))


def test_ml1m_folder_and_autodetect(ml1m_dir, ml100k_dir):
    data = load_dataset("ml-1m", path=ml1m_dir)
    _check_ratings(data)
    info = data.item_info.set_index(data.item_ids)
    assert info.loc[20, "title"] == TITLES[20] and info.loc[30, "genres"] == "Comedy|Drama"
    _check_ratings(load_dataset(ml1m_dir))                            # a folder is recognised
    _check_ratings(load_dataset(ml100k_dir, verify=False))


def _flip_one_byte(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_ml100k_each_file_checked(ml100k_dir, monkeypatch):
    """Every file the loader reads is compared with the official sha256; the warning names
    exactly the files that differ (here u.item, then u.data too), never the others."""
    official = {name: movielens.sha256sum(ml100k_dir / name) for name in ("u.data", "u.item")}
    monkeypatch.setattr(movielens, "ML100K_SHA256", {**official, "u.genre": "0" * 64})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)                  # the "official" copy: silent
        _check_ratings(load_dataset("ml-100k", path=ml100k_dir))
    _flip_one_byte(ml100k_dir / "u.item", 3)                         # a title letter
    with pytest.warns(DataWarning, match="sha256") as record:
        load_dataset("ml-100k", path=ml100k_dir)
    message = str(record[0].message)
    assert str(ml100k_dir / "u.item") in message and "u.data" not in message
    _flip_one_byte(ml100k_dir / "u.data", 0)                         # user 1 -> user 0
    with pytest.raises(ValueError, match="u.data") as e:
        load_dataset("ml-100k", path=ml100k_dir, verify=True)
    assert "u.item" in str(e.value)


def test_real_ml100k_altered_copy(tmp_path):
    folder = find_movielens("ml-100k")
    if folder is None:
        pytest.skip("MovieLens 100K folder not found (set RECSYS_LAB_ML100K)")
    copy = tmp_path / "ml-100k"
    copy.mkdir()
    for name in ("u.data", "u.item", "u.genre"):
        (copy / name).write_bytes((folder / name).read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        load_dataset("ml-100k", path=copy)                           # byte-identical: silent
    text = (copy / "u.item").read_bytes()
    at = text.index(b"Toy Story")
    _flip_one_byte(copy / "u.item", at)                              # 'Toy' -> 'Uoy'
    with pytest.warns(DataWarning, match="u.item"):
        data = load_dataset("ml-100k", path=copy)
    assert data.item_info["title"].iloc[data.item_index(1)[0]] == "Uoy Story (1995)"


@pytest.mark.parametrize("name", ["ml-100k", "ml-1m"])
def test_movielens_missing_path(tmp_path, name):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="not redistributed") as e:
        load_dataset(name, path=missing)
    assert str(missing) in str(e.value) and "path=" in str(e.value)


@pytest.mark.parametrize("content, match", [
    ("", "empty"),
    ("1,10,5,100\n2,10,4,150\n", "fields"),                          # wrong separator
    ("1\t10\t5\t100\t7\n2\t10\t4\t150\t8\n", "fields"),              # wrong field count
    ("1\t10\t5\t100\n2\t10\t4\t150\t9\n", "malformed"),              # one line too long
    ("1\t10\tfive\t100\n", "not a number"),                          # non-numeric rating
])
def test_ml100k_malformed(tmp_path, content, match):
    (tmp_path / "u.data").write_text(content)
    with pytest.raises(ValueError, match=match) as e:
        load_dataset("ml-100k", path=tmp_path, verify=False)
    assert "u.data" in str(e.value)


def test_ml1m_malformed(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::10::5\n")
    with pytest.raises(ValueError, match="ratings.dat"):
        load_dataset("ml-1m", path=tmp_path)


# ---- CSV / Parquet -------------------------------------------------------------------------------
def _frame():
    return pd.DataFrame({"customer": ["c2", "c1", "c1", "c3"], "sku": ["B", "A", "B", "C"],
                         "stars": [4.0, 5.0, 3.0, 1.0],
                         "when": ["2024-01-02 10:00:00", "2024-01-01 09:00:00",
                                  "2024-01-01 09:05:00", "2024-01-03 00:00:00"]})


@pytest.mark.parametrize("ext", ["csv", "parquet", "tsv"])
def test_table_files(tmp_path, ext):
    df = _frame()
    path = tmp_path / f"events.{ext}"
    {"csv": lambda: df.to_csv(path, index=False), "tsv": lambda: df.to_csv(path, sep="\t", index=False),
     "parquet": lambda: df.to_parquet(path)}[ext]()
    data = load_dataset(str(path), user_col="customer", item_col="sku", rating_col="stars",
                        timestamp_col="when")
    assert data.name == "events"
    assert list(data.user_ids) == ["c1", "c2", "c3"] and list(data.item_ids) == ["A", "B", "C"]
    expected = [int(pd.Timestamp(w).timestamp()) for w in df["when"]]
    got = sorted(zip(data.user_ids[data.user], data.item_ids[data.item], data.rating, data.timestamp))
    assert got == sorted(zip(df["customer"], df["sku"], df["stars"], expected))


def test_csv_defaults_and_session(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,item,basket\n1,7,a\n1,8,a\n2,7,b\n")
    data = load_dataset(path, session_col="basket")
    assert data.rating is None and data.timestamp is None
    assert data.session.tolist() == [0, 0, 1]


@pytest.mark.parametrize("content, match", [
    ("", "empty"),
    ("user,item,rating\n", "no interactions"),                       # header only
    ("user,item,rating\n1,2,3\n1,3,4,5,6\n", "malformed"),           # too many fields
    ("user,item,rating\n1,2,3\n2\n", "missing values"),              # too few fields
    ("user,item,rating\n1,2,3\n2,3,good\n", "non-numeric"),
])
def test_csv_malformed(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as e:
        load_dataset(path, rating_col="rating")
    assert "bad.csv" in str(e.value)


def test_parquet_malformed_and_empty(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not a parquet file at all")
    with pytest.raises(ValueError, match="bad.parquet"):
        load_dataset(path)
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"user": pd.Series([], dtype=int), "item": pd.Series([], dtype=int)}).to_parquet(empty)
    with pytest.raises(ValueError, match="empty.parquet"):
        load_dataset(empty)


def test_missing_column(tmp_path):
    path = tmp_path / "events.csv"
    _frame().to_csv(path, index=False)
    with pytest.raises(KeyError, match="nope") as e:
        load_dataset(path, user_col="customer", item_col="sku", rating_col="nope")
    assert "available" in str(e.value) and "stars" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load_dataset(tmp_path / "missing.csv")


# ---- registry ------------------------------------------------------------------------------------
def test_registry_names_and_errors():
    names = list_datasets()
    assert {"online-retail", "ml-100k", "ml-1m", "synthetic", "planted"} <= set(names)
    with pytest.raises(ValueError, match="online-retail") as e:
        load_dataset("ml-10m")
    assert "ml-10m" in str(e.value) and "synthetic" in str(e.value)
    with pytest.raises(TypeError, match="n_userz"):
        load_dataset("synthetic", n_userz=3)
    syn = load_dataset("synthetic", n_users=50, n_items=30, n_events=400, seed=3)
    assert (syn.n_users, syn.n_items, len(syn)) == (50, 30, 400)


# ---- MovieLens 100K, when the real folder is at hand ---------------------------------------------
def test_real_ml100k():
    folder = find_movielens("ml-100k")
    if folder is None:
        pytest.skip("MovieLens 100K folder not found (set RECSYS_LAB_ML100K)")
    data = load_dataset("ml-100k", path=folder, verify=True)
    assert (len(data), data.n_users, data.n_items) == (100_000, 943, 1_682)
    raw = pd.read_csv(folder / "u.data", sep="\t", header=None, names=["u", "i", "r", "t"])
    assert np.array_equal(np.bincount(data.rating.astype(int)), np.bincount(raw["r"]))
    assert data.to_csr().nnz == 100_000 and data.user_counts().min() >= 20
    assert data.item_info["title"].iloc[data.item_index(1)[0]] == "Toy Story (1995)"
