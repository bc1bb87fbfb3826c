"""The committee protocol: several models trained on the same data, disagreeing usefully."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np


@runtime_checkable
class Committee(Protocol):
    """A committee of learners.

    `fit` returns a new, fitted committee (the receiver is left as it was, so a warm start
    continues from the receiver's state). `predict_members` gives every member's prediction:
    values for regression, class probabilities for classification.
    """

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "Committee":
        """Fit on x (n, dim) and y (n, n_outputs), or integer labels (n,) for classification."""
        ...

    def predict_members(self, x: np.ndarray) -> jax.Array:
        """Return (members, n, n_outputs) values or (members, n, n_classes) probabilities."""
        ...


def predict_mean(committee: Committee, x: np.ndarray) -> np.ndarray:
    """The committee's consensus: mean over members, (n, n_outputs) or (n, n_classes)."""
    return np.asarray(committee.predict_members(x)).mean(axis=0)


@runtime_checkable
class Reporting(Protocol):
    """A committee that says what its last fit did (the family it chose, say)."""

    def report(self) -> dict[str, float | str]:
        """Scalars and short strings to record beside the round's metrics."""
        ...


def fit_report(committee: Committee) -> dict[str, float | str]:
    """What a fitted committee reports about its last fit; {} for one that reports nothing."""
    return dict(committee.report()) if isinstance(committee, Reporting) else {}


@runtime_checkable
class Deferring(Protocol):
    """A committee that leaves work for later, to run beside the simulations: the fits from
    scratch of a choice among families (`alframe.learners.auto.AutoCommittee`), a Gaussian
    process's kernel retune (`alframe.learners.gp.GaussianProcessCommittee`)."""

    def start_deferred(self) -> None:
        """Start the deferred work in the background; its outcome does not depend on when."""
        ...


BACKGROUND_NICENESS = 10
"""How much lower than the loop's own the scheduling priority of deferred work is (Linux)."""


def _yielding(work: Callable[..., Any], *args: Any) -> Any:
    """work(*args) at a lower scheduling priority, inherited by the threads it starts: on 2
    cores a round's own fit and selection then run at full speed beside deferred work, which
    takes the cycles they leave. Where a thread's priority cannot be set, at the same one."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                       os.getpriority(os.PRIO_PROCESS, 0) + BACKGROUND_NICENESS)
    except (AttributeError, OSError):
        pass
    return work(*args)


def in_background(work: Callable[..., Any], *args: Any, name: str, yielding: bool = False) -> Future:
    """work(*args) started in a thread of its own (named `name`) that ends with it: deferred
    work's future (see `Deferring`). `yielding`: at a lower scheduling priority, for work not
    needed until a later round."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    future = pool.submit(_yielding, work, *args) if yielding else pool.submit(work, *args)
    pool.shutdown(wait=False)
    return future


def start_deferred(committee: Committee) -> None:
    """Start a fitted committee's deferred work (see `Deferring`), if it has any."""
    if isinstance(committee, Deferring):
        committee.start_deferred()


CorrelationOf = Callable[[Any, Any], np.ndarray]
"""rho(rows, cols): the correlation between the rows and the cols (index arrays or slices) of a
fixed set of points, (n_rows, n_cols)."""


@runtime_checkable
class Correlated(Protocol):
    """A committee with a model of how its errors at different inputs are correlated (a
    Gaussian process's posterior, say), sharper than what a handful of members can estimate."""

    def correlation(self, points: np.ndarray) -> CorrelationOf | None:
        """The posterior correlation among points (n, dim), as a function of index sets (work
        shared by all points is done once); None where the fitted committee has no such model."""
        ...


def output_spread(committee: Any) -> np.ndarray | None:
    """The spread (n_outputs,) of each output over the runs a regression committee was last
    fitted on (the scale it standardises them by), where it records one (the loop's committees
    do: `alframe.learners.OutputUnits`), else None."""
    spread = getattr(committee, "output_spread", None)
    return None if spread is None else spread()


def observation_noise(committee: Any) -> np.ndarray | None:
    """The variance (n_outputs,) a regression committee puts down to observation noise, in the
    simulator's units, where it models one (a Gaussian process's white-noise term: see
    `GaussianProcessCommittee.noise_variance`), else None."""
    noise = getattr(committee, "noise_variance", None)
    return None if noise is None else noise()


def error_correlation(committee: Committee, points: np.ndarray) -> CorrelationOf | None:
    """The committee's own error correlation among points (n, dim) (see `Correlated`), or None
    when it offers none."""
    return committee.correlation(points) if isinstance(committee, Correlated) else None
