"""Values checked row by row, and the one duplicate-row policy of every loader.

Rows are numbered from 1 in table order: row 1 is a CSV's first line after its header, or a
Parquet file's (a DataFrame's) first record. Every value error names the column, the offending
rows (the first five) with their values, and how many there are in all.

**Duplicated rows** (``duplicates=`` of ``Interactions.from_frame``, ``load_dataset`` and every
file loader). A row is a duplicate when it equals an earlier row in every column that is read
(user, item, and rating / timestamp / session when given; for Online Retail every column of the
invoice line). Policies:

- ``"warn"`` (default): every row is kept (a repeated event counts twice, as a log says) and one
  :class:`DataWarning` gives the count and the first rows, each with the row it repeats;
- ``"keep"``: the same, without the warning;
- ``"drop"``: only the first row of each group of equal rows is kept;
- ``"raise"``: a ValueError naming the rows.

Known data sets whose duplicates are documented (the embedded Online Retail) load with ``"keep"``
unless told otherwise; see data/README.md.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .files import DataWarning

DUPLICATE_POLICIES = ("warn", "keep", "drop", "raise")
_SHOWN = 5


def _rows_text(positions: np.ndarray, col: pd.Series | None = None) -> str:
    """'rows 2 ('x'), 7 (missing) (3 in all)' for 0-based ``positions``."""
    parts = []
    for p in positions[:_SHOWN]:
        if col is None:
            parts.append(str(p + 1))
        else:
            v = col.iloc[p]
            shown = "missing" if pd.isna(v) else repr(v) if isinstance(v, str) else str(v)
            parts.append(f"{p + 1} ({shown})")
    more = f", ... ({len(positions):,} in all)" if len(positions) > _SHOWN else ""
    return f"row{'s' if len(positions) > 1 else ''} {', '.join(parts)}{more}"


def _fail(source, column: str, what: str, bad: np.ndarray, col: pd.Series):
    raise ValueError(f"{source}: {what} in column {column!r} at "
                     f"{_rows_text(np.flatnonzero(bad), col)}")


def check_present(col: pd.Series, column: str, source) -> None:
    """ValueError naming the rows where ``col`` is missing (user / item ids)."""
    bad = col.isna().to_numpy(bool)
    if bad.any():
        _fail(source, column, "missing values", bad, col)


def numeric_values(col: pd.Series, column: str, source, integer: bool = False,
                   allow_missing: bool = False) -> np.ndarray:
    """``col`` as float64; ValueError naming the rows that are not finite numbers (or not whole
    numbers with ``integer``; missing ones are NaN with ``allow_missing``)."""
    num = pd.to_numeric(col, errors="coerce")
    values = num.to_numpy(dtype="float64", na_value=np.nan)
    missing = col.isna().to_numpy(bool)
    bad = ~np.isfinite(values) & ~(missing & allow_missing)
    if bad.any():
        what = "missing values" if missing[bad].all() else "non-numeric or missing values"
        _fail(source, column, what, bad, col)
    if integer:
        frac = np.isfinite(values) & (values != np.round(values))
        if frac.any():
            _fail(source, column, "non-integer values", frac, col)
    return values


def timestamp_seconds(col: pd.Series, column: str, source) -> np.ndarray:
    """Seconds since the epoch (int64) from datetimes, numbers or date strings (parsed by
    ``pd.to_datetime``; zone-aware times are converted to UTC, naive ones are read as UTC);
    ValueError naming the rows that are missing or do not parse."""
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    else:
        if pd.api.types.is_integer_dtype(col) and not col.isna().any():
            return col.to_numpy(np.int64)                            # exact beyond 2**53
        num = pd.to_numeric(col, errors="coerce")
        if num.notna().all():
            return numeric_values(col, column, source).astype(np.int64)
        parsed = pd.to_datetime(col, errors="coerce")
    bad = parsed.isna().to_numpy(bool)
    if bad.any():
        what = "missing values" if col.isna().to_numpy(bool)[bad].all() else "unparseable values"
        _fail(source, column, what, bad, col)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return (parsed.astype("datetime64[ns]").astype("int64") // 10**9).to_numpy(np.int64)


def duplicate_rows_to_keep(frame: pd.DataFrame, policy: str, source,
                           row_numbers: np.ndarray | None = None) -> np.ndarray | None:
    """Apply the duplicate policy (module docstring) to the rows of ``frame``, whose columns are
    those that define equality. Returns the boolean mask of rows to keep, or None for all.

    ``row_numbers`` (0-based, one per row) are the positions named in messages when ``frame``
    is a filtered view of a file (default: the positions in ``frame``).
    """
    if policy not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates={policy!r}: expected one of {list(DUPLICATE_POLICIES)}")
    if policy == "keep" or len(frame) == 0:
        return None
    dup = frame.duplicated().to_numpy(bool)
    if not dup.any():
        return None
    if policy == "drop":
        return ~dup
    group = frame.groupby(list(frame.columns), sort=False, dropna=False).ngroup().to_numpy()
    _, first_of_group = np.unique(group, return_index=True)
    rows = np.arange(len(frame)) if row_numbers is None else np.asarray(row_numbers)
    repeats = np.flatnonzero(dup)
    pairs = ", ".join(f"row {rows[r] + 1} repeats row {rows[first_of_group[group[r]]] + 1}"
                      for r in repeats[:_SHOWN])
    msg = (f"{source}: {len(repeats):,} duplicated row(s), each equal to an earlier row in "
           f"{list(frame.columns)}: {pairs}{', ...' if len(repeats) > _SHOWN else ''}")
    if policy == "raise":
        raise ValueError(msg + " (duplicates='raise')")
    warnings.warn(msg + "; all rows kept (duplicates='drop' keeps the first of each, 'keep' "
                  "accepts them silently, 'raise' refuses them)", DataWarning, stacklevel=4)
    return None
