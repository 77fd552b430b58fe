"""load_dataset: GroupLens folders, CSV/Parquet, malformed files, the embedded Online Retail."""
import collections
import shutil

import numpy as np
import pandas as pd
import pytest

from recsys_lab.data import Interactions, find_movielens, list_datasets, load_dataset
from recsys_lab.data import loaders

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
    with pytest.warns(UserWarning, match="sha256"):
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


# ---- Online Retail (embedded) --------------------------------------------------------------------
@pytest.fixture(scope="module")
def retail():
    return load_dataset("online-retail")


@pytest.fixture(scope="module")
def retail_raw():
    return pd.read_parquet(loaders.DATA_DIR / loaders.ONLINE_RETAIL_FILE)


def test_online_retail_counts(retail, retail_raw):
    assert (len(retail), retail.n_users, retail.n_items) == (397_924, 4_339, 3_665)
    assert retail.name == "online-retail" and retail.rating is None
    assert len(np.unique(retail.session)) == 18_536
    assert retail.to_csr().nnz == 266_802
    # the same filter, written independently row by row
    raw = retail_raw
    keep = [cid is not pd.NA and not inv.startswith("C") and q > 0
            for cid, inv, q in zip(raw["CustomerID"], raw["InvoiceNo"], raw["Quantity"])]
    kept = raw[keep]
    assert collections.Counter(retail.user_ids[retail.user].tolist()) == \
        collections.Counter(kept["CustomerID"].astype(int).tolist())
    assert collections.Counter(retail.item_ids[retail.item].tolist()) == \
        collections.Counter(kept["StockCode"].tolist())
    ts = kept["InvoiceDate"].map(lambda d: int(d.timestamp())).to_numpy()
    assert np.array_equal(retail.timestamp, ts)                       # row order is kept


def test_online_retail_item_info(retail, retail_raw):
    info = retail.item_info
    assert list(info.columns[:2]) == ["title", "price"] and len(info) == retail.n_items
    raw = retail_raw[retail_raw["CustomerID"].notna() & (retail_raw["Quantity"] > 0)
                     & ~retail_raw["InvoiceNo"].str.startswith("C")]
    for code in ["85123A", "22423", "POST", str(retail.item_ids[0])]:
        rows = raw[raw["StockCode"] == code]
        counts = collections.Counter(d.strip() for d in rows["Description"].dropna() if d.strip())
        best = max(counts.values())
        i = retail.item_index(code)[0]
        assert info["title"].iloc[i] == min(t for t, c in counts.items() if c == best)
        assert info["price"].iloc[i] == pytest.approx(np.median(rows["UnitPrice"].to_numpy()))


def test_online_retail_checksum(tmp_path, monkeypatch):
    bad = tmp_path / loaders.ONLINE_RETAIL_FILE
    shutil.copy(loaders.DATA_DIR / loaders.ONLINE_RETAIL_FILE, bad)
    with open(bad, "r+b") as f:                                     # flip one byte mid-file
        f.seek(1_000_000)
        b = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(ValueError, match="sha256"):
        load_dataset("online-retail", path=bad, sha256=loaders.ONLINE_RETAIL_SHA256)
    monkeypatch.setattr(loaders, "DATA_DIR", tmp_path)               # the embedded copy is corrupt
    with pytest.raises(ValueError, match="sha256"):
        load_dataset("online-retail")
    monkeypatch.setattr(loaders, "DATA_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="path="):
        load_dataset("online-retail")


def test_online_retail_other_copy(tmp_path):
    copy = tmp_path / "retail.parquet"
    shutil.copy(loaders.DATA_DIR / loaders.ONLINE_RETAIL_FILE, copy)
    data = load_dataset("online-retail", path=copy)
    assert (len(data), data.n_users, data.n_items) == (397_924, 4_339, 3_665)


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
