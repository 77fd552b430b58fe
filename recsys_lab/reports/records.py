"""``record()``: a notebook's key numbers, emitted as a display output the runner and tests read."""
from __future__ import annotations

import json
import math

RECORD_MIME = "application/vnd.recsys-lab.record+json"


def _jsonable(v):
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    raise TypeError(f"record() takes numbers and strings, got {type(v).__name__}")


def record(**values) -> None:
    """Record a notebook's key numbers for the report summary and the tests.

    Emits one display output with a private MIME type (plus a plain-text echo), which the
    report runner (:func:`read_records`) and nbval's hooks (:func:`records_in`) read back.
    """
    data = {k: _jsonable(v) for k, v in values.items()}
    try:
        from IPython.display import display
        display({RECORD_MIME: data, "text/plain": json.dumps(data, indent=1)}, raw=True)
    except ImportError:  # pragma: no cover - outside IPython
        pass


def records_in(outputs) -> dict:
    """The :func:`record` values among notebook ``outputs`` (dicts), later keys winning."""
    out = {}
    for o in outputs:
        rec = (o.get("data") or {}).get(RECORD_MIME)
        if rec is not None:
            out.update(json.loads(rec) if isinstance(rec, str) else dict(rec))
    return out


def read_records(executed_nb_path) -> dict:
    """The values a notebook passed to :func:`record`, read from its executed ``.ipynb``.

    Several ``record()`` calls are merged in cell order (a later key wins).
    """
    import nbformat

    nb = nbformat.read(str(executed_nb_path), as_version=4)
    return records_in(o for cell in nb.cells for o in cell.get("outputs", []))
