"""Online Retail: the embedded file, copies given by path= (sha256), and the Online Retail II layout."""
import collections
import os
import shutil
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_lab.data import DataWarning, load_dataset
from recsys_lab.data import retail

EMBEDDED = retail.DATA_DIR / retail.ONLINE_RETAIL_FILE
# the CSV copy of shared/data (../shared next to the repository, or $RECSYS_LAB_ONLINE_RETAIL_CSV)
SHARED_CSV = Path(os.environ.get("RECSYS_LAB_ONLINE_RETAIL_CSV") or Path(__file__).resolve().parents[2]
                  / "shared" / "data" / "online-retail" / "online_retail.csv.gz")


# ---- the embedded file ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def retail_data():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)                  # known copy: no warning
        return load_dataset("online-retail")


@pytest.fixture(scope="module")
def retail_raw():
    return pd.read_parquet(EMBEDDED)


@pytest.fixture(scope="module")
def kept(retail_raw):
    """The documented filter, written independently row by row."""
    raw = retail_raw
    keep = [cid is not pd.NA and not inv.startswith("C") and q > 0
            for cid, inv, q in zip(raw["CustomerID"], raw["InvoiceNo"], raw["Quantity"])]
    return raw[keep]


def test_online_retail_counts(retail_data, kept):
    data = retail_data
    assert (len(data), data.n_users, data.n_items) == (397_924, 4_339, 3_665)
    assert data.name == "online-retail" and data.rating is None
    assert len(np.unique(data.session)) == 18_536
    assert data.to_csr().nnz == 266_802
    assert collections.Counter(data.user_ids[data.user].tolist()) == \
        collections.Counter(kept["CustomerID"].astype(int).tolist())
    assert collections.Counter(data.item_ids[data.item].tolist()) == \
        collections.Counter(kept["StockCode"].tolist())
    ts = kept["InvoiceDate"].map(lambda d: int(d.timestamp())).to_numpy()
    assert np.array_equal(data.timestamp, ts)                         # row order is kept


def test_online_retail_item_info(retail_data, kept):
    info = retail_data.item_info
    assert list(info.columns[:2]) == ["title", "price"] and len(info) == retail_data.n_items
    raw = kept
    for code in ["85123A", "22423", "POST", str(retail_data.item_ids[0])]:
        rows = raw[raw["StockCode"] == code]
        counts = collections.Counter(d.strip() for d in rows["Description"].dropna() if d.strip())
        best = max(counts.values())
        i = retail_data.item_index(code)[0]
        assert info["title"].iloc[i] == min(t for t, c in counts.items() if c == best)
        assert info["price"].iloc[i] == pytest.approx(np.median(rows["UnitPrice"].to_numpy()))


def test_online_retail_duplicates_and_non_products(kept):
    """The 5,192 repeated invoice lines are documented and kept; 'warn' counts them, 'drop'
    removes them; drop_non_products removes postage, fees and manual lines."""
    n_repeated = int(kept.duplicated().sum())
    assert n_repeated == 5_192
    with pytest.warns(DataWarning, match="5,192 duplicated row"):
        load_dataset("online-retail", duplicates="warn")
    dropped = load_dataset("online-retail", duplicates="drop")
    assert len(dropped) == len(kept.drop_duplicates()) == 397_924 - 5_192
    codes = {"POST", "DOT", "C2", "M", "BANK CHARGES"}                # the ones in the cleaned file
    products = load_dataset("online-retail", drop_non_products=True)
    expected = sum(code not in codes for code in kept["StockCode"])
    assert len(products) == expected == 397_924 - 1_550
    assert not set(products.item_ids[products.item].tolist()) & codes


def test_online_retail_checksum(tmp_path, monkeypatch):
    bad = tmp_path / retail.ONLINE_RETAIL_FILE
    shutil.copy(EMBEDDED, bad)
    with open(bad, "r+b") as f:                                     # flip one byte mid-file
        f.seek(1_000_000)
        b = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(ValueError, match="sha256"):
        load_dataset("online-retail", path=bad, sha256=retail.ONLINE_RETAIL_SHA256)
    monkeypatch.setattr(retail, "DATA_DIR", tmp_path)               # the embedded copy is corrupt
    with pytest.raises(ValueError, match="sha256"):
        load_dataset("online-retail")
    monkeypatch.setattr(retail, "DATA_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="path="):
        load_dataset("online-retail")


def test_online_retail_identical_copy_is_silent(tmp_path):
    copy = tmp_path / "retail.parquet"
    shutil.copy(EMBEDDED, copy)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        data = load_dataset("online-retail", path=copy)
    assert (len(data), data.n_users, data.n_items) == (397_924, 4_339, 3_665)


def test_online_retail_one_byte_change_is_noticed(tmp_path, retail_data):
    """One flipped bit in a copy still loads (a dictionary page: 'RUBBERS' -> 'RUKBERS'); the
    warning names the file; verify=True refuses it, verify=False skips the check."""
    copy = tmp_path / "my_retail.parquet"
    data = bytearray(EMBEDDED.read_bytes())
    data[1_000_000] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.warns(DataWarning) as record:
        altered = load_dataset("online-retail", path=copy)
    messages = [str(w.message) for w in record]
    assert any(str(copy) in m and "sha256" in m and "Online Retail" in m for m in messages)
    changed = retail_data.item_info["title"] != altered.item_info["title"]
    assert changed.sum() >= 1                                         # the change is real
    with pytest.raises(ValueError, match="sha256") as e:
        load_dataset("online-retail", path=copy, verify=True)
    assert str(copy) in str(e.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_dataset("online-retail", path=copy, verify=False, duplicates="keep")
    assert not [w for w in caught if issubclass(w.category, DataWarning)]


def test_online_retail_unreadable_copy_names_checksum(tmp_path):
    copy = tmp_path / "cut.parquet"
    copy.write_bytes(EMBEDDED.read_bytes()[:-100])                  # footer cut off
    with pytest.raises(ValueError, match="unreadable") as e:
        load_dataset("online-retail", path=copy)
    assert str(copy) in str(e.value) and "sha256" in str(e.value)


def test_online_retail_ii_layout_of_the_real_rows(tmp_path, retail_data, retail_raw):
    """The embedded rows renamed to the Online Retail II columns load to the same events."""
    path = tmp_path / "online_retail_II.parquet"
    renamed = dict(zip(retail.LAYOUTS["Online Retail"], retail.LAYOUTS["Online Retail II"]))
    retail_raw.rename(columns=renamed).to_parquet(path)
    data = load_dataset("online-retail", path=path, duplicates="keep")
    assert data.name == "online-retail-ii"
    for attr in ("user", "item", "timestamp", "session", "user_ids", "item_ids"):
        assert np.array_equal(getattr(data, attr), getattr(retail_data, attr)), attr
    pd.testing.assert_frame_equal(data.item_info, retail_data.item_info)


def test_online_retail_shared_csv_copy(retail_data):
    """The CSV export of the same rows (a known copy) loads to the same Interactions."""
    if not SHARED_CSV.exists():
        pytest.skip(f"{SHARED_CSV} not at hand")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        data = load_dataset("online-retail", path=SHARED_CSV)
    for attr in ("user", "item", "timestamp", "session", "user_ids", "item_ids"):
        assert np.array_equal(getattr(data, attr), getattr(retail_data, attr)), attr
    pd.testing.assert_frame_equal(data.item_info, retail_data.item_info)


# ---- Online Retail II layout ---------------------------------------------------------------------
II = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID",
      "Country"]
# (Invoice, StockCode, Description, Quantity, InvoiceDate, Price, Customer ID, Country)
ROWS = [
    ("489434", "85048", "15CM CHRISTMAS GLASS BALL 20 LIGHTS", 12, "2009-12-01 07:45:00", 6.95, 13085, "United Kingdom"),  # 1 kept
    ("489434", "79323P", "PINK CHERRY LIGHTS", 12, "2009-12-01 07:45:00", 6.75, 13085, "United Kingdom"),  # 2 kept
    ("489434", "85048", "15CM CHRISTMAS GLASS BALL 20 LIGHTS", 12, "2009-12-01 07:45:00", 6.95, 13085, "United Kingdom"),  # 3 = row 1
    ("C489449", "22087", "PAPER BUNTING WHITE LACE", -12, "2009-12-01 10:33:00", 2.95, 16321, "Australia"),  # 4 cancelled
    ("489435", "22350", "CAT BOWL ", 12, "2009-12-01 07:46:00", 2.55, None, "United Kingdom"),  # 5 no customer
    ("489436", "21523", "DOORMAT FANCY FONT HOME SWEET HOME", 0, "2009-12-01 09:06:00", 5.95, 13078, "United Kingdom"),  # 6 quantity 0
    ("489436", "22111", "SCOTTIE DOG HOT WATER BOTTLE", -3, "2009-12-01 09:06:00", 4.95, 13078, "United Kingdom"),  # 7 quantity < 0
    ("489437", "POST", "POSTAGE", 1, "2009-12-01 09:08:00", 18.0, 12682, "France"),  # 8 postage
    ("489437", "22350", "CAT BOWL", 6, "2009-12-01 09:08:00", 2.10, 12682, "France"),  # 9 kept
    ("489438", "DOT", "DOTCOM POSTAGE", 1, "2009-12-01 09:24:00", 11.0, 18102, "United Kingdom"),  # 10 postage
    ("489438", "M", "Manual", 1, "2009-12-01 09:24:00", 1.0, 18102, "United Kingdom"),  # 11 manual
    ("489439", "BANK CHARGES", "Bank Charges", 1, "2009-12-01 10:00:00", 15.0, 13085, "United Kingdom"),  # 12 fee
    ("A506401", "B", "Adjust bad debt", 1, "2010-04-29 13:36:00", -53594.36, None, "United Kingdom"),  # 13 no customer
    ("489440", "gift_0001_20", "Dotcomgiftshop Gift Voucher £20.00", 1, "2009-12-01 11:00:00", 17.0, 18102, "United Kingdom"),  # 14 voucher
    ("489441", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, "2009-12-02 12:00:00", 2.55, 12682, "France"),  # 15 kept
    ("489441", "85123A", "CREAM HANGING HEART T-LIGHT HOLDER", 6, "2009-12-02 12:00:00", 2.95, 12682, "France"),  # 16 kept (other line)
    ("489442", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 4, "2009-12-03 08:00:00", 2.95, 13085, "United Kingdom"),  # 17 kept
]
KEPT = [1, 2, 3, 8, 9, 10, 11, 12, 14, 15, 16, 17]                    # by hand, from the notes above
PRODUCTS = [1, 2, 3, 9, 15, 16, 17]                                   # without postage, fees, vouchers


def _seconds(text):
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp())


def _expected(rows):
    """(customer, stock code, seconds, invoice) of the 1-based ``rows`` of ROWS, in file order."""
    return [(ROWS[r - 1][6], ROWS[r - 1][1], _seconds(ROWS[r - 1][4]), ROWS[r - 1][0]) for r in rows]


def _events(data):
    invoices = sorted({ROWS[r - 1][0] for r in KEPT if ROWS[r - 1][1] in set(data.item_ids)})
    return list(zip(data.user_ids[data.user].tolist(), data.item_ids[data.item].tolist(),
                    data.timestamp.tolist(), [invoices[s] for s in data.session]))


def _write(tmp_path, style, columns=II):
    frame = pd.DataFrame(ROWS, columns=columns)
    if style == "parquet":                     # typed, as pandas reads the sheet
        frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
        frame[columns[6]] = frame[columns[6]].astype("float64")
        path = tmp_path / "online_retail_II.parquet"
        frame.to_parquet(path)
    elif style == "csv":                       # pandas export: Customer ID as 13085.0
        frame[columns[6]] = frame[columns[6]].astype("float64")
        path = tmp_path / "online_retail_II.csv"
        frame.to_csv(path, index=False)
    else:                                      # a spreadsheet's CSV: m/d/yyyy h:mm, BOM
        def cell(v, c):
            if c == "InvoiceDate":
                d = datetime.strptime(v, "%Y-%m-%d %H:%M:%S")
                return f"{d.month}/{d.day}/{d.year} {d.hour}:{d.minute:02d}"
            return "" if v is None else str(v)
        lines = [",".join(columns)] + [",".join(cell(v, c) for v, c in zip(row, columns))
                                        for row in ROWS]
        path = tmp_path / "online_retail_II_sheet.csv"
        path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


@pytest.mark.parametrize("style", ["parquet", "csv", "sheet"])
def test_online_retail_ii_cleaning_row_by_row(tmp_path, style):
    path = _write(tmp_path, style)
    with pytest.warns(DataWarning, match="row 3 repeats row 1"):     # unknown file: duplicates told
        data = load_dataset("online-retail", path=path)
    assert data.name == "online-retail-ii"
    assert _events(data) == _expected(KEPT)
    info = data.item_info.set_index(data.item_ids)
    assert info.loc["85123A", "title"] == "WHITE HANGING HEART T-LIGHT HOLDER"   # 2 of 3 lines
    assert info.loc["85123A", "price"] == pytest.approx(2.95)                    # median(2.55, 2.95, 2.95)
    assert info.loc["22350", "title"] == "CAT BOWL" and info.loc["22350", "price"] == pytest.approx(2.10)

    products = load_dataset("online-retail", path=path, drop_non_products=True, duplicates="keep")
    assert _events(products) == _expected(PRODUCTS)
    deduplicated = load_dataset("online-retail", path=path, duplicates="drop")
    assert _events(deduplicated) == _expected([r for r in KEPT if r != 3])


def test_online_retail_ii_same_cleaning_as_online_retail(tmp_path):
    """The same rows in the Online Retail layout give the same Interactions."""
    one = tmp_path / "one"
    one.mkdir()
    old = _write(one, "csv", columns=retail.LAYOUTS["Online Retail"])
    new = _write(tmp_path, "csv")
    a = load_dataset("online-retail", path=old, duplicates="keep", verify=False)
    b = load_dataset("online-retail", path=new, duplicates="keep")
    assert a.name == "online-retail"
    for attr in ("user", "item", "timestamp", "session", "user_ids", "item_ids"):
        assert np.array_equal(getattr(a, attr), getattr(b, attr)), attr
    pd.testing.assert_frame_equal(a.item_info, b.item_info)


def test_online_retail_unknown_layout(tmp_path):
    path = tmp_path / "orders.csv"
    pd.DataFrame({"Invoice": ["1"], "StockCode": ["A"], "Qty": [1], "InvoiceDate": ["2010-01-01"],
                  "Price": [1.0], "CustomerID": [1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="not a known Online Retail layout") as e:
        load_dataset("online-retail", path=path)
    message = str(e.value)
    for column in retail.LAYOUTS["Online Retail"] + retail.LAYOUTS["Online Retail II"] + ["Qty"]:
        assert column in message
    assert str(path) in message


def test_online_retail_ii_verify_true_refused(tmp_path):
    with pytest.raises(ValueError, match="no published copy"):
        load_dataset("online-retail", path=_write(tmp_path, "csv"), verify=True)


@pytest.mark.parametrize("column, value, match", [
    ("Quantity", "twelve", "non-numeric or missing values in column 'Quantity' at row 2 \\('twelve'\\)"),
    ("Customer ID", "13085.5", "non-integer values in column 'Customer ID' at row 2 \\('13085.5'\\)"),
    ("InvoiceDate", "yesterday", "unparseable values in column 'InvoiceDate' at row 2 \\('yesterday'\\)"),
    ("StockCode", "", "missing values in column 'StockCode' at row 2 \\(missing\\)"),
    ("Price", "", "missing values in column 'Price' at row 2"),
])
def test_online_retail_ii_bad_values_name_the_row(tmp_path, column, value, match):
    path = _write(tmp_path, "csv")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[1, column] = value
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=match) as e:
        load_dataset("online-retail", path=path)
    assert str(path) in str(e.value)
