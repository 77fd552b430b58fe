"""Does a plotly figure's axis show its data? A range check that needs no browser.

Plotly draws an autoranged axis over everything placed on it: the traces, and also shapes and
annotations. An annotation's position on a log axis is the log10 of the value (plotly's rule),
so ``fig.add_hline(y=50, annotation_text=...)`` on a log axis puts the label at 10^50 and the
axis runs to about 10^55 with the data a flat line at the bottom. :func:`axis_problems` rebuilds
each axis's extent the way autorange does (or takes its explicit ``range``) and compares it with
the extent of the data alone.
"""
from __future__ import annotations

import base64
import math

import numpy as np

CARTESIAN = {"scatter", "scattergl", "bar"}
# How far an axis may reach beyond its data: a budget or reference line well above the data is
# fine to show, an axis to 10^55 is not. Log axes: decades on each side; linear: x the data span.
LOG_DECADES, LINEAR_FACTOR = 2.0, 20.0


def _numbers(values) -> np.ndarray | None:
    """Finite numbers of a trace array (list or plotly's ``{"dtype", "bdata"}``); None if the
    axis is categorical or the array absent."""
    if values is None:
        return None
    if isinstance(values, dict) and "bdata" in values:
        values = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
    try:
        arr = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        return None  # strings: a category axis
    return arr[np.isfinite(arr)]


def _axis_key(ref: str) -> str:
    """``"x"`` -> ``"xaxis"``, ``"y2"`` -> ``"yaxis2"``."""
    return f"{ref[0]}axis{ref[1:]}"


def _groups(layout: dict, refs) -> dict[str, str]:
    """Axis ref -> the ref it shares its range with (``matches``), itself when none."""
    out = {}
    for ref in refs:
        seen, r = set(), ref
        while r not in seen:
            seen.add(r)
            r = (layout.get(_axis_key(r)) or {}).get("matches") or r
        out[ref] = min(seen)
    return out


def axis_extents(fig) -> dict[str, dict]:
    """Per axis ref: ``data`` values, ``extra`` values placed by shapes and annotations (in data
    units), ``log`` and the explicit ``range`` (data units) if any."""
    spec = fig.to_plotly_json() if hasattr(fig, "to_plotly_json") else dict(fig)
    layout = spec.get("layout") or {}
    axes: dict[str, dict] = {}

    def axis(ref):
        if ref not in axes:
            lay = layout.get(_axis_key(ref)) or {}
            log = lay.get("type") == "log"
            rng = lay.get("range")
            if rng is not None and None not in rng and lay.get("autorange") not in (True, "reversed"):
                rng = [10.0 ** float(v) if log else float(v) for v in rng]
            else:
                rng = None
            axes[ref] = {"data": [], "extra": [], "log": log, "range": rng}
        return axes[ref]

    for trace in spec.get("data") or []:
        kind = trace.get("type", "scatter")
        if kind not in CARTESIAN:
            continue
        refs = {"x": trace.get("xaxis", "x"), "y": trace.get("yaxis", "y")}
        value_dim = "x" if trace.get("orientation") == "h" else "y"
        for dim, ref in refs.items():
            vals = _numbers(trace.get(dim))
            if vals is None or not len(vals):
                continue
            a = axis(ref)
            a["data"].append(vals)
            if kind == "bar" and dim == value_dim and not a["log"]:
                a["data"].append(np.zeros(1))  # bars start at 0
    for ann in layout.get("annotations") or []:
        for dim in ("x", "y"):
            ref, v = ann.get(f"{dim}ref", dim), ann.get(dim)
            if ref in axes and isinstance(v, (int, float)):
                axes[ref]["extra"].append(np.array([10.0 ** v if axes[ref]["log"] else v]))
    for shape in layout.get("shapes") or []:
        for dim in ("x", "y"):
            ref = shape.get(f"{dim}ref", dim)
            if ref in axes:
                vals = [shape.get(f"{dim}0"), shape.get(f"{dim}1")]
                axes[ref]["extra"].append(np.array([v for v in vals if isinstance(v, (int, float))]))
    for ref, group in _groups(layout, list(axes)).items():  # shared axes: one range for all
        if group != ref and group in axes:
            axes[group]["data"] += axes[ref]["data"]
            axes[group]["extra"] += axes[ref]["extra"]
            axes[ref]["shared_with"] = group
    return axes


def axis_problems(fig, log_decades: float = LOG_DECADES,
                  linear_factor: float = LINEAR_FACTOR) -> list[str]:
    """Axes whose shown range misses part of the data or reaches too far beyond it.

    Log axes may extend at most ``log_decades`` decades beyond the data on each side; a linear
    axis's range at most ``linear_factor`` x the data span (its value if all points are equal).
    """
    problems = []
    for ref, a in axis_extents(fig).items():
        if "shared_with" in a or not a["data"]:
            continue
        data = np.concatenate(a["data"])
        shown = np.concatenate([data, *a["extra"]]) if a["range"] is None else np.array(a["range"])
        if a["log"]:
            data, shown = data[data > 0], shown[shown > 0]
            if not len(data) or not len(shown):
                continue
            lo, hi = math.log10(data.min()), math.log10(data.max())
            slo, shi = math.log10(shown.min()), math.log10(shown.max())
            allowed, unit = log_decades, "decades"
            width = max(hi - lo, 1.0)
        else:
            lo, hi, slo, shi = data.min(), data.max(), shown.min(), shown.max()
            width = (hi - lo) or abs(hi) or 1.0
            allowed, unit = (linear_factor - 1) * width, "x the data span"
        name = _axis_key(ref)
        cut = width * 1e-6
        if slo > lo + cut or shi < hi - cut:
            problems.append(f"{name} shows [{_fmt(slo, a['log'])}, {_fmt(shi, a['log'])}] but the "
                            f"data spans [{_fmt(lo, a['log'])}, {_fmt(hi, a['log'])}]")
        elif (shi - hi) > allowed or (lo - slo) > allowed:
            problems.append(f"{name} runs to [{_fmt(slo, a['log'])}, {_fmt(shi, a['log'])}], far "
                            f"beyond its data [{_fmt(lo, a['log'])}, {_fmt(hi, a['log'])}] "
                            f"(more than {allowed / (1 if a['log'] else width):.3g} {unit})")
    return problems


def _fmt(v: float, log: bool) -> str:
    return f"{10.0 ** v:.3g}" if log else f"{v:.3g}"
