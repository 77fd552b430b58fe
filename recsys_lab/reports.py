"""Reports: notebooks record their key numbers; the runner executes notebooks into reports/."""
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


def record(**values) -> dict:
    """Record a notebook's key numbers for the report summary and the tests.

    Emits one display output with a private MIME type (plus a plain-text echo), which the
    report runner and tests read back from the executed notebook.
    """
    data = {k: _jsonable(v) for k, v in values.items()}
    try:
        from IPython.display import display
        display({RECORD_MIME: data, "text/plain": json.dumps(data, indent=1)}, raw=True)
    except ImportError:  # pragma: no cover - outside IPython
        pass
    return data
