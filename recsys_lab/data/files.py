"""Reading input files: CSV / TSV / Parquet tables, sha256 checks against known copies.

A *known copy* is a file whose sha256 is recorded here because it was verified against its source
(see data/README.md and shared/data/*/SOURCE.md). ``verify`` follows one rule everywhere:

- ``None`` (default): a file that matches no known copy is loaded with a :class:`DataWarning`
  naming it (a one-byte change is noticed);
- ``True``: that is a ValueError instead;
- ``False``: no check.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import pandas as pd


class DataWarning(UserWarning):
    """Input that loads but may not be what the user meant (altered copy, duplicated rows)."""


def sha256sum(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_sha256(path: Path, expected: str) -> None:
    """ValueError naming ``path`` when its sha256 is not ``expected`` (an explicit expectation)."""
    got = sha256sum(path)
    if got != expected.lower():
        raise ValueError(f"{path}: sha256 mismatch (expected {expected}, got {got}); the file is "
                         "corrupted or a different version; restore it from the repository")


def is_known_copy(path: Path, known: dict[str, str]) -> bool:
    """Whether the sha256 of ``path`` is one of ``known`` (sha256 -> what that copy is)."""
    return sha256sum(path) in known


def report_unknown_copies(paths: list[Path], what: str, verify: bool | None) -> None:
    """Warn (``verify=None``) or raise (``True``) naming every file in ``paths``: each is meant to
    be ``what`` but matches no known copy of it."""
    if not paths or verify is False:
        return
    names = ", ".join(str(p) for p in paths)
    msg = (f"{names}: sha256 matches no known copy of {what}; the file is altered, corrupted or "
           "another version")
    if verify:
        raise ValueError(msg + " (verify=True)")
    warnings.warn(msg + "; loaded as it is, so counts may differ from the documented ones "
                  "(verify=False skips this check, verify=True makes it an error)",
                  DataWarning, stacklevel=4)


def read_table(path: Path, sep: str | None = None, as_text: bool = False) -> pd.DataFrame:
    """Read a CSV/TSV (optionally gzipped) or Parquet file; ValueError naming it when malformed.

    ``as_text`` reads every CSV field as a string with no NA guessing ("NA" stays a string) and
    turns empty fields into missing values, so ids such as stock codes are kept verbatim.
    """
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        sep = sep or ("\t" if ".tsv" in name else ",")
        if not as_text:
            return pd.read_csv(path, sep=sep)
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
        return df.mask(df == "")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty") from None
    except Exception as e:  # ParserError (bad field count), pyarrow.ArrowInvalid, OSError, ...
        raise ValueError(f"{path}: malformed or unreadable file ({type(e).__name__}: {e})") from None


def require_columns(df: pd.DataFrame, columns: list[str], source) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"{source}: column(s) {missing} not found; available columns: "
                       f"{list(df.columns)}")
