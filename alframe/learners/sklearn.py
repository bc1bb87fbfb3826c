"""Committees of scikit-learn estimators behind the `Committee` protocol.

Two ways to make members that disagree usefully:

- `BaggedCommittee`: `members` clones of one estimator (a decision tree, gradient-boosted
  trees, a random forest, ...), each fitted on its own bootstrap resample with its own seed.
- `EnsembleCommittee`: one fitted scikit-learn ensemble (a random forest, extra trees, a
  bagging ensemble) whose own sub-estimators are the members, so a forest of 100 trees is a
  committee of 100 for the price of one fit.

Every seed is derived from the JAX key passed to `fit`, so the same key and data give the
same committee. Inputs (and regression outputs) are standardised in float64 before the
estimators see them: scikit-learn's trees cast inputs to float32, treat an input spanning less
than 1e-7 as constant and a node whose outputs vary by less than about 1e-8 as pure, so a
simulator in cgs units would otherwise get trees that never split. Fits start from scratch
each time (tree learners have no warm start worth keeping), and both classes are frozen:
`fit` returns a new, fitted committee.

    >>> from sklearn.tree import DecisionTreeClassifier
    >>> committee = BaggedCommittee(DecisionTreeClassifier(max_depth=3), members=4, n_classes=2)
    >>> fitted = committee.fit(x, labels, key=jax.random.key(0))       # doctest: +SKIP
    >>> fitted.predict_members(x).shape                                 # doctest: +SKIP
    (4, n, 2)
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import clone

from alframe.learners._shared import standardisation

Task = Literal["classification", "regression"]


def member_seeds(key: jax.Array, n: int) -> np.ndarray:
    """`n` integer seeds in [0, 2^32) drawn from a JAX key, shape (n,) int64."""
    return np.asarray(jax.random.bits(key, (n,), dtype=jnp.uint32)).astype(np.int64)


def bootstrap_rows(labels: np.ndarray | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """Row numbers of one bootstrap resample of `n` rows, shape (n,) int64.

    With `labels` (n,), the resample is stratified: each class is resampled within itself, so
    a rare class is never lost from a member's training set while it is in the data.
    """
    if labels is None:
        return rng.integers(0, n, n)
    rows = [rng.choice(np.flatnonzero(labels == c), size=int(np.sum(labels == c)), replace=True)
            for c in np.unique(labels)]
    return np.sort(np.concatenate(rows))


def _with_seed(estimator: Any, seed: int) -> Any:
    """A clone of `estimator` with `random_state=seed` where it takes one."""
    fresh = clone(estimator)
    if "random_state" in fresh.get_params(deep=False):
        fresh.set_params(random_state=int(seed))
    return fresh


def _check_task(task: str, n_classes: int | None) -> None:
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if task == "classification" and (n_classes is None or n_classes < 2):
        raise ValueError(f"classification needs n_classes >= 2, got {n_classes}")


def training_data(x: np.ndarray, y: np.ndarray, task: str, n_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Validated x (n, dim) float64 and labels (n,) int64, or targets (n,) / (n, n_outputs)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if x.ndim != 2 or len(x) == 0 or len(x) != len(y):
        raise ValueError(f"fit needs x (n, dim) and y (n,) or (n, outputs) with n >= 1, got {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("fit received non-finite training data")
    if task == "classification":
        if y.ndim != 1 or np.any(y != np.round(y)) or np.any(y < 0) or np.any(y >= n_classes):
            raise ValueError(f"class labels must be integers in [0, {n_classes}), got values {np.unique(y)[:10]}")
        return x, y.astype(np.int64)
    return x, y


class Scaling(NamedTuple):
    """The standardisation a committee's estimators were fitted in: inputs (dim,) and
    regression outputs (n_outputs,) or () for a single output; outputs are left alone (mean 0,
    scale 1) for classification."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: np.ndarray
    y_scale: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, task: str) -> "Scaling":
        """The scaling of x (n, dim) and y (n,) or (n, n_outputs)."""
        x_mean, x_scale = standardisation(x)
        if task == "classification":
            return cls(x_mean, x_scale, np.zeros(()), np.ones(()))
        y_mean, y_scale = standardisation(y.reshape(len(y), -1))
        return cls(x_mean, x_scale, *((y_mean[0], y_scale[0]) if y.ndim == 1 else (y_mean, y_scale)))

    def inputs(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.x_mean) / self.x_scale

    def outputs(self, y: np.ndarray) -> np.ndarray:
        return (y - self.y_mean) / self.y_scale

    def values(self, standardised: np.ndarray) -> np.ndarray:
        """Predicted outputs (n, n_outputs) back in the simulator's units."""
        return standardised * np.reshape(self.y_scale, (1, -1)) + np.reshape(self.y_mean, (1, -1))


def _class_probabilities(estimator: Any, x: np.ndarray, n_classes: int, labels_of: np.ndarray) -> np.ndarray:
    """(n, n_classes) probabilities; classes the estimator never saw get probability 0.

    `labels_of` maps the estimator's `classes_` values to class indices.
    """
    out = np.zeros((len(x), n_classes))
    out[:, labels_of] = estimator.predict_proba(x)
    return out


def _values(estimator: Any, x: np.ndarray) -> np.ndarray:
    """(n, n_outputs) regression predictions."""
    pred = np.asarray(estimator.predict(x), dtype=np.float64)
    return pred[:, None] if pred.ndim == 1 else pred


def _n_outputs(regressor: Any) -> int:
    """Outputs of a fitted scikit-learn regressor."""
    return int(getattr(regressor, "n_outputs_", 1))


class _SingleClass:
    """A member fitted on one class only: predicts it with probability 1.

    Some estimators (gradient boosting among them) refuse data holding a single class, which
    an early round of a rare-class problem can give.
    """

    def __init__(self, label: int):
        self.classes_ = np.array([label])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.ones((len(x), 1))


@dataclasses.dataclass(frozen=True)
class BaggedCommittee:
    """`members` clones of a scikit-learn estimator, each on its own bootstrap resample.

    Args:
        estimator: an unfitted scikit-learn estimator (classifier with `predict_proba`, or
            regressor); cloned for each member, with `random_state` set from the key.
        members: committee size.
        bootstrap: fit each member on a bootstrap resample (stratified by class for
            classification); without it members differ only by their estimator's own seed.
        task: "classification" or "regression".
        n_classes: number of classes (classification only).

    `fit(x, y, key=...)` takes x (n, dim) and integer labels (n,) or (n, 1), or regression
    targets (n,) / (n, n_outputs); `predict_members(x)` returns (members, n, n_classes)
    probabilities or (members, n, n_outputs) values, float32.
    """

    estimator: Any
    members: int = 5
    bootstrap: bool = True
    task: Task = "classification"
    n_classes: int | None = 2
    fitted: tuple[Any, ...] = dataclasses.field(default=(), repr=False, compare=False)
    scaling: Scaling | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.members < 1:
            raise ValueError(f"members must be >= 1, got {self.members}")
        _check_task(self.task, self.n_classes)

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    def _width(self) -> int:
        return self.n_classes if self.task == "classification" else _n_outputs(self.fitted[0])

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "BaggedCommittee":
        x, y = training_data(x, y, self.task, self.n_classes)
        classification = self.task == "classification"
        scaling = Scaling.of(x, y, self.task)
        x = scaling.inputs(x)
        if not classification:
            y = scaling.outputs(y)
        fitted = []
        for seed in member_seeds(key, self.members):
            rng = np.random.default_rng(seed)
            rows = bootstrap_rows(y if classification else None, len(x), rng) if self.bootstrap else np.arange(len(x))
            if classification and len(np.unique(y[rows])) == 1:
                fitted.append(_SingleClass(int(y[rows][0])))
                continue
            fitted.append(_with_seed(self.estimator, seed).fit(x[rows], y[rows]))
        return dataclasses.replace(self, fitted=tuple(fitted), scaling=scaling)

    def predict_members(self, x: np.ndarray) -> jax.Array:
        if not self.fitted:
            raise RuntimeError("predict_members called on a committee that was never fitted")
        x = self.scaling.inputs(x)
        if len(x) == 0:
            return jnp.zeros((self.members, 0, self._width()), jnp.float32)
        if self.task == "classification":
            out = [_class_probabilities(m, x, self.n_classes, np.asarray(m.classes_).astype(np.int64))
                   for m in self.fitted]
        else:
            out = [self.scaling.values(_values(m, x)) for m in self.fitted]
        return jnp.asarray(np.stack(out), dtype=jnp.float32)


@dataclasses.dataclass(frozen=True)
class EnsembleCommittee:
    """The sub-estimators of one scikit-learn ensemble as the committee's members.

    Args:
        estimator: an unfitted `RandomForestClassifier`, `ExtraTreesClassifier`,
            `BaggingClassifier` (or their regressors); anything with `estimators_` after
            fitting. Its `random_state` is set from the key.
        task: "classification" or "regression".
        n_classes: number of classes (classification only).

    The members' mean probability is the forest's own `predict_proba`. Shapes as for
    `BaggedCommittee`; the committee has as many members as the ensemble has estimators.
    """

    estimator: Any
    task: Task = "classification"
    n_classes: int | None = 2
    fitted: Any = dataclasses.field(default=None, repr=False, compare=False)
    scaling: Scaling | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_task(self.task, self.n_classes)

    @property
    def is_fitted(self) -> bool:
        return self.fitted is not None

    def _width(self) -> int:
        return self.n_classes if self.task == "classification" else _n_outputs(self.fitted)

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "EnsembleCommittee":
        x, y = training_data(x, y, self.task, self.n_classes)
        scaling = Scaling.of(x, y, self.task)
        x = scaling.inputs(x)
        if self.task != "classification":
            y = scaling.outputs(y)
        with warnings.catch_warnings():
            # A tiny data set leaves a few rows in every tree's resample: their out-of-bag
            # prediction is NaN, which `held_out_predictions` reports as such; scikit-learn's own
            # out-of-bag R^2, which nothing here reads, is undefined below two rows.
            for message in (".*out-of-bag.*", ".*do not have OOB scores.*", ".*not well-defined with less than two.*"):
                warnings.filterwarnings("ignore", message=message)
            ensemble = _with_seed(self.estimator, int(member_seeds(key, 1)[0])).fit(x, y)
        if not hasattr(ensemble, "estimators_"):
            raise TypeError(f"{type(self.estimator).__name__} has no estimators_ after fitting; "
                            "use BaggedCommittee for a single estimator")
        return dataclasses.replace(self, fitted=ensemble, scaling=scaling)

    def held_out_predictions(self) -> np.ndarray:
        """Out-of-bag predictions of the training rows, (n, n_outputs) values or (n, n_classes)
        probabilities: each row predicted by the members whose resample left it out. Needs an
        estimator with `bootstrap=True, oob_score=True`."""
        if self.fitted is None:
            raise RuntimeError("held_out_predictions called on a committee that was never fitted")
        ensemble = self.fitted
        if not getattr(ensemble, "oob_score", False):
            raise RuntimeError(f"{type(ensemble).__name__} gives out-of-bag predictions only with "
                               "bootstrap=True and oob_score=True")
        if self.task == "classification":
            out = np.zeros((len(ensemble.oob_decision_function_), self.n_classes))
            out[:, np.asarray(ensemble.classes_).astype(np.int64)] = ensemble.oob_decision_function_
            return out
        pred = np.asarray(ensemble.oob_prediction_, dtype=np.float64)
        return self.scaling.values(pred[:, None] if pred.ndim == 1 else pred)

    def predict_members(self, x: np.ndarray) -> jax.Array:
        if self.fitted is None:
            raise RuntimeError("predict_members called on a committee that was never fitted")
        x = self.scaling.inputs(x)
        ensemble = self.fitted
        if len(x) == 0:
            return jnp.zeros((len(ensemble.estimators_), 0, self._width()), jnp.float32)
        # Bagging ensembles may fit each member on a subset of the features.
        features = getattr(ensemble, "estimators_features_", None) or [slice(None)] * len(ensemble.estimators_)
        out = []
        for member, cols in zip(ensemble.estimators_, features):
            xm = x[:, cols]
            if self.task == "classification":
                # Members are fitted on class indices into the ensemble's classes_.
                labels = np.asarray(ensemble.classes_)[np.asarray(member.classes_).astype(np.int64)]
                out.append(_class_probabilities(member, xm, self.n_classes, labels.astype(np.int64)))
            else:
                out.append(self.scaling.values(_values(member, xm)))
        return jnp.asarray(np.stack(out), dtype=jnp.float32)
