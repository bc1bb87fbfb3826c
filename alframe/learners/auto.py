"""The default committee: choose the committee family by cross-validated error on the runs so far.

No one family wins everywhere: a Gaussian process is hard to beat on a smooth simulator with
few runs, an MLP ensemble keeps improving on a smooth one with many, and a forest of
extremely randomised trees copes with jumps, narrow features and heavy tails that make the
other two worse than predicting the mean. `AutoCommittee` fits every family from scratch on
the runs so far, scores each by the error of its held-out predictions (5-fold for the GP, in
closed form, and for the MLP, whose five members each hold out a fold; out-of-bag trees for
the forest: each comes with the fit, so choosing costs no extra fits), and keeps the best. It
chooses again whenever the data have grown by `growth` since the last choice; in between only
the chosen family is refitted (the MLP warm-started). Every choice but the first is made in the
background, while the strategy chooses and the simulations run, and takes effect at the next
fit (past `delay_from` runs, `delay` fits later): a round never waits for all the families'
fits from scratch (about 1.5 s at 1,000 runs on 2 cores) unless the simulations take less time
than they do. Positive outputs spanning decades are also tried on a log scale (`gp_log`), where
a model in the simulator's own units can be worse than predicting the mean; held-out errors
are always compared in the simulator's units.

    >>> committee = AutoCommittee(task="regression", capacity=300)     # doctest: +SKIP
    >>> fitted = committee.fit(x, y, key=jax.random.key(0))             # doctest: +SKIP
    >>> fitted.report()["learner"]                                      # doctest: +SKIP
    'gp'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import jax
import numpy as np

from alframe.learners._shared import standardisation
from alframe.learners.base import (Committee, CorrelationOf, error_correlation, in_background, observation_noise,
                                   start_deferred)

Task = Literal["regression", "classification"]


@runtime_checkable
class SelfValidating(Protocol):
    """A committee whose fit also yields a held-out prediction of every training row."""

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "SelfValidating": ...

    def predict_members(self, x: np.ndarray) -> jax.Array: ...

    def held_out_predictions(self) -> np.ndarray:
        """(n, n_outputs) values or (n, n_classes) probabilities for the last fit's rows."""
        ...


def held_out_of(committee: Any) -> np.ndarray:
    """A fitted committee's held-out predictions of its training rows (see `SelfValidating`), or
    RuntimeError naming a committee that gives none."""
    if not isinstance(committee, SelfValidating):
        raise RuntimeError(f"{type(committee).__name__} gives no held-out predictions")
    return committee.held_out_predictions()


def held_out_error(predicted: np.ndarray, y: np.ndarray, *, task: Task, n_classes: int | None = None) -> float:
    """Error of held-out predictions against the training targets.

    Regression: predicted and y (n, k); the mean over outputs of each output's MSE divided by
    that output's variance (1 is as good as predicting the mean). Classification: predicted
    (n, n_classes) probabilities, y (n,) or (n, 1) labels; the Brier score. NaN predictions
    (a row no member held out) are left out.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if task == "classification":
        labels = y.reshape(-1).astype(np.int64)
        truth = np.eye(n_classes or predicted.shape[1])[labels]
        per_row = np.sum((predicted - truth) ** 2, axis=1)
        return float(np.nanmean(per_row))
    y = y.reshape(len(y), -1)
    predicted = predicted.reshape(len(predicted), -1)
    variance = standardisation(y)[1] ** 2  # the outputs' own variance, in any units
    return float(np.nanmean(np.nanmean((predicted - y) ** 2, axis=0) / variance))


LOG_SPAN = 100.0
"""Positive outputs spanning at least this factor are also tried on a log scale (`gp_log`)."""


def default_families(task: Task, n_classes: int | None, capacity: int,
                     gp_smoothness: float | tuple[float, ...] = 2.5) -> dict[str, Committee]:
    """The families `AutoCommittee` chooses among when none are given: a Gaussian process
    (regression only; the Matérn smoothness `gp_smoothness`, or the likeliest of several), the
    same fitted to log(y) (`gp_log`; it sits out unless every output is positive and one spans
    at least `LOG_SPAN`), an early-stopped SiLU MLP ensemble and an extremely randomised forest
    whose out-of-bag trees give its held-out error."""
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

    from alframe.learners.gp import GaussianProcessCommittee
    from alframe.learners.mlp import MLPCommittee
    from alframe.learners.sklearn import EnsembleCommittee
    from alframe.learners.transformed import LogOutputs

    forest = dict(n_estimators=100, bootstrap=True, oob_score=True, n_jobs=1)
    mlp = MLPCommittee(members=5, hidden=(64, 64, 64), task=task, n_classes=n_classes, early_stopping=True,
                       steps_first=2000, steps_per_sample=8.0, steps_first_min=1000, steps_warm=300,
                       restart_growth=None, capacity=capacity)  # each choice fits it from scratch
    if task == "classification":
        return {"mlp": mlp,
                "extra_trees": EnsembleCommittee(ExtraTreesClassifier(**forest), task=task, n_classes=n_classes)}
    return {"gp": GaussianProcessCommittee(nu=gp_smoothness),
            "gp_log": LogOutputs(GaussianProcessCommittee(nu=gp_smoothness), min_span=LOG_SPAN),
            "mlp": mlp,
            "extra_trees": EnsembleCommittee(ExtraTreesRegressor(**forest), task=task, n_classes=None)}


@dataclasses.dataclass
class _Pending:
    """A choice under way: every family to be fitted from scratch on x, y with `key`. Its fits run
    in a thread once started (`AutoCommittee.start_deferred`); unstarted, or after a restore, the
    next fit makes them."""

    x: np.ndarray
    y: np.ndarray
    key: jax.Array
    fits_left: int = 1  # the fit that takes the choice: 1 the next, 2 the one after, ...
    future: Future | None = dataclasses.field(default=None, compare=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "future": None}  # a restored run fits them again: the same outcome


class _Choice(NamedTuple):
    name: str
    committee: Any  # the fitted committee of the chosen family
    n_at_choice: int  # rows the last choice (made or under way) was made on
    errors: dict[str, float]  # held-out error of every family at the last choice
    chosen_now: bool  # whether the last fit put a new choice into effect
    pending: _Pending | None = None
    noise: float = float("nan")  # the Gaussian process family's noise fraction at the last choice


@dataclasses.dataclass(frozen=True)
class AutoCommittee:
    """The family with the lowest held-out error on the runs so far, re-chosen as data grow.

    Args:
        task: "regression" or "classification".
        n_classes: number of classes (classification only).
        families: name -> unfitted committee with `held_out_predictions()` (see
            `SelfValidating`); None: `default_families(task, n_classes, capacity)`.
        growth: choose again once the training set has grown by this factor since the
            last choice (between choices only the chosen family is refitted).
        capacity: training-buffer rows of the Flax families (set it to the budget).
        gp_smoothness: the Matérn smoothness of the default Gaussian-process families, or several
            to choose among by marginal likelihood (`GaussianProcessCommittee.nu`).
        background: make every choice but the first beside the simulations. The fit that
            starts a choice only refits the chosen family (cheap) and leaves the families' fits
            from scratch pending; `start_deferred()`, which `ActiveLearner.ask` calls once the
            strategy has chosen, runs them in a thread while the queries simulate; the next fit
            takes the choice (waiting for it if need be, making it if it never started) and
            refits the winner on its runs. A choice thus takes effect one fit later, and no
            round waits for every family's fit from scratch unless the simulations are quicker
            than those fits. The outcome is the same however long anything takes. False:
            choose within the fit.
        delay, delay_from: a background choice started on more than `delay_from` runs takes
            effect `delay` fits later instead of at the next one (the fits in between refit the
            family in use), and its fits run at a lower scheduling priority. A choice's fits
            take longer than a round (about 1.5 s at 1,000 runs on 2 cores, mostly the MLP's):
            where simulations take no time, the next round would wait for all of them, while
            spread over the rounds in between they take the cycles those rounds leave. One
            batch among hundreds of runs hardly changes which family wins.

    A family whose fit or held-out prediction fails at a choice (too few rows to hold any
    out, say) sits that choice out. `fit(x, y, key=...)` and `predict_members(x)` take and
    give the shapes of the chosen family; `report()` names it, with every family's held-out
    error at the last choice (`cv_error_<family>`).
    """

    task: Task = "regression"
    n_classes: int | None = None
    families: Mapping[str, Any] | None = None
    growth: float = 1.5
    capacity: int = 1024
    gp_smoothness: float | tuple[float, ...] = 2.5
    background: bool = True
    delay: int = 4
    delay_from: int = 512
    state: _Choice | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {self.task!r}")
        if self.task == "classification" and (self.n_classes is None or self.n_classes < 2):
            raise ValueError(f"classification needs n_classes >= 2, got {self.n_classes}")
        if not self.growth > 1:
            raise ValueError(f"growth must be > 1, got {self.growth}")
        if self.families is not None and not self.families:
            raise ValueError("families must name at least one committee (or be None for the defaults)")
        if hasattr(self.gp_smoothness, "__iter__") and not isinstance(self.gp_smoothness, str):
            from alframe.learners.gp import smoothness  # a list from a config, hashable as the dataclass is

            object.__setattr__(self, "gp_smoothness", tuple(smoothness(v) for v in self.gp_smoothness))
        if self.delay < 1:
            raise ValueError(f"delay must be >= 1 fit, got {self.delay}")
        if self.delay_from < 0:
            raise ValueError(f"delay_from must be >= 0 runs, got {self.delay_from}")

    def candidates(self) -> dict[str, Any]:
        """The families chosen among, name -> unfitted committee."""
        if self.families is None:
            return default_families(self.task, self.n_classes, self.capacity, self.gp_smoothness)
        return dict(self.families)

    @property
    def is_fitted(self) -> bool:
        return self.state is not None

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "AutoCommittee":
        state = self.state
        if state is None:
            return self._choose(x, y, key)
        if state.pending is not None and state.pending.fits_left == 1:
            pending = state.pending
            outcomes = pending.future.result() if pending.future is not None else self._fit_families(
                pending.x, pending.y, pending.key)
            chosen = self._chosen(outcomes, len(pending.x)).state
            try:
                return dataclasses.replace(self, state=chosen._replace(committee=chosen.committee.fit(x, y, key=key)))
            except (RuntimeError, ValueError):
                return self._choose(x, y, key)
        if len(x) >= self.growth * state.n_at_choice and not self.background:
            return self._choose(x, y, key)
        try:
            refitted = state.committee.fit(x, y, key=key)
        except (RuntimeError, ValueError):  # the chosen family cannot take the new runs (a log scale, a zero output)
            return self._choose(x, y, key)
        if state.pending is not None:  # a choice under way, taken at a later fit
            pending = dataclasses.replace(state.pending, fits_left=state.pending.fits_left - 1)
            return dataclasses.replace(self, state=state._replace(committee=refitted, chosen_now=False,
                                                                  pending=pending))
        if len(x) < self.growth * state.n_at_choice:
            return dataclasses.replace(self, state=state._replace(committee=refitted, chosen_now=False))
        pending = _Pending(np.array(x, copy=True), np.array(y, copy=True), key,
                           fits_left=self.delay if len(x) > self.delay_from else 1)
        return dataclasses.replace(self, state=state._replace(committee=refitted, n_at_choice=len(x), chosen_now=False,
                                                              pending=pending))

    def _choose(self, x: np.ndarray, y: np.ndarray, key: jax.Array) -> "AutoCommittee":
        """This committee with a choice made now, within the fit, on x (n, dim), y."""
        return self._chosen(self._fit_families(x, y, key), len(x))

    def start_deferred(self) -> None:
        """Start the chosen family's deferred work (a Gaussian process's retune, say) and the
        fits of a pending choice, each in a thread (see `background`); nothing that is not
        pending or has started."""
        if self.state is None:
            return
        start_deferred(self.state.committee)
        pending = self.state.pending
        if pending is None or pending.future is not None:
            return
        pending.future = in_background(self._fit_families, pending.x, pending.y, pending.key, name="alframe-choice",
                                       yielding=pending.fits_left > 1)

    def _fit_families(self, x: np.ndarray, y: np.ndarray, key: jax.Array) -> list[tuple[str, Any, float, str]]:
        """Every family fitted from scratch on x, y: [(name, fitted or None, held-out error or NaN,
        why it failed or "")], in name order."""
        families = sorted(self.candidates().items())
        keys = jax.random.split(key, len(families))
        # Side by side: the MLP's small matrices leave a core to the GP's single-threaded
        # likelihood search and the forest (a choice at 1,000 runs of the 1-D potential: 1.56 s
        # against 1.95 s one after another, the same fits). Each family has its own key, so the
        # outcome does not depend on the order.
        with ThreadPoolExecutor(max_workers=len(families)) as pool:
            outcomes = list(pool.map(lambda job: self._fit_family(job[0][1], x, y, job[1]), zip(families, keys)))
        return [(name, *outcome) for (name, _), outcome in zip(families, outcomes)]

    def _chosen(self, outcomes: list[tuple[str, Any, float, str]], n: int) -> "AutoCommittee":
        """This committee with the family of lowest held-out error among `outcomes` chosen, on n rows."""
        errors = {name: error for name, _, error, _ in outcomes}
        fitted = {name: committee for name, committee, _, _ in outcomes if committee is not None}
        usable = {name: e for name, e in errors.items() if np.isfinite(e)}
        if not usable:
            if not fitted:
                failures = [f"{name}: {failure}" for name, _, _, failure in outcomes if failure]
                raise ValueError("no committee family could be fitted: " + "; ".join(failures))
            name = sorted(fitted)[0]  # too few rows to hold any out: take the first that fitted
        else:
            name = min(usable, key=lambda k: (usable[k], k))
        noise = getattr(fitted.get("gp"), "noise_fraction", lambda: float("nan"))()
        return dataclasses.replace(self, state=_Choice(name, fitted[name], n, errors, True, noise=noise))

    def _fit_family(self, family: Any, x: np.ndarray, y: np.ndarray, key: jax.Array) -> tuple[Any, float, str]:
        """(fitted committee or None, held-out error or NaN, why it failed or "")."""
        try:
            fitted = family.fit(x, y, key=key)
        except (RuntimeError, ValueError) as exc:
            return None, float("nan"), str(exc)
        try:
            return fitted, held_out_error(fitted.held_out_predictions(), y, task=self.task,
                                          n_classes=self.n_classes), ""
        except (RuntimeError, ValueError) as exc:
            return fitted, float("nan"), str(exc)

    def predict_members(self, x: np.ndarray) -> jax.Array:
        if self.state is None:
            raise RuntimeError("predict_members called on a committee that was never fitted")
        return self.state.committee.predict_members(x)

    def correlation(self, points: np.ndarray) -> CorrelationOf | None:
        """The chosen family's error correlation among points (n, dim) (see
        `alframe.learners.base.Correlated`), or None."""
        if self.state is None:
            raise RuntimeError("correlation called on a committee that was never fitted")
        return error_correlation(self.state.committee, points)

    def noise_variance(self) -> np.ndarray | None:
        """The chosen family's observation noise (see `alframe.learners.base.observation_noise`)."""
        if self.state is None:
            raise RuntimeError("noise_variance called on a committee that was never fitted")
        return observation_noise(self.state.committee)

    def report(self) -> dict[str, float | str]:
        """The chosen family (`learner`), each family's held-out error at the last choice and, where a
        Gaussian process was among them, the share of the outputs' variance it put down to noise
        (`noise_fraction`, see `GaussianProcessCommittee.noise_fraction`)."""
        if self.state is None:
            return {}
        noise = {"noise_fraction": self.state.noise} if np.isfinite(self.state.noise) else {}
        return {"learner": self.state.name, **{f"cv_error_{k}": v for k, v in sorted(self.state.errors.items())},
                **noise}
