"""Test-set metrics and learning-curve summaries; pure functions of arrays."""

from __future__ import annotations

import numpy as np

REGRESSION_METRICS = ("mse", "rmse", "mae", "max_abs_error", "mean_variance", "mse_constant", "r2",
                      "rel_err_median", "rel_err_p95")
CLASSIFICATION_METRICS = ("accuracy", "f1", "log_loss")
_HIGHER_NAMES = ("accuracy", "f1", "r2")
_HIGHER_PREFIXES = ("r2", "skill")
_HIGHER_SUFFIXES = ("_accuracy", "_f1", "_score", "_r2")


def higher_is_better(name: str) -> bool:
    """Whether a larger value of the metric `name` is better, by its name: accuracy, f1, r2,
    names starting with "r2" or "skill" and names ending with "_accuracy", "_f1", "_score" or
    "_r2". Every other metric (an error, a loss, a variance, a time) is better lower."""
    return name in _HIGHER_NAMES or name.startswith(_HIGHER_PREFIXES) or name.endswith(_HIGHER_SUFFIXES)


def scalar_metric_names(task: str) -> tuple[str, ...]:
    """Names of the scalar metrics `regression_metrics` ("regression") or
    `classification_metrics` ("classification") can return. rel_err_median and rel_err_p95
    are returned only where some output is positive on every test point."""
    if task == "regression":
        return REGRESSION_METRICS
    if task == "classification":
        return CLASSIFICATION_METRICS
    raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")


def varies(a: np.ndarray) -> np.ndarray:
    """Whether each column of a (n, k) varies beyond the round-off of its own magnitude: (k,)
    bool. A column held at 0.3 and computed as 0.1 * 3 here and there spreads by 1e-17; it is
    constant."""
    a = np.asarray(a, dtype=np.float64)
    return a.std(axis=0) > 1e-12 * np.abs(a).max(axis=0, initial=0.0)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, NaN where den is 0 (quietly)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _relative_errors(y_true: np.ndarray, mean: np.ndarray) -> dict[str, float]:
    """Median and 95th percentile of |mean - y| / y over every test point of the outputs
    (columns) that are positive on every test point; nothing if there is none."""
    positive = np.all(y_true > 0, axis=0)
    if not positive.any():
        return {}
    rel = (np.abs(mean[:, positive] - y_true[:, positive]) / y_true[:, positive]).ravel()
    return {"rel_err_median": float(np.median(rel)), "rel_err_p95": float(np.percentile(rel, 95))}


def regression_metrics(y_true: np.ndarray, members: np.ndarray) -> dict[str, float | np.ndarray]:
    """Scores of the committee mean against y_true.

    Args:
        y_true: (m, k) true values ((m,) is taken as k = 1).
        members: (members, m, k) member predictions.
    Returns:
        mse, rmse, mae, max_abs_error of the committee mean; mean_variance (the committee's own
        disagreement on the test set); mse_constant (the MSE of predicting the test set's mean:
        its variance); r2 = 1 - mse / mse_constant, the coefficient of determination on the
        test set (0 for the best constant, 1 when perfect, negative when worse; NaN when
        mse_constant is 0). The constant is the test set's mean, not the training runs' mean:
        an active strategy's runs crowd where the output is hard, their mean can sit far from
        the test set's, and a skill measured against it would flatter exactly the strategy
        under test (on the standard map, R^2 0.75 against its runs' mean for 0.45 against the
        test mean). So every strategy is judged against the same constant, and R^2 ranks
        strategies as mse does.

        With one output (k = 1) all of these are in the output's own units. With several
        (k > 1), mse, rmse, mae, max_abs_error, mean_variance and mse_constant are computed on
        outputs standardised by their test-set standard deviation, so that no output dominates
        by its units, over the outputs that vary on the test set (an output whose spread is
        round-off of its magnitude is constant: it has no r2 and is left out, unless no output
        varies); r2 is the mean over outputs of each output's r2 (those where it is defined), and the arrays
        mse_per_output and r2_per_output, shape (k,), give each output's MSE in its own units
        and its r2.

        Where every test value of an output is positive, rel_err_median and rel_err_p95 are
        the median and 95th percentile of |prediction - y| / y over all test points and all
        such outputs.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    members = np.asarray(members, dtype=np.float64)
    if y_true.ndim == 1:
        y_true = y_true[:, None]
    if members.ndim == 2:
        members = members[..., None]
    if members.ndim != 3 or members.shape[1:] != y_true.shape:
        raise ValueError(f"member predictions {members.shape} do not match y_true {y_true.shape}: "
                         "expected (members, m, k) and (m, k)")
    k = y_true.shape[1]
    mean = members.mean(axis=0)
    err = mean - y_true
    constant_err = y_true.mean(axis=0) - y_true
    variance = members.var(axis=0)
    mse_per_output = np.mean(err**2, axis=0)
    # An output is constant when its spread is round-off of its own magnitude (a bin held at
    # 0.3 has a spread of about 1e-16, not 0): it has no R^2 and no scale of its own.
    spread, varying = y_true.std(axis=0), varies(y_true)
    r2_per_output = np.where(varying, 1.0 - _ratio(mse_per_output, np.mean(constant_err**2, axis=0)), np.nan)
    if k == 1:
        mse = float(np.mean(err**2))
        mse_constant = float(np.mean(constant_err**2))
        metrics = {
            "mse": mse,
            "rmse": float(np.sqrt(mse)),
            "mae": float(np.mean(np.abs(err))),
            "max_abs_error": float(np.max(np.abs(err))),
            "mean_variance": float(np.mean(variance)),
            "mse_constant": mse_constant,
            "r2": float(r2_per_output[0]),
        }
    else:
        scale = np.where(varying, spread, 1.0)
        kept = varying if varying.any() else np.ones(k, bool)  # combined over the outputs that vary
        z_err = err[:, kept] / scale[kept]
        mse = float(np.mean(z_err**2))
        defined = r2_per_output[np.isfinite(r2_per_output)]
        metrics = {
            "mse": mse,
            "rmse": float(np.sqrt(mse)),
            "mae": float(np.mean(np.abs(z_err))),
            "max_abs_error": float(np.max(np.abs(z_err))),
            "mean_variance": float(np.mean(variance[:, kept] / scale[kept] ** 2)),
            "mse_constant": float(np.mean((constant_err[:, kept] / scale[kept]) ** 2)),
            "r2": float(defined.mean()) if len(defined) else float("nan"),
            "mse_per_output": mse_per_output,
            "r2_per_output": r2_per_output,
        }
    return {**metrics, **_relative_errors(y_true, mean)}


# The regression metrics computed on outputs each divided by its test-set standard deviation when
# there are several (see `regression_metrics`); with one output they are in its own units.
STANDARDISED_METRICS = ("mse", "rmse", "mae", "max_abs_error", "mean_variance", "mse_constant")


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
