"""Contract checks for the three protocols, and small test doubles to run them on.

A new oracle, committee or strategy is checked by one call:

    check_oracle(my_oracle)
    check_committee(my_committee, x, y)
    check_strategy(my_strategy, fitted_committee, candidates, k)

Each raises `ContractError` naming the broken promise, so a project's own tests (and
alframe's, over every node in conf/learner/ and conf/strategy/) need no more than that.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from alframe.learners.base import Committee, Correlated, observation_noise, output_spread
from alframe.learners.output_units import is_classifier
from alframe.oracle import FunctionOracle, Oracle, OutputSpec
from alframe.space import Box
from alframe.strategies.base import Strategy
from alframe.strategies.selection import as_selection


class ContractError(AssertionError):
    """An oracle, committee or strategy breaks the protocol it claims; the message says how."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ContractError(message)


def check_oracle(oracle: Oracle, n: int = 6, *, seed: int = 0) -> None:
    """An oracle has a space and an output spec, answers n queries with an Outcome of n rows
    (y (n, n_outputs), ok (n,) bool, error (n,), cost_s (n,)), not all of them failed (a
    simulator returning the wrong shape fails every run), finite outputs where ok, valid
    labels for classification, and the same outputs for the same inputs, in any batch: again,
    in reverse order and one at a time."""
    space, outputs = oracle.space, oracle.outputs
    _require(space.dim == len(space.names) >= 1, f"space has dim {space.dim} but names {space.names}")
    x = space.draw(n, seed=seed, method="uniform")
    _require(x.shape == (n, space.dim), f"space.draw gave shape {x.shape}, not {(n, space.dim)}")
    outcome = oracle.run(x.copy())
    _require(len(outcome) == n, f"run of {n} queries gave {len(outcome)} outcomes")
    _require(np.shape(outcome.y) == (n, outputs.dim), f"y has shape {np.shape(outcome.y)}, not {(n, outputs.dim)}")
    ok = np.asarray(outcome.ok)
    _require(ok.dtype == bool and ok.shape == (n,), f"ok must be (n,) bool, got {ok.dtype} {ok.shape}")
    _require(np.shape(outcome.error) == (n,) and np.shape(outcome.cost_s) == (n,), "error and cost_s must be (n,)")
    _require(all(bool(e) != bool(o) for e, o in zip(outcome.error, ok)), "a failed run needs an error, an ok one none")
    _require(bool(ok.any()), f"every one of the {n} queries failed (first error: {outcome.error[0]!r}); a "
             "simulator that fails everywhere has nothing to learn: check what it returns (one row of "
             f"{outputs.dim} outputs per query) or raises")
    y_ok = np.asarray(outcome.y)[ok]
    _require(bool(np.all(np.isfinite(y_ok))), "an ok run returned a non-finite output")
    if outputs.task == "classification":
        _require(bool(np.all((y_ok >= 0) & (y_ok < len(outputs.classes)) & (y_ok == np.round(y_ok)))),
                 f"labels must be class indices in [0, {len(outputs.classes)})")
    again = oracle.run(x.copy())
    both = ok & np.asarray(again.ok)
    _require(bool(np.array_equal(np.asarray(outcome.y)[both], np.asarray(again.y)[both])),
             "the same inputs gave different outputs: seed the simulator's randomness from its input")
    # Each input on its own and in another order: randomness seeded from the whole batch, or a
    # state carried from one run to the next, gives an input another answer in another batch.
    reversed_run = oracle.run(x[::-1].copy())
    elsewhere = [(np.asarray(reversed_run.ok)[::-1], np.asarray(reversed_run.y)[::-1])]
    singles = [oracle.run(x[i:i + 1].copy()) for i in range(n)]
    elsewhere.append((np.array([s.ok[0] for s in singles]), np.array([s.y[0] for s in singles])))
    for other_ok, other_y in elsewhere:
        same = ok & other_ok
        _require(bool(np.array_equal(np.asarray(outcome.y)[same], other_y[same])),
                 "an input gave other outputs run alone or in another order than in the batch: seed the "
                 "simulator's randomness from each input alone, not from the batch")


def check_committee(committee: Committee, x: np.ndarray, y: np.ndarray, *, classes: int | None = None,
                    key: jax.Array | None = None, predict_from: np.ndarray | None = None,
                    width: int | None = None, units: bool = True) -> Committee:
    """`fit` returns a fitted committee and leaves x (n, dim), y (n, ...) and the receiver's
    predictions alone; `predict_members` gives (members, m, n_outputs) finite values, or
    probabilities over `classes` summing to 1; the same key gives the same fit; with `units`, the
    units of the inputs and outputs do not matter (`check_units`; leave it off for a committee
    that reads its inputs in coordinates of their own, a log scale or a phase). Returns the fit.

    A committee that predicts from something else than x (an inverse one, reading a run's
    outputs) is checked on `predict_from` (n, ...), with `width` values per prediction."""
    key = jax.random.key(0) if key is None else key
    x, y = np.asarray(x), np.asarray(y)
    inputs = x if predict_from is None else np.asarray(predict_from)
    x_copy, y_copy = x.copy(), y.copy()
    fitted = committee.fit(x, y, key=key)
    _require(np.array_equal(x, x_copy) and np.array_equal(y, y_copy), "fit changed the arrays it was given")
    members = np.asarray(fitted.predict_members(inputs[:5]))
    if width is None:
        width = classes if classes is not None else (1 if y.ndim == 1 else y.shape[1])
    _require(members.ndim == 3 and members.shape[1:] == (min(5, len(x)), width) and members.shape[0] >= 2,
             f"predict_members gave shape {members.shape}, not (members >= 2, {min(5, len(x))}, {width})")
    _require(bool(np.all(np.isfinite(members))), "predict_members returned non-finite values")
    if classes is not None:
        _require(bool(np.allclose(members.sum(axis=-1), 1.0, atol=1e-4)), "class probabilities do not sum to 1")
    refit = np.asarray(committee.fit(x, y, key=key).predict_members(inputs[:5]))
    _require(bool(np.allclose(members, refit, rtol=1e-5, atol=1e-6)), "the same data and key gave a different fit")
    second = fitted.fit(x[: len(x) // 2], y[: len(y) // 2], key=jax.random.key(1))
    _require(bool(np.allclose(np.asarray(fitted.predict_members(inputs[:5])), members)),
             "fitting again changed the committee it was called on (fit must return a new one)")
    _require(np.asarray(second.predict_members(inputs[:5])).shape == members.shape, "a refit changed the output shape")
    if units and predict_from is None:
        check_units(committee, x, y, classes=classes, key=key)
    return fitted


# A simulator's units are arbitrary: cgs outputs of 1e-20, inputs spanning 1e-9 or sitting at
# 1e6 +- 1 (a date, a temperature in kelvin) must give the committee of the same runs in
# natural units. Output offsets are not tried: predictions are float32, which cannot hold one.
UNIT_CHANGES = (("inputs x 1e-9, outputs x 1e-20", 1e-9, 0.0, 1e-20), ("inputs + 1e6", 1.0, 1e6, 1.0),
                ("outputs x 1e30", 1.0, 0.0, 1e30))


def check_units(committee: Committee, x: np.ndarray, y: np.ndarray, *, classes: int | None = None,
                key: jax.Array | None = None, tolerance: float = 0.1) -> None:
    """The committee fitted on x (n, dim), y (n, ...) in other units (each of `UNIT_CHANGES`:
    inputs scaled and shifted, regression outputs scaled) predicts what it predicts in the
    original units, to `tolerance` of the outputs' spread (of a probability for classes)."""
    key = jax.random.key(0) if key is None else key
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    probe = x[: min(len(x), 20)]
    base = np.asarray(committee.fit(x, y, key=key).predict_members(probe), dtype=np.float64).mean(axis=0)
    spread = 1.0 if classes is not None else np.maximum(np.std(y.reshape(len(y), -1), axis=0), 1e-300)
    for name, scale, shift, output_scale in UNIT_CHANGES:
        moved = y if classes is not None else y * output_scale
        fitted = committee.fit(shift + scale * x, moved, key=key)
        predicted = np.asarray(fitted.predict_members(shift + scale * probe), dtype=np.float64).mean(axis=0)
        if classes is None:
            predicted = predicted / output_scale
        gap = float(np.max(np.sqrt(np.mean((predicted - base) ** 2, axis=0)) / spread))
        _require(np.all(np.isfinite(predicted)) and gap <= tolerance,
                 f"in other units ({name}) the committee predicts differently: a gap of {gap:.3g} of the "
                 f"outputs' spread (at most {tolerance}); standardise inputs and outputs in float64 before fitting")


def check_strategy(strategy: Strategy, committee: Committee, candidates: np.ndarray, k: int, *,
                   key: jax.Array | None = None, units: bool = True) -> None:
    """`select` picks k distinct queries (k, dim) (indices into the candidates (n, dim), or a
    Selection), never a pending one, the same for the same key, and leaves the candidates alone;
    with `units`, the same queries when the inputs and outputs are in other units (`UNIT_CHANGES`;
    leave it off for a strategy that runs a simulator of its own, whose units do not change)."""
    key = jax.random.key(0) if key is None else key
    candidates = np.asarray(candidates, dtype=np.float64)
    original = candidates.copy()
    first = as_selection(strategy.select(committee, candidates, k, key=key), candidates)
    _require(np.array_equal(candidates, original), "select changed the candidates it was given")
    _require(first.points.shape == (k, candidates.shape[1]),
             f"select gave {first.points.shape} points when asked for {k} of dim {candidates.shape[1]}")
    _require(len({row.tobytes() for row in first.points}) == k, "select picked the same point twice")
    again = as_selection(strategy.select(committee, candidates, k, key=key), candidates)
    _require(np.array_equal(first.points, again.points), "the same key gave a different selection")
    pending = first.points[: max(1, k // 2)]
    avoiding = as_selection(strategy.select(committee, candidates, k, key=key, pending=pending), candidates)
    taken = {row.tobytes() for row in pending}
    _require(not any(row.tobytes() in taken for row in avoiding.points), "select picked a pending point")
    _require(len(avoiding) == k, f"with {len(pending)} pending, select gave {len(avoiding)} points, not {k}")
    for name, scale, shift, output_scale in UNIT_CHANGES if units else ():
        moved = as_selection(strategy.select(InOtherUnits(committee, scale, shift, output_scale),
                                             shift + scale * candidates, k, key=key), shift + scale * candidates)
        back = (moved.points - shift) / scale
        # A point off the pool (a search's) moves through float32 predictions, which resolve an
        # input at 1e6 +- 1 to about 0.06: it need only land near the same place.
        off_pool = (np.asarray(first.indices) < 0)[:, None]
        reach = np.where(off_pool, 0.05 * np.ptp(candidates, axis=0), 1e-6 * np.abs(first.points) + 1e-12)
        _require(back.shape == first.points.shape and bool(np.all(np.abs(back - first.points) <= reach)),
                 f"in other units ({name}) select picked other points")


@dataclass(frozen=True)
class InOtherUnits:
    """`committee` as it looks when its simulator's inputs are `shift + scale * x` and its
    regression outputs `output_scale * y`: what a strategy must not notice."""

    committee: Committee
    scale: float
    shift: float
    output_scale: float

    @property
    def _classifier(self) -> bool:
        return is_classifier(self.committee)

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "InOtherUnits":
        y = np.asarray(y) if self._classifier else np.asarray(y) / self.output_scale
        inner = self.committee.fit((np.asarray(x) - self.shift) / self.scale, y, key=key)
        return InOtherUnits(inner, self.scale, self.shift, self.output_scale)

    def _outputs(self, members):
        return members if self._classifier else members * self.output_scale

    def predict_members(self, x: np.ndarray) -> np.ndarray:
        return self._outputs(np.asarray(self.committee.predict_members((np.asarray(x, np.float64) - self.shift)
                                                                       / self.scale), dtype=np.float64))

    def correlation(self, points: np.ndarray):
        """The committee's own error correlation (`alframe.learners.base.Correlated`; it has no
        units), or None where it models none."""
        inner = (np.asarray(points, np.float64) - self.shift) / self.scale
        return self.committee.correlation(inner) if isinstance(self.committee, Correlated) else None

    def noise_variance(self) -> np.ndarray | None:
        """The committee's observation noise variance in these units, or None."""
        noise = observation_noise(self.committee)
        return None if noise is None or self._classifier else np.asarray(noise) * self.output_scale**2

    def output_spread(self) -> np.ndarray | None:
        """The spread of the outputs the committee was fitted on, in these units, or None."""
        spread = output_spread(self.committee)
        return None if spread is None or self._classifier else np.asarray(spread) * abs(self.output_scale)

    def differentiable_members(self):
        """(apply, args) of the committee's own, in these units."""
        apply, args = self.committee.differentiable_members()
        return _Rescaled(apply, self.scale, self.shift, self.output_scale), args


@dataclass(frozen=True)
class _Rescaled:
    """A committee's differentiable members in other units; hashable, as a search needs."""

    apply: object
    scale: float
    shift: float
    output_scale: float

    def __call__(self, args, x: jax.Array) -> jax.Array:
        return self.apply(args, (x - self.shift) / self.scale) * self.output_scale


# -- doubles --------------------------------------------------------------------------------------


def smooth_oracle(dim: int = 3) -> FunctionOracle:
    """A cheap deterministic regression oracle on [0, 1]^dim: y = sin(3 x0) + sum of x_i^2."""
    def fn(x: np.ndarray) -> np.ndarray:
        return np.sin(3 * x[:, 0]) + np.sum(x[:, 1:] ** 2, axis=1)
    space = Box(names=tuple(f"x{i}" for i in range(dim)), lower=(0.0,) * dim, upper=(1.0,) * dim)
    return FunctionOracle(fn=fn, space=space, outputs=OutputSpec(names=("y",)), version="smooth-1")


def threshold_oracle(dim: int = 3, n_classes: int = 3) -> FunctionOracle:
    """A cheap deterministic classification oracle on [0, 1]^dim: the class of x0 + x1 by
    equal parts of [0, 2]."""
    def fn(x: np.ndarray) -> np.ndarray:
        return np.minimum(np.floor((x[:, 0] + x[:, 1]) * n_classes / 2), n_classes - 1).astype(np.float64)
    space = Box(names=tuple(f"x{i}" for i in range(dim)), lower=(0.0,) * dim, upper=(1.0,) * dim)
    classes = tuple(f"class {i}" for i in range(n_classes))
    return FunctionOracle(fn=fn, space=space, outputs=OutputSpec(names=("label",), task="classification",
                                                                classes=classes), version=f"threshold-{n_classes}")


def _fixed_members(slopes: jax.Array, x: jax.Array) -> jax.Array:
    return ((1 + slopes)[:, None] * x.sum(axis=1)[None, :])[..., None]


@dataclass(frozen=True)
class FixedCommittee:
    """A committee whose members are fixed functions of the input: its disagreement is known
    without training. Regression: member m predicts (1 + m * spread) * sum(x); classification
    (`classes` set): member m's probabilities are a softmax of m-shifted linear scores."""

    members: int = 4
    spread: float = 0.3
    classes: int | None = None

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "FixedCommittee":
        return self

    def differentiable_members(self):
        """(apply, args) for gradient search (regression only)."""
        if self.classes is not None:
            raise TypeError("a classification FixedCommittee is not differentiable")
        return _fixed_members, jnp.arange(self.members, dtype=jnp.float32) * self.spread

    def predict_members(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        base = x.sum(axis=1)
        m = np.arange(self.members)[:, None]
        if self.classes is None:
            return ((1 + m * self.spread) * base[None, :])[..., None]
        logits = (np.arange(self.classes)[None, None, :] * (base[None, :, None] - 1.0)
                  * (1 + m[..., None] * self.spread) + 0.5 * np.sin(7 * x[:, :1].T)[..., None] * m[..., None])
        logits = logits - logits.max(axis=-1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=-1, keepdims=True)
