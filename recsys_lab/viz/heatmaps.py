"""Matrix heatmaps side by side: similarity matrices (01), attention weights (05)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import TEMPLATE


def heatmaps(matrices: Mapping[str, np.ndarray], labels: Sequence[str], title: str,
             zmin: float | None = None, zmax: float | None = None, colorscale: str = "RdBu_r",
             text_format: str | None = None, height: int = 360) -> go.Figure:
    """One panel per square matrix (its name as the panel title), rows and columns named by
    ``labels``, row 0 at the top, one colour axis over ``[zmin, zmax]`` for all panels;
    ``text_format`` (e.g. ``".2f"``) writes every value in its cell."""
    if not matrices:
        raise ValueError("heatmaps needs at least one matrix")
    labels = [str(v) for v in labels]
    for name, m in matrices.items():
        if np.shape(m) != (len(labels), len(labels)):
            raise ValueError(f"matrix {name!r} has shape {np.shape(m)}, expected "
                             f"{(len(labels), len(labels))} for {len(labels)} labels")
    fig = make_subplots(rows=1, cols=len(matrices), subplot_titles=[str(n) for n in matrices],
                        horizontal_spacing=0.08)
    for col, m in enumerate(matrices.values(), start=1):
        fig.add_trace(go.Heatmap(z=np.asarray(m), x=labels, y=labels, coloraxis="coloraxis",
                                 texttemplate=f"%{{z:{text_format}}}" if text_format else None), 1, col)
    fig.update_layout(template=TEMPLATE, title=title, height=height,
                      coloraxis=dict(colorscale=colorscale, cmin=zmin, cmax=zmax))
    fig.update_yaxes(autorange="reversed")
    return fig
