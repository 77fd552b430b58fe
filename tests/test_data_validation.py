"""Value errors name their rows; duplicated rows follow one documented policy (CSV, Parquet, frames)."""
import warnings

import numpy as np
import pandas as pd
import pytest

from recsys_lab.data import DUPLICATE_POLICIES, DataWarning, Interactions, load_dataset


def _csv(tmp_path, text, name="bad.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- row numbers in value errors -----------------------------------------------------------------
@pytest.mark.parametrize("content, options, match", [
    ("user,item,rating\n1,2,3\n2,3,good\n", {"rating_col": "rating"},
     r"non-numeric or missing values in column 'rating' at row 2 \('good'\)"),
    ("user,item,rating\n1,2,\n2,3,4\n", {"rating_col": "rating"},
     r"missing values in column 'rating' at row 1 \(missing\)"),
    ("user,item,rating\n1,2,3\n2,3,inf\n", {"rating_col": "rating"},
     r"column 'rating' at row 2 \(inf\)"),
    ("user,item\n1,2\n,3\n4,5\n", {}, r"missing values in column 'user' at row 2 \(missing\)"),
    ("user,item\n1,2\n3,4\n4,\n", {}, r"missing values in column 'item' at row 3"),
    ("user,item,ts\n1,2,2024-01-01 10:00\n2,3,yesterday\n", {"timestamp_col": "ts"},
     r"unparseable values in column 'ts' at row 2 \('yesterday'\)"),
    ("user,item,ts\n1,2,100\n2,3,\n", {"timestamp_col": "ts"},
     r"missing values in column 'ts' at row 2 \(missing\)"),
    ("user,item,basket\n1,2,a\n2,3,\n", {"session_col": "basket"},
     r"missing values in column 'basket' at row 2"),
])
def test_csv_value_errors_name_the_row(tmp_path, content, options, match):
    path = _csv(tmp_path, content)
    with pytest.raises(ValueError, match=match) as e:
        load_dataset(path, **options)
    assert str(path) in str(e.value)


def test_many_bad_rows_are_counted(tmp_path):
    lines = ["user,item,rating"] + [f"{u},1,{'x' if u % 2 else 5}" for u in range(20)]
    path = _csv(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"rows 2 \('x'\), 4 \('x'\), 6 \('x'\), 8 \('x'\), "
                                         r"10 \('x'\), \.\.\. \(10 in all\)"):
        load_dataset(path, rating_col="rating")


def test_parquet_value_errors_name_the_row(tmp_path):
    path = tmp_path / "events.parquet"
    frame = pd.DataFrame({"user": ["a", "b", None, "d"], "item": [1, 2, 3, 4],
                          "when": pd.to_datetime(["2024-01-01", None, "2024-01-03", "2024-01-04"]),
                          "stars": [1.0, 2.0, 3.0, np.nan]})
    frame.to_parquet(path)
    with pytest.raises(ValueError, match=r"missing values in column 'user' at row 3") as e:
        load_dataset(path)
    assert str(path) in str(e.value)
    frame.loc[2, "user"] = "c"
    frame.to_parquet(path)
    with pytest.raises(ValueError, match=r"missing values in column 'when' at row 2"):
        load_dataset(path, timestamp_col="when")
    with pytest.raises(ValueError, match=r"missing values in column 'stars' at row 4"):
        load_dataset(path, rating_col="stars")


def test_frame_value_errors_name_the_row():
    frame = pd.DataFrame({"user": [1, 2, 3], "item": [1, 2, 3], "rating": [1, "two", 3]},
                         index=[10, 20, 30])                           # positions, not labels
    with pytest.raises(ValueError, match=r"'rating' at row 2 \('two'\)"):
        Interactions.from_frame(frame, rating_col="rating", name="mine")


def test_timestamps_zone_aware_and_numeric():
    frame = pd.DataFrame({"user": [1, 2], "item": [1, 1],
                          "ts": pd.to_datetime(["2024-01-01 01:00+01:00", "2024-01-01 02:00+01:00"])})
    data = Interactions.from_frame(frame, timestamp_col="ts")
    assert data.timestamp.tolist() == [1704067200, 1704070800]        # 00:00 and 01:00 UTC
    frame["ts"] = [5, 7]
    assert Interactions.from_frame(frame, timestamp_col="ts").timestamp.tolist() == [5, 7]
    frame["ts"] = [2**62 + 1, 2**62 + 3]                              # not exact as float64
    assert Interactions.from_frame(frame, timestamp_col="ts").timestamp.tolist() == [2**62 + 1, 2**62 + 3]


# ---- duplicated rows -----------------------------------------------------------------------------
DUPLICATED = ("user,item,rating,ts\n"
              "1,2,5,100\n"        # row 1
              "1,3,4,100\n"        # row 2
              "1,2,5,100\n"        # row 3 = row 1
              "2,2,3,50\n"         # row 4
              "1,2,5,100\n"        # row 5 = row 1
              "1,2,5,101\n")       # row 6: another time, not a duplicate
OPTIONS = {"rating_col": "rating", "timestamp_col": "ts"}


def _rows(data):
    return list(zip(data.user_ids[data.user].tolist(), data.item_ids[data.item].tolist(),
                    data.rating.tolist(), data.timestamp.tolist()))


def test_duplicates_warn_by_default_and_keep_every_row(tmp_path):
    path = _csv(tmp_path, DUPLICATED, "log.csv")
    with pytest.warns(DataWarning, match="2 duplicated row") as record:
        data = load_dataset(path, **OPTIONS)
    message = str(record[0].message)
    assert str(path) in message and "row 3 repeats row 1" in message and "row 5 repeats row 1" in message
    assert "'drop'" in message                                          # says how to change it
    assert len(record) == 1 and len(data) == 6


def test_duplicates_drop_keep_raise(tmp_path):
    path = _csv(tmp_path, DUPLICATED, "log.csv")
    dropped = load_dataset(path, duplicates="drop", **OPTIONS)
    assert _rows(dropped) == [(1, 2, 5.0, 100), (1, 3, 4.0, 100), (2, 2, 3.0, 50), (1, 2, 5.0, 101)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        kept = load_dataset(path, duplicates="keep", **OPTIONS)
    assert len(kept) == 6 and kept.to_csr(binary=False)[0, 0] == 20.0   # 4 x 5 (user 1, item 2)
    with pytest.raises(ValueError, match="row 3 repeats row 1, row 5 repeats row 1"):
        load_dataset(path, duplicates="raise", **OPTIONS)
    with pytest.raises(ValueError, match="duplicates='merge'") as e:
        load_dataset(path, duplicates="merge", **OPTIONS)
    assert all(p in str(e.value) for p in DUPLICATE_POLICIES)


def test_duplicates_only_over_the_columns_read(tmp_path):
    """Without the timestamp, rows 1, 3, 5 and 6 are the same event."""
    path = _csv(tmp_path, DUPLICATED, "log.csv")
    with pytest.raises(ValueError, match="row 6 repeats row 1"):
        load_dataset(path, rating_col="rating", duplicates="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert len(load_dataset(path, **OPTIONS, duplicates="keep")) == 6


def test_duplicates_in_frames_and_movielens(tmp_path):
    frame = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "x", "x"]})
    with pytest.warns(DataWarning, match="row 2 repeats row 1"):
        assert len(Interactions.from_frame(frame)) == 3
    assert len(Interactions.from_frame(frame, duplicates="drop")) == 2
    (tmp_path / "u.data").write_text("1\t10\t5\t100\n2\t10\t4\t150\n1\t10\t5\t100\n")
    with pytest.warns(DataWarning, match="row 3 repeats row 1"):
        load_dataset("ml-100k", path=tmp_path, verify=False)
    (tmp_path / "u.data").unlink()
    (tmp_path / "ratings.dat").write_text("1::10::5::100\n1::10::5::100\n")
    with pytest.raises(ValueError, match="row 2 repeats row 1"):
        load_dataset("ml-1m", path=tmp_path, duplicates="raise")


def test_no_duplicates_no_warning(tmp_path):
    path = _csv(tmp_path, "user,item\n1,2\n2,1\n1,1\n", "clean.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert len(load_dataset(path)) == 3
