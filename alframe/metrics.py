"""Test-set metrics and learning-curve summaries; pure functions of arrays."""

from __future__ import annotations

import numpy as np


def regression_metrics(y_true: np.ndarray, members: np.ndarray) -> dict[str, float]:
    """Scores of the committee mean against y_true.

    Args:
        y_true: (m, n_outputs) true values.
        members: (members, m, n_outputs) member predictions.
    Returns: mse, rmse, mae, max_abs_error of the mean, and mean_variance (the committee's
        own disagreement on the test set).
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    members = np.asarray(members, dtype=np.float64)
    err = members.mean(axis=0) - y_true
    mse = float(np.mean(err**2))
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(err))),
        "max_abs_error": float(np.max(np.abs(err))),
        "mean_variance": float(np.mean(members.var(axis=0))),
    }


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Scores of the committee's mean probabilities against integer labels.

    Args:
        labels: (m,) or (m, 1) integer class labels.
        probs: (members, m, n_classes) member probabilities.
    Returns: accuracy, f1 (macro-averaged over classes), log_loss.
    """
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    mean = np.asarray(probs, dtype=np.float64).mean(axis=0)
    predicted = mean.argmax(axis=1)
    f1s = []
    for c in range(mean.shape[1]):
        tp = np.sum((predicted == c) & (labels == c))
        fp = np.sum((predicted == c) & (labels != c))
        fn = np.sum((predicted != c) & (labels == c))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0)
    picked = np.clip(mean[np.arange(len(labels)), labels], 1e-12, 1.0)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "f1": float(np.mean(f1s)),
        "log_loss": float(-np.mean(np.log(picked))),
    }


def simulations_to_reach(n_labeled: np.ndarray, error: np.ndarray, target: float) -> float:
    """Fewest simulations after which the error stays at or below `target`.

    Args:
        n_labeled: (rounds,) simulations used at each round, increasing.
        error: (rounds,) test error at each round.
    Returns: the first n_labeled from which the error never again exceeds the target
        (so a lucky dip does not count), or NaN if the final error is above it.
    """
    n_labeled = np.asarray(n_labeled, dtype=np.float64)
    above = np.asarray(error, dtype=np.float64) > target
    if above[-1]:
        return float("nan")
    last_above = np.flatnonzero(above)
    return float(n_labeled[last_above[-1] + 1] if len(last_above) else n_labeled[0])
