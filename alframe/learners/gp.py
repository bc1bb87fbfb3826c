"""A Gaussian-process committee: jackknife members of one scikit-learn GP, widened by its posterior.

A Gaussian process with a Matérn-5/2 kernel (one length scale per input) is the usual
emulator of a smooth simulator from few runs. Its posterior variance, though, depends only on
where the runs are, not on what they returned: on its own it spreads runs evenly and never
looks harder at a jump or a narrow peak. So the committee is built like a jackknife (Kleijnen
and van Beers 2004): the runs are split into `folds` folds (by a hash of each run's inputs),
and fold f's member is the GP conditioned on every run but fold f's, with the same kernel.
Where leaving runs out changes the prediction, the function is hard there. Each such member
appears twice, plus and minus the full GP's predictive standard deviation, and the members are
centred on the full GP's mean, so that

    members' mean = the GP mean,   members' variance = the folds' spread + GP variance,

the folds' spread being their mean square deviation (the delete-a-fold jackknife variance over
folds - 1), and a disagreement score reads both where the runs are sparse and where the outputs
change fast. (The full jackknife variance shifted the benchmark suite's runs from spreading out
to chasing hard regions, saving more on some problems and fewer on others: see the README.)

Kernel hyperparameters are fitted by maximum marginal likelihood (`alframe.learners.
marginal_likelihood`, from each of `length_starts`) on at most `max_fit_points` rows (a random
subset drawn from the key), then the GP is conditioned on all rows with those hyperparameters:
the cost of a fit is bounded whatever n is, and the conditioning itself is one Cholesky
factorisation of n x n.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import warnings
from concurrent.futures import Future
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from threadpoolctl import threadpool_limits

from alframe.learners._shared import row_folds, standardisation
from alframe.learners.base import CorrelationOf, in_background
from alframe.learners.marginal_likelihood import SUPPORTED_NU, cholesky_inverse, maximise
from alframe.learners.sklearn import member_seeds
from alframe.metrics import varies


_BLAS_LIMIT = threading.Lock()


def _with_lengths(theta: np.ndarray, dim: int, length: float) -> np.ndarray:
    """theta (log constant, log lengths (dim,), [log noise]) with every length set to `length`."""
    theta = np.array(theta, dtype=np.float64)
    theta[1:1 + dim] = np.log(length)
    return theta


NOISE_FLOOR = 1e-8
"""The white-noise level's lower bound (a share of the standardised output variance): a fit that
ends there found no noise, not noise of 1e-8."""

REVIVED_LENGTH = 3.0
"""Where `_revived` restarts a length scale stuck at its upper bound (in units of the runs' range)."""


def smoothness(value) -> float:
    """A Matérn smoothness as a float, from a number or a string (`inf`, or YAML's `.inf`)."""
    return float(value.replace(".inf", "inf")) if isinstance(value, str) else float(value)


def _smoothness_of(kernel) -> float | None:
    """The Matérn smoothness nu of a kernel built by `GaussianProcessCommittee._kernel`."""
    values = [v for k, v in kernel.get_params().items() if k == "nu" or k.endswith("__nu")]
    return float(values[0]) if values else None


def _revived(theta: np.ndarray, bounds: np.ndarray, dim: int, noise: bool) -> np.ndarray | None:
    """A second start for an optimum theta (log constant, log lengths (dim,), [log noise]) whose
    length scales reached their upper bound, or None if none did.

    A length at its bound declares the input inert, and there the likelihood is flat in it: the
    optimiser never comes back, even when the input has a weak but real effect that the fit
    then calls noise (seen on a 10-input wing-weight model, where such an optimum predicted
    5-20x worse than the one this start finds). The start sets those lengths to
    `REVIVED_LENGTH` and the noise no higher than 1e-6; the better of the two optima is kept.
    """
    lengths = slice(1, 1 + dim)
    stuck = theta[lengths] >= bounds[lengths, 1] - np.log(2.0)
    if not stuck.any():
        return None
    start = np.array(theta, dtype=np.float64)
    start[lengths][stuck] = np.log(REVIVED_LENGTH)
    if noise:
        start[-1] = min(start[-1], np.log(1e-6))
    return start


@dataclasses.dataclass
class _Retune:
    """A kernel search on scaled inputs z (n, dim) and outputs y (n, outputs), starting from the
    `previous` kernel, that a fit left for later. Its search runs in a thread once started
    (`GaussianProcessCommittee.start_deferred`); unstarted, or after a restore, the next fit runs
    it: the same kernel either way."""

    z: np.ndarray
    y: np.ndarray
    seed: int
    previous: Any
    fits_left: int = 1  # the fit that takes the kernel: 1 the next, 2 the one after, ...
    future: Future | None = dataclasses.field(default=None, compare=False)

    def search(self, committee: "GaussianProcessCommittee"):
        """The kernel `committee` finds on these runs."""
        return committee._tuned_kernel(self.z, self.y, self.seed, self.previous)

    def result(self, committee: "GaussianProcessCommittee"):
        """The searched kernel: the thread's, or searched now by `committee` if none started."""
        return self.future.result() if self.future is not None else self.search(committee)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "future": None}  # a restored run searches again: the same outcome


class _Fit(NamedTuple):
    gp: GaussianProcessRegressor  # conditioned on every run
    lo: np.ndarray  # (dim,) the runs' lower corner ...
    scale: np.ndarray  # (dim,) ... and range, which scale the inputs to the unit cube
    jackknife: list  # see GaussianProcessCommittee._jackknife
    n_at_tune: int  # runs the kernel was tuned on
    retune: _Retune | None  # a retune left for later (background_retune)
    # (n_outputs,) what the outputs were divided by before the regressor saw them: scikit-learn
    # leaves outputs spread by less than 2e-15 unnormalised, as a simulator in cgs units gives.
    y_unit: np.ndarray | None = None
    constant: np.ndarray | None = None  # (n_outputs,) outputs that did not vary: the members agree on them


@dataclasses.dataclass(frozen=True)
class GaussianProcessCommittee:
    """A Gaussian process as a committee of 2 x `folds` jackknife members (regression).

    Args:
        folds: jackknife folds (>= 2); the committee has twice as many members.
        nu: smoothness of the Matérn kernel: 0.5, 1.5, 2.5 or inf (the squared exponential),
            or several of them, among which each kernel search keeps the one of highest
            marginal likelihood (its hyperparameters searched from the same starts for each;
            a retune searches the other values from the last optimum alone). A smooth
            simulator is learnt far better with the smoothest kernel that fits it (random runs
            on the benchmark suite's smooth problems: a test error up to several times lower
            with the squared exponential than with Matérn 5/2), a kinked or rough one with
            Matérn 3/2, and the likelihood tells which; but it lowers random sampling's error
            more than `qbc`'s, and the savings the benchmark suite measures fall (see the
            README), so the default is Matérn 5/2 alone.
        max_fit_points: rows the hyperparameters are fitted on (a random subset when n is larger).
        noise: fit a white-noise term (for noisy or slightly rough simulators); its level is
            fitted within [`NOISE_FLOOR`, 0.5] of the standardised output variance.
        length_starts: the length scales (in units of the runs' range along each input, the
            same for every input) the likelihood is maximised from, keeping the best optimum.
            From long scales alone, a function with narrow features is often explained as
            white noise (every length at its lower bound, no skill); a short start finds the
            smooth explanation.
        cv_folds: folds of `held_out_predictions`. Five, as the default MLP ensemble's five
            members each hold out a fifth of the runs, so that `AutoCommittee` judges both on
            models fitted to the same share of the runs; leave-one-out (one row a fold) made a
            Gaussian process look about 1.5x better than its test error, and win where an
            MLP ensemble predicted better.
        restarts: extra optimiser starts from random hyperparameters. A refit of a fitted
            committee also starts from its last hyperparameters and keeps the better optimum.
        retune_from_last_only: a refit that tunes again starts only from the last
            hyperparameters, not from `length_starts` and `restarts` too: a third of the cost
            (0.1 s against 0.36 s at 1,000 runs), but a poor optimum (white noise, say) is
            kept until the committee is fitted from scratch. Off in `learner=auto`'s families:
            on the benchmark suite it saved no runs and Hartmann 6-D ended at R^2 0.88 against
            0.91.
        retune_growth: a refit tunes the hyperparameters again once the runs have grown by
            this factor since they were last tuned; in between it only conditions on the new
            runs (one Cholesky factorisation), which keeps a round cheap at large n.
        background_retune: a retune that falls due once the runs outnumber `max_fit_points`
            is made beside the simulations: the fit conditions on the runs with the last
            hyperparameters, `start_deferred()` (which `ActiveLearner.ask` calls once the
            strategy has chosen) searches the likelihood on those runs in a thread, and the
            next fit conditions with the kernel it found (waiting for it if need be, searching
            then if it never started; but see `retune_delay`). The kernel thus lags one fit,
            and no round pays for the search (0.36 s at 1,000 runs) unless the simulations are
            quicker. The outcome is the same however long anything takes. With fewer runs the
            search is cheap and a batch changes the kernel most (deferring it there cost the
            quick benchmark suite more runs than it saved time), so it is made within the fit.
            False: always within the fit.
        retune_delay, retune_delay_from: a background retune on more than `retune_delay_from`
            runs is used `retune_delay` fits later instead of at the next one (the fits in
            between keep the last kernel), and its search runs at a lower scheduling priority
            (`alframe.learners.base.in_background`). Where simulations take no time, the round
            after it then does not wait for it, and the one that uses it waits for what is
            left (see `AutoCommittee.delay`); a batch of 10 among 500 runs hardly changes the
            kernel.

    `fit(x, y, key=...)` takes x (n, dim) and y (n,) or (n, n_outputs) (outputs share the
    kernel); `predict_members(x)` returns (2 folds, n, n_outputs) float32;
    `held_out_predictions()` the exact `cv_folds`-fold cross-validated predictions of the
    training rows (n, n_outputs).
    """

    folds: int = 4
    nu: float | tuple[float, ...] = 2.5
    max_fit_points: int = 256
    noise: bool = True
    length_starts: tuple[float, ...] = (1.0, 0.3)
    cv_folds: int = 5
    restarts: int = 0
    retune_from_last_only: bool = False
    retune_growth: float = 1.2
    background_retune: bool = True
    retune_delay: int = 4
    retune_delay_from: int = 512
    fitted: _Fit | None = dataclasses.field(default=None, repr=False, compare=False)
    # The last points' (cross kernel, triangular solve): a strategy that asks for the members and
    # then the correlation at the same candidates pays for the (n_train, n) solve once.
    _solved: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds}")
        nus = tuple(smoothness(v) for v in (self.nu if hasattr(self.nu, "__iter__") and not isinstance(self.nu, str)
                                            else (self.nu,)))
        if not nus or any(v not in SUPPORTED_NU for v in nus):
            raise ValueError(f"nu must be one or more of {SUPPORTED_NU} (Matérn 1/2, 3/2, 5/2, squared exponential), "
                             f"got {self.nu}")
        object.__setattr__(self, "nu", nus[0] if len(nus) == 1 else nus)
        if self.max_fit_points < 2:
            raise ValueError(f"max_fit_points must be >= 2, got {self.max_fit_points}")
        object.__setattr__(self, "length_starts", tuple(float(v) for v in self.length_starts))
        if not self.length_starts or not all(0.01 <= v <= 100 for v in self.length_starts):
            raise ValueError(f"length_starts must be one or more lengths in [0.01, 100], got {self.length_starts}")
        if self.cv_folds < 2:
            raise ValueError(f"cv_folds must be >= 2, got {self.cv_folds}")
        if self.restarts < 0:
            raise ValueError(f"restarts must be >= 0, got {self.restarts}")
        if not self.retune_growth >= 1:
            raise ValueError(f"retune_growth must be >= 1, got {self.retune_growth}")
        if self.retune_delay < 1:
            raise ValueError(f"retune_delay must be >= 1 fit, got {self.retune_delay}")
        if self.retune_delay_from < 0:
            raise ValueError(f"retune_delay_from must be >= 0 runs, got {self.retune_delay_from}")

    @property
    def is_fitted(self) -> bool:
        return self.fitted is not None

    @property
    def smoothness_choices(self) -> tuple[float, ...]:
        """The Matérn smoothness values a kernel search chooses among."""
        return self.nu if isinstance(self.nu, tuple) else (self.nu,)

    def _kernel(self, dim: int, nu: float | None = None):
        nu = self.smoothness_choices[0] if nu is None else nu
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.ones(dim), (1e-2, 1e2), nu=nu)
        if self.noise:
            kernel = kernel + WhiteKernel(1e-4, (NOISE_FLOOR, 0.5))
        return kernel

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "GaussianProcessCommittee":
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        y = y[:, None] if y.ndim == 1 else y
        if x.ndim != 2 or len(x) < 2 or len(x) != len(y):
            raise ValueError(f"fit needs x (n, dim) and y (n, outputs) with n >= 2, got {x.shape} and {y.shape}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("fit received non-finite training data")
        lo, hi = x.min(axis=0), x.max(axis=0)
        scale = np.where(hi > lo, hi - lo, 1.0)
        z = (x - lo) / scale
        y_unit, constant = standardisation(y)[1], ~varies(y)
        y = y / y_unit
        seed = int(member_seeds(key, 1)[0])
        last = self.fitted
        if last is not None and last.gp.kernel_.n_dims != self._kernel(x.shape[1]).n_dims:
            raise ValueError(f"fit got {x.shape[1]} inputs, the committee was fitted on a different number")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if last is None:
                kernel, n_at_tune = self._tuned_kernel(z, y, seed, None), len(z)
            elif last.retune is not None and last.retune.fits_left == 1:
                kernel, n_at_tune = last.retune.result(self), len(last.retune.z)
            else:
                kernel, n_at_tune = last.gp.kernel_, last.n_at_tune
            retune = None
            if last is not None and last.retune is not None and last.retune.fits_left > 1:
                retune = dataclasses.replace(last.retune, fits_left=last.retune.fits_left - 1)
            elif last is not None and len(z) >= self.retune_growth * n_at_tune:
                if self.background_retune and len(z) > self.max_fit_points:
                    retune = _Retune(z, y, seed, kernel,
                                     fits_left=self.retune_delay if len(z) > self.retune_delay_from else 1)
                else:
                    kernel, n_at_tune = self._tuned_kernel(z, y, seed, kernel), len(z)
            gp = GaussianProcessRegressor(kernel, normalize_y=True, optimizer=None).fit(z, y)
        return dataclasses.replace(self, fitted=_Fit(gp, lo, scale, self._jackknife(gp, z), n_at_tune, retune,
                                                     y_unit, constant))

    def start_deferred(self) -> None:
        """Start a retune that the last fit left pending (see `background_retune`) in a thread;
        nothing if none is pending or it has started."""
        retune = None if self.fitted is None else self.fitted.retune
        if retune is None or retune.future is not None:
            return
        retune.future = in_background(retune.search, self, name="alframe-retune", yielding=retune.fits_left > 1)

    def _tuned_kernel(self, z: np.ndarray, y: np.ndarray, seed: int, previous):
        """The kernel of maximum marginal likelihood on at most `max_fit_points` rows of z (n, dim),
        from each of `length_starts` (and `restarts` random starts) and from `previous` when given
        (from `previous` alone with `retune_from_last_only`)."""
        rng = np.random.default_rng(seed)
        subset = rng.choice(len(z), self.max_fit_points, replace=False) if len(z) > self.max_fit_points else slice(None)
        z, y = z[subset], y[subset]
        template = self._kernel(z.shape[1])
        bounds = template.bounds
        if previous is not None and self.retune_from_last_only:
            starts = [previous.theta]
        else:
            starts = [_with_lengths(template.theta, z.shape[1], length) for length in self.length_starts]
            starts += [rng.uniform(bounds[:, 0], bounds[:, 1]) for _ in range(self.restarts)]
            if previous is not None:
                starts.append(previous.theta)  # the likelihood of a rough function has several optima
        mean, scale = standardisation(y)
        y_norm = (y - mean) / scale
        best = None
        # One BLAS thread: at a few hundred rows, two threads spend longer agreeing than computing
        # (a search at 1,000 runs: 0.33 s against 1.4 s). The limit is process-wide and
        # threadpoolctl lets one thread hold it at a time, so searches in different threads (a
        # retune beside a choice's fits, gp beside gp_log) take turns: each then runs wholly on
        # one thread, whatever runs beside it, and finds the same optimum.
        last_nu = None if previous is None else _smoothness_of(previous)
        with _BLAS_LIMIT, threadpool_limits(1):
            for nu in self.smoothness_choices:
                # A retune searches the other smoothness values from the last optimum alone: its
                # lengths are a close start, and the search costs less than twice one value's.
                tried = starts if last_nu is None or nu == last_nu else [previous.theta]
                theta, value = maximise(z, y_norm, tried, bounds, nu=nu, noise=self.noise)
                revived = _revived(theta, bounds, z.shape[1], self.noise)
                if revived is not None:
                    again, better = maximise(z, y_norm, [revived], bounds, nu=nu, noise=self.noise)
                    if better > value:
                        theta, value = again, better
                if best is None or value > best[2]:
                    best = (nu, theta, value)
        nu, theta, _ = best
        return self._kernel(z.shape[1], nu).clone_with_theta(theta)

    def _jackknife(self, gp: GaussianProcessRegressor, z: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(kept rows (n,) bool, weights (kept, n_outputs)) of each fold's member, in the
        full GP's normalised output units; [] when some fold would be empty."""
        folds = row_folds(z, self.folds)
        if len(np.unique(folds)) < self.folds:
            return []
        gram = gp.kernel_(z) + gp.alpha * np.eye(len(z))
        y_norm = gp.y_train_.reshape(len(z), -1)
        members = []
        for f in range(self.folds):
            kept = folds != f
            factor = cho_factor(gram[np.ix_(kept, kept)], lower=True)
            members.append((kept, cho_solve(factor, y_norm[kept])))
        return members

    def predict_members(self, x: np.ndarray) -> jax.Array:
        if self.fitted is None:
            raise RuntimeError("predict_members called on a committee that was never fitted")
        gp, lo, scale, jackknife = self.fitted[:4]
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(lo):
            raise ValueError(f"predict_members needs x of shape (n, {len(lo)}), got {x.shape}")
        if len(x) == 0:
            return jnp.zeros((2 * self.folds, 0, np.size(gp._y_train_mean)), jnp.float32)
        z = (x - lo) / scale
        # gp.predict(z, return_std=True), sharing its one (n, n_train) kernel matrix with the jackknife.
        cross, v = self._solve(z)
        y_mean, y_scale = self.output_scaling()
        mean = (cross @ gp.alpha_).reshape(len(x), -1) * y_scale + y_mean
        # The doubt about the simulator's answer, not about one noisy observation of it: a
        # committee whose spread held the noise would go on asking where the noise is.
        latent = gp.kernel_.k1 if self.noise else gp.kernel_
        variance = np.maximum(latent.diag(z) - np.einsum("ij,ij->j", v, v), 0.0)
        agreed = self._varied()
        std = np.sqrt(variance)[:, None] * y_scale * agreed
        if jackknife:
            folds = np.stack([cross[:, kept] @ weights for kept, weights in jackknife]) * y_scale
            deviations = (folds - folds.mean(axis=0, keepdims=True)) * agreed  # (folds, n, n_outputs)
        else:
            deviations = np.zeros((self.folds, *mean.shape))
        members = np.concatenate([mean + deviations + std, mean + deviations - std])
        return jnp.asarray(members, dtype=jnp.float32)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_solved": {}}  # a checkpoint keeps the fit, not the last candidates' solve

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def output_scaling(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, scale), each (1, n_outputs), that map the regressor's normalised outputs back
        to the simulator's units."""
        fit = self.fitted
        unit = np.ones(1) if fit.y_unit is None else fit.y_unit
        return (np.reshape(fit.gp._y_train_mean * unit, (1, -1)), np.reshape(fit.gp._y_train_std * unit, (1, -1)))

    def _solve(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(k(z, X_train) (n, n_train), L^-1 k(X_train, z) (n_train, n)) for scaled inputs z (n, dim),
        kept for the last z asked."""
        gp = self.fitted[0]
        z = np.ascontiguousarray(z)
        tag = (z.shape, hashlib.blake2b(z.tobytes(), digest_size=16).digest())
        last = self._solved.get("last")  # one item, replaced whole: safe beside a thread reading it
        if last is None or last[0] != tag:
            cross = gp.kernel_(z, gp.X_train_)  # the white-noise term is 0 off the training set
            last = (tag, (cross, solve_triangular(gp.L_, cross.T, lower=True, check_finite=False)))
            self._solved["last"] = last
        return last[1]

    def correlation(self, points: np.ndarray) -> CorrelationOf:
        """Posterior correlation of the latent function among points (n, dim) with the fitted
        hyperparameters, as rho(rows, cols) -> (n_rows, n_cols): the reach of one run's
        information, which follows the fitted length scales (long along a nearly inert input,
        short along a strong one). Observation noise is left out. One triangular solve of
        (n_train, n) is shared by every call."""
        if self.fitted is None:
            raise RuntimeError("correlation called on a committee that was never fitted")
        gp, lo, scale = self.fitted[:3]
        z = (np.asarray(points, dtype=np.float64) - lo) / scale
        latent = gp.kernel_.k1 if self.noise else gp.kernel_  # the white-noise term is the sum's k2
        v = self._solve(z)[1]  # (n_train, n)
        sd = np.sqrt(np.maximum(latent.diag(z) - np.sum(v**2, axis=0), 1e-300))

        def rho(rows, cols) -> np.ndarray:
            covariance = latent(z[rows], z[cols]) - v[:, rows].T @ v[:, cols]
            return covariance / (sd[rows][:, None] * sd[cols][None, :])

        return rho

    def noise_fraction(self) -> float:
        """The share of the runs' output variance that the fitted kernel puts down to observation
        noise: its white-noise level, the outputs being standardised (0 without a noise term).
        About `NOISE_FLOOR` for a deterministic simulator; for a noisy one, times the outputs'
        variance, the noise variance: a floor under the test error where the test set is noisy too."""
        if self.fitted is None:
            raise RuntimeError("noise_fraction called on a committee that was never fitted")
        return float(self.fitted[0].kernel_.k2.noise_level) if self.noise else 0.0

    def noise_variance(self) -> np.ndarray:
        """The observation noise's variance (n_outputs,) in the simulator's units: `noise_fraction`
        times each output's variance over the runs (0 for an output that did not vary)."""
        _, y_scale = self.output_scaling()
        return self.noise_fraction() * (y_scale[0] * self._varied()) ** 2

    def _varied(self) -> float | np.ndarray:
        """1 for each output that varied over the runs, 0 for one that did not (n_outputs,), or 1
        for all: an output that never varied has no spread to doubt, where scikit-learn would
        scale its posterior by 1 in the simulator's units."""
        return 1.0 if self.fitted.constant is None else np.where(self.fitted.constant, 0.0, 1.0)

    def report(self) -> dict[str, float]:
        """`noise_fraction` of the last fit (recorded per round)."""
        return {} if self.fitted is None else {"noise_fraction": self.noise_fraction()}

    def held_out_predictions(self) -> np.ndarray:
        """Predictions of the training rows, (n, n_outputs): each fold's rows (`cv_folds` folds,
        by a hash of each run's inputs) by the GP conditioned on the other folds, with the
        hyperparameters held fixed. Exact and without refitting: the residual of fold f is
        [K^-1]_ff^-1 (K^-1 y)_f (leave-one-out is the case of one row per fold; Rasmussen &
        Williams 2006, eq. 5.12)."""
        if self.fitted is None:
            raise RuntimeError("held_out_predictions called on a committee that was never fitted")
        gp = self.fitted[0]
        n = len(gp.L_)
        inverse = cholesky_inverse(gp.L_)
        alpha = gp.alpha_.reshape(n, -1)
        y_norm = gp.y_train_.reshape(n, -1)
        folds = row_folds(gp.X_train_, self.cv_folds)
        held_out = np.empty_like(y_norm)
        for f in np.unique(folds):
            rows = folds == f
            held_out[rows] = y_norm[rows] - np.linalg.solve(inverse[np.ix_(rows, rows)], alpha[rows])
        y_mean, y_scale = self.output_scaling()
        return held_out * y_scale + y_mean
