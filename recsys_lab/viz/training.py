"""Training figures and tables of the torch models (notebooks 03-06): one curve per model.

``histories`` are the models' ``history_`` frames (one row per epoch: epoch, loss, the
validation metric); see :mod:`recsys_lab.models.torch_base`.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import TEMPLATE

VALID_METRIC = "valid_ndcg@10"
NAMES = {"ndcg": "NDCG", "recall": "Recall", "hit": "Hit", "mrr": "MRR", "precision": "Precision"}


def metric_label(metric: str) -> str:
    """``"valid_ndcg@10"`` -> ``"NDCG@10"``."""
    name = metric.removeprefix("valid_")
    head, _, k = name.partition("@")
    return NAMES.get(head, head) + (f"@{k}" if k else "")


def training_curves(histories: Mapping[str, pd.DataFrame], title: str, metric: str = VALID_METRIC,
                    loss_title: str = "training loss", height: int = 380) -> go.Figure:
    """Loss (left) and the validation ``metric`` (right) per epoch, one line per model, one
    legend entry per model for both panels."""
    if not histories:
        raise ValueError("training_curves needs at least one history")
    fig = make_subplots(rows=1, cols=2, subplot_titles=(loss_title, f"validation {metric_label(metric)}"))
    for name, h in histories.items():
        missing = {"epoch", "loss", metric} - set(h.columns)
        if missing:
            raise KeyError(f"history of {name!r} lacks columns {sorted(missing)}")
        fig.add_trace(go.Scatter(x=h["epoch"], y=h["loss"], name=name, legendgroup=name), 1, 1)
        fig.add_trace(go.Scatter(x=h["epoch"], y=h[metric], name=name, legendgroup=name,
                                 showlegend=False), 1, 2)
    fig.update_layout(template=TEMPLATE, title=title, height=height)
    fig.update_xaxes(title_text="epoch")
    return fig


def training_table(models: Mapping[str, object], metric: str = VALID_METRIC) -> pd.DataFrame:
    """Per trained model: epochs run, the best epoch (early stopping), its best validation
    ``metric`` and the mean seconds per epoch."""
    return pd.DataFrame({name: {"epochs run": len(m.history_), "best epoch": m.best_epoch_,
                                f"best valid {metric_label(metric)}": m.history_[metric].max(),
                                "s per epoch": float(np.mean(m.epoch_seconds_))}
                         for name, m in models.items()}).T
