"""Rating-prediction error: RMSE and MAE of a model's ``predict(users, items)``."""
from __future__ import annotations

import numpy as np


def rmse(y_true, y_pred) -> float:
    """Root mean squared error, sqrt(mean((y - y_hat)^2))."""
    e = _errors(y_true, y_pred)
    return float(np.sqrt(np.mean(e * e)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error, mean(|y - y_hat|)."""
    return float(np.mean(np.abs(_errors(y_true, y_pred))))


def rating_metrics(model, test) -> dict:
    """RMSE and MAE of ``model.predict`` on the (user, item, rating) events of ``test``."""
    if test.rating is None:
        raise ValueError(f"{test.name} has no ratings to compare predictions with")
    pred = model.predict(test.user.astype(np.int64), test.item.astype(np.int64))
    return {"rmse": rmse(test.rating, pred), "mae": mae(test.rating, pred), "n": int(len(test))}


def _errors(y_true, y_pred) -> np.ndarray:
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) == 0:
        raise ValueError(f"y_true and y_pred must be equal-length non-empty 1-d arrays, got "
                         f"{y_true.shape} and {y_pred.shape}")
    return y_true - y_pred
