"""UCI Online Retail (embedded) and Online Retail II (from a file) as implicit purchases.

    load_dataset("online-retail")                            # data/online_retail.parquet
    load_dataset("online-retail", path="online_retail_II.csv")   # either layout, CSV or Parquet

Both layouts (detected from the column names) go through one cleaning, :func:`clean_purchases`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .files import check_sha256, is_known_copy, read_table, report_unknown_copies
from .interactions import Interactions
from .registry import register_dataset
from .validation import check_present, duplicate_rows_to_keep, numeric_values, timestamp_seconds

DATA_DIR = Path(__file__).resolve().parents[2] / "data"          # repo root data/
ONLINE_RETAIL_FILE = "online_retail.parquet"
ONLINE_RETAIL_SHA256 = "823f376e39d39f756a3b637bbc5e14cb3dd4e8f9e5f3a1b2b49ccac829d2f154"
# Verified copies of UCI Online Retail (data/README.md, shared/data/online-retail/SOURCE.md).
KNOWN_COPIES = {
    ONLINE_RETAIL_SHA256: "online_retail.parquet, the embedded copy",
    "518b36c8452f511e938535aebce2c3ea051432fe999bd85e81720ebb07af5931":
        "BenJMcCarty/UCI_Dataset_Online_Retail@60b05eb data/Online Retail.parquet, as obtained",
    "24bb5fccf34d11309a5b1462ea4b875ebf120ec76fb38b2df2ddc308656f0623": "online_retail.csv.gz",
    "959c8b3847939247e4007cbbd6dfcf3fdc78bc8236a08eba94565e15679914d8": "online_retail.csv",
}
# The two layouts, in the same order; the last column (Country) is optional.
LAYOUTS = {
    "Online Retail": ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                      "UnitPrice", "CustomerID", "Country"],
    "Online Retail II": ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate",
                         "Price", "Customer ID", "Country"],
}
# Stock codes that are not products: postage (POST, DOT: dotcom postage, C2: carriage), manual
# entries (M, m), discount (D), samples (S), bad-debt adjustment (B, ADJUST*), fees (BANK CHARGES,
# AMAZONFEE, CRUK commission), test lines (TEST*), gift vouchers (gift_0001_*). All but the
# ADJUST / TEST codes occur in the embedded file; those two families are Online Retail II's.
NON_PRODUCT_CODES = frozenset({"POST", "DOT", "C2", "M", "m", "D", "S", "B", "BANK CHARGES",
                               "AMAZONFEE", "CRUK", "ADJUST", "ADJUST2", "TEST001", "TEST002"})
NON_PRODUCT_PREFIXES = ("gift_",)


def is_non_product(codes: pd.Series) -> np.ndarray:
    """Boolean mask of stock codes in ``NON_PRODUCT_CODES`` or starting with a voucher prefix."""
    codes = codes.astype(str)
    return (codes.isin(NON_PRODUCT_CODES) | codes.str.startswith(NON_PRODUCT_PREFIXES)).to_numpy(bool)


def detect_layout(columns, source) -> str:
    """'Online Retail' or 'Online Retail II' from the column names; ValueError listing both."""
    for layout, expected in LAYOUTS.items():
        if all(c in columns for c in expected[:-1]):
            return layout
    wanted = "; or ".join(f"{k}: {', '.join(v)}" for k, v in LAYOUTS.items())
    raise ValueError(f"{source}: not a known Online Retail layout. Expected the columns of {wanted} "
                     f"(Country optional); found {list(columns)}")


def clean_purchases(raw: pd.DataFrame, source, layout: str = "Online Retail",
                    drop_non_products: bool = False) -> pd.DataFrame:
    """The purchase events of a table in one of the ``LAYOUTS``, in the Online Retail columns.

    Keeps rows with a CustomerID, an InvoiceNo not starting with "C" (cancellation) and
    Quantity > 0 (and, with ``drop_non_products``, a stock code that is a product). Every row is
    checked first: a missing invoice, stock code or date, a Quantity that is not a whole number,
    a UnitPrice that is not a number, a CustomerID that is neither missing nor a whole number, an
    unparseable date are ValueErrors naming the column (as in the file) and the rows. Returns the
    kept rows in file order, ``row`` = their 0-based position in ``raw``, InvoiceDate in seconds
    (UK local time read as UTC).
    """
    col = dict(zip(LAYOUTS["Online Retail"], LAYOUTS[layout]))     # our name -> the file's
    for c in ("InvoiceNo", "StockCode"):
        check_present(raw[col[c]], col[c], source)
    invoice, code = raw[col["InvoiceNo"]].astype(str), raw[col["StockCode"]].astype(str)
    quantity = numeric_values(raw[col["Quantity"]], col["Quantity"], source, integer=True)
    price = numeric_values(raw[col["UnitPrice"]], col["UnitPrice"], source)
    customer = numeric_values(raw[col["CustomerID"]], col["CustomerID"], source, integer=True,
                              allow_missing=True)
    seconds = timestamp_seconds(raw[col["InvoiceDate"]], col["InvoiceDate"], source)
    keep = ~np.isnan(customer) & ~invoice.str.startswith("C").to_numpy(bool) & (quantity > 0)
    if drop_non_products:
        keep &= ~is_non_product(code)
    country = raw[col["Country"]] if col["Country"] in raw.columns else \
        pd.Series(pd.NA, index=raw.index, dtype="string")
    return pd.DataFrame({
        "InvoiceNo": invoice[keep].to_numpy(), "StockCode": code[keep].to_numpy(),
        "Description": raw[col["Description"]][keep].to_numpy(),
        "Quantity": quantity[keep].astype(np.int64), "InvoiceDate": seconds[keep],
        "UnitPrice": price[keep], "CustomerID": customer[keep].astype(np.int64),
        "Country": country[keep].to_numpy(), "row": np.flatnonzero(keep)})


@register_dataset("online-retail", "UCI Online Retail purchases (CC BY 4.0), embedded: 397,924 "
                  "events, 4,339 customers, 3,665 stock codes, invoices as sessions; or an "
                  "Online Retail / Online Retail II file (path=)")
def load_online_retail(path: str | os.PathLike | None = None, sha256: str | None = None,
                       verify: bool | None = None, duplicates: str | None = None,
                       drop_non_products: bool = False) -> Interactions:
    """UCI Online Retail (Chen et al. 2012), or a file in its layout or in Online Retail II's
    (Invoice, StockCode, Description, Quantity, InvoiceDate, Price, Customer ID, Country;
    Parquet or a CSV exported from its sheets), as implicit purchases.

    Cleaning (:func:`clean_purchases`): rows with a customer, no "C" invoice and Quantity > 0;
    ``drop_non_products`` also drops ``NON_PRODUCT_CODES`` (postage, fees, ...; default off, so
    the embedded counts stay the documented ones). user = CustomerID, item = StockCode,
    timestamp = InvoiceDate, session = InvoiceNo (one basket), no rating. ``item_info``:
    ``title`` (the item's most frequent stripped Description, ties to the alphabetically first,
    the StockCode when none) and ``price`` (median UnitPrice). Name: "online-retail", or
    "online-retail-ii" for that layout.

    Checksums: the embedded file, and any file when ``sha256`` is given, must match (ValueError).
    A ``path`` in the Online Retail layout is compared with the known copies (``KNOWN_COPIES``)
    under ``verify`` (None warns naming the file, True raises, False skips); Online Retail II has
    no published copy to compare with, so ``verify=True`` refuses it.

    ``duplicates`` (policy in ``recsys_lab.data.validation``): rows equal in every column. Default
    "keep" for a verified copy, whose 5,192 repeated invoice lines are part of the documented
    counts, "warn" for any other file.
    """
    embedded = path is None
    if embedded:
        path = DATA_DIR / ONLINE_RETAIL_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"the embedded Online Retail file is missing: {path}. It ships in the repository's "
                "data/ folder (a pip-installed package does not carry it); pass "
                "path='.../online_retail.parquet'")
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"Online Retail file not found: {path}")
    if embedded or sha256 is not None:
        check_sha256(path, sha256 or ONLINE_RETAIL_SHA256)
    verified = embedded or sha256 is not None or (verify is not False
                                                  and is_known_copy(path, KNOWN_COPIES))
    try:
        raw = read_table(path, as_text=True)
    except ValueError as e:
        note = "" if verified or verify is False else \
            "; its sha256 also matches no known copy of UCI Online Retail"
        raise ValueError(f"{e}{note}") from None
    raw.columns = [str(c).lstrip("\ufeff").strip() for c in raw.columns]
    layout = detect_layout(raw.columns, path)
    if layout == "Online Retail II":
        if verify and not verified:
            raise ValueError(f"{path}: verify=True, but Online Retail II has no published copy "
                             "whose sha256 could be checked; pass sha256= or verify=None")
    elif not verified:
        report_unknown_copies([path], "UCI Online Retail", verify)
    events = clean_purchases(raw, path, layout, drop_non_products)
    keep = duplicate_rows_to_keep(events.drop(columns="row"),
                                  duplicates or ("keep" if verified else "warn"), path,
                                  row_numbers=events["row"].to_numpy())
    if keep is not None:
        events = events.loc[keep].reset_index(drop=True)
    name = "online-retail-ii" if layout == "Online Retail II" else "online-retail"
    return Interactions.from_frame(events, "CustomerID", "StockCode", timestamp_col="InvoiceDate",
                                   session_col="InvoiceNo", item_info=retail_item_info(events),
                                   name=name, duplicates="keep", source=str(path))


def retail_item_info(df: pd.DataFrame) -> pd.DataFrame:
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
