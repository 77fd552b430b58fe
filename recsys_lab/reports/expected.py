"""Expected values of the numbers each notebook ``record()``s, committed and checked in CI.

nbval runs every notebook's quick profile in ``make test``; ``notebooks/conftest.py`` collects
the recorded values from the outputs nbval already receives and compares them with one committed
file (``tests/expected_records.json``), so a model that silently gets worse fails the suite with
no second run of any notebook. Refresh after an intended change (a fix, a new default):

    .venv/bin/python -m pytest notebooks/NN_name.ipynb --refresh-recorded   # one notebook
    .venv/bin/python -m pytest notebooks --refresh-recorded                 # all of them

Which keys are checked follows from their names: accuracy figures (NDCG, recall, hit rates,
kept fractions, overlaps, RMSE, similarities) within an absolute tolerance ``tol`` stored beside
each value; counts (users, items, events, ...) exactly; timings, latencies and labels not at all.
A ``tol`` edited by hand survives a refresh.

A notebook whose data depends on what the machine holds (MovieLens is read from a local copy and
falls back to a synthetic set) records a label ending in ``_data``; each label value keeps its own
entry, ``NAME [key=value]``, so a clone with and one without the copy are both checked.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from ..fileio import atomic_write

ACCURACY = re.compile(r"ndcg|recall|precision|hit|mrr|coverage|rmse|mae|kept|overlap|cosine|"
                      r"pearson|norm_squared")
# measured on the clock, or chosen by a latency (the fastest configuration's accuracy)
TIMED = re.compile(r"_ms$|_s$|_us$|seconds|throughput|speedup|gain|latency|violations|budget|"
                   r"epoch|^fastest")
COUNTS = re.compile(r"^(users|items|events|k|neighbours|configurations|datasets|n_layers|"
                    r"n_test_users|item_item_stored)$")
# models trained by SGD here: thread counts change float sums, and so the trajectory a little
TRAINED = re.compile(r"bpr|pointwise|neumf|gmf|mlp|sasrec|lightgcn|ngcf")
TOL_FIXED = (0.0005, 0.01)  # (absolute floor, relative): closed-form and counting models
TOL_TRAINED = (0.003, 0.05)  # bit-identical at 1 and 2 threads here; other CPUs: see the docs
VARIANT = re.compile(r"_data$")  # string records naming data the machine may or may not hold
REFRESH_HINT = ".venv/bin/python -m pytest notebooks/{name}.ipynb --refresh-recorded"


def entry_name(name: str, records: dict) -> str:
    """The expected entry of ``records``: ``name``, plus the data labels it was recorded on."""
    labels = [f"{k}={v}" for k, v in sorted(records.items())
              if VARIANT.search(k) and isinstance(v, str)]
    return f"{name} [{', '.join(labels)}]" if labels else name


def checked_kind(key: str, value) -> str | None:
    """"tol" (accuracy within a tolerance), "exact" (a count) or None (not checked)."""
    if isinstance(value, bool) or value is None or TIMED.search(key):
        return None
    if isinstance(value, int) and (COUNTS.match(key) or ACCURACY.search(key)):
        return "exact"  # a count, or a whole-number result of a worked example
    if isinstance(value, float) and ACCURACY.search(key):
        return "tol"
    return None


def default_tol(key: str, value: float) -> float:
    floor, rel = TOL_TRAINED if TRAINED.search(key) else TOL_FIXED
    return round(max(floor, rel * abs(value)), 4)


def load(path) -> dict:
    """``{notebook: {key: {"value": v[, "tol": t]}}}`` from the committed file ({} if absent)."""
    try:
        return json.loads(Path(path).read_text())["notebooks"]
    except FileNotFoundError:
        return {}


def compare(name: str, records: dict, expected: dict, path="tests/expected_records.json") -> list[str]:
    """Every way ``records`` of notebook ``name`` departs from ``expected`` (one line each)."""
    hint = f"refresh after an intended change: {REFRESH_HINT.format(name=name)}"
    name = entry_name(name, records)
    if name not in expected:
        return [f"{name}: no expected values in {path}; {hint}"]
    problems = []
    for key, want in expected[name].items():
        if key not in records:
            problems.append(f"{name}: {key} is no longer recorded (expected {want['value']})")
            continue
        got = records[key]
        if "tol" in want:
            if not isinstance(got, (int, float)) or not math.isfinite(got) \
                    or abs(got - want["value"]) > want["tol"]:
                shown = f"{got:.6g}" if isinstance(got, float) else repr(got)
                problems.append(f"{name}: {key} = {shown}, expected {want['value']} "
                                f"± {want['tol']}")
        elif got != want["value"]:
            problems.append(f"{name}: {key} = {got!r}, expected exactly {want['value']!r}")
    new = [k for k, v in records.items() if checked_kind(k, v) and k not in expected[name]]
    if new:
        problems.append(f"{name}: recorded figure(s) {', '.join(new)} have no expected value")
    return problems + ([hint] if problems else [])


def expected_entry(records: dict, previous: dict | None = None) -> dict:
    """The committed form of ``records``: checked keys only; a tolerance that differs from the
    default of its old value was set by hand and is kept."""
    previous = previous or {}
    entry = {}
    for key, value in records.items():
        kind = checked_kind(key, value)
        if kind == "exact":
            entry[key] = {"value": value}
        elif kind == "tol":
            tol, before = default_tol(key, value), previous.get(key, {})
            if "tol" in before and before["tol"] != default_tol(key, before["value"]):
                tol = before["tol"]  # set by hand: keep it
            entry[key] = {"value": round(value, 6), "tol": tol}
    return entry


def refresh(path, name: str, records: dict) -> dict:
    """Write ``records`` of ``name`` into the committed file (other notebooks untouched)."""
    path, name = Path(path), entry_name(name, records)
    doc = json.loads(path.read_text()) if path.exists() else {}
    notebooks = doc.get("notebooks", {})
    notebooks[name] = expected_entry(records, notebooks.get(name))
    atomic_write(path, dumps(doc.get("about", ABOUT), notebooks))
    return notebooks[name]


def dumps(about: str, notebooks: dict) -> str:
    """The committed file's JSON, one checked key per line (short diffs on refresh)."""
    blocks = []
    for name in sorted(notebooks):
        keys = ",\n".join(f"   {json.dumps(k)}: {json.dumps(v)}" for k, v in notebooks[name].items())
        blocks.append(f"  {json.dumps(name)}: {{\n{keys}\n  }}")
    return (f'{{\n "about": {json.dumps(about)},\n "notebooks": {{\n' + ",\n".join(blocks)
            + "\n }\n}\n")


ABOUT = ("Expected record() values of each notebook's quick profile, checked by "
         "notebooks/conftest.py during nbval (make test): |recorded - value| <= tol; entries "
         "without tol are exact counts. Refresh after an intended change: .venv/bin/python -m "
         "pytest notebooks/NN_name.ipynb --refresh-recorded (see recsys_lab/reports/expected.py).")
