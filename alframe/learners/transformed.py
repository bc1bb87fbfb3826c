"""A committee fitted to the logarithm of positive outputs, predicting in the simulator's units.

Many simulators return positive quantities that span decades: a rate, a mass, a luminosity, a
power law in one input. A model fitted to them in their own units spends itself on the largest
values and can end worse than predicting the mean; fitted to their logarithm, the same model
often learns them almost exactly (a power law becomes linear). `LogOutputs` wraps any regression
committee: it fits the committee to log(y) and exponentiates every member's prediction, so that
disagreement, held-out errors and test metrics all stay in the simulator's units.

    >>> from alframe.learners import GaussianProcessCommittee, LogOutputs      # doctest: +SKIP
    >>> committee = LogOutputs(GaussianProcessCommittee()).fit(x, y, key=key)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from alframe.learners.auto import held_out_of
from alframe.learners.base import CorrelationOf, error_correlation, start_deferred


@dataclasses.dataclass(frozen=True)
class LogOutputs:
    """`committee` fitted to log(y); its members' predictions exponentiated (regression).

    Args:
        committee: any regression committee (fitted on log(y) (n, n_outputs)).
        min_span: refuse outputs whose widest output spans less than this factor (max / min):
            with `learner=auto` the log scale is tried only where it can matter (see
            `alframe.learners.auto.default_families`); 1 takes any positive outputs.

    `fit(x, y, key=...)` raises ValueError, naming the value, when y (n,) or (n, n_outputs) has a
    value <= 0 (or is too narrow for `min_span`); `predict_members(x)` gives the wrapped
    committee's (members, n, n_outputs) in the simulator's units; `held_out_predictions()` and
    `correlation(points)` pass the wrapped committee's through (the first exponentiated), and so
    does `start_deferred()`.
    """

    committee: Any
    min_span: float = 1.0
    fitted: bool = dataclasses.field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.min_span >= 1:
            raise ValueError(f"min_span must be >= 1, got {self.min_span}")

    @property
    def is_fitted(self) -> bool:
        return self.fitted

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "LogOutputs":
        y = np.asarray(y, dtype=np.float64)
        positive = y > 0
        if not np.all(positive):
            row = int(np.flatnonzero(~positive.reshape(len(y), -1).all(axis=1))[0])
            raise ValueError(f"a log scale needs positive outputs, got {y[~positive].flat[0]:.4g} from run {row} of "
                             f"the training set; learner=auto leaves the log scale out where an output is <= 0")
        columns = y.reshape(len(y), -1)
        span = float(np.max(columns.max(axis=0) / columns.min(axis=0))) if len(y) else 1.0
        if span < self.min_span:
            raise ValueError(f"the outputs span a factor of {span:.3g}, less than min_span={self.min_span:g}")
        return dataclasses.replace(self, committee=self.committee.fit(x, np.log(y), key=key), fitted=True)

    def predict_members(self, x: np.ndarray) -> jax.Array:
        if not self.fitted:
            raise RuntimeError("predict_members called on a committee that was never fitted")
        return jnp.exp(self.committee.predict_members(x))

    def held_out_predictions(self) -> np.ndarray:
        """The wrapped committee's held-out predictions of the training rows, exponentiated,
        (n, n_outputs)."""
        if not self.fitted:
            raise RuntimeError("held_out_predictions called on a committee that was never fitted")
        return np.exp(np.asarray(held_out_of(self.committee), dtype=np.float64))

    def correlation(self, points: np.ndarray) -> CorrelationOf | None:
        """The wrapped committee's error correlation among points (n, dim), or None: a log scale
        changes the size of the errors, not how they are correlated to first order."""
        if not self.fitted:
            raise RuntimeError("correlation called on a committee that was never fitted")
        return error_correlation(self.committee, points)

    def start_deferred(self) -> None:
        """Start the wrapped committee's deferred work (see `alframe.learners.base.Deferring`)."""
        start_deferred(self.committee)
