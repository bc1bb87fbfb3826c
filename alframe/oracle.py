"""Oracles: the simulations the loop pays for.

An oracle takes queries of shape (n, dim) and returns an `Outcome` with one entry per
query. A run that raises, or returns non-finite values, is marked failed with its error
text: it is recorded like any other run and never reaches the training data.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np

from alframe.space import Space

STORE_NAMES = frozenset({"sample", "input", "output", "round", "test_sample", "x", "y", "ok", "error", "cost_s",
                         "round_of", "x_test", "y_test"})
"""The run store's own dimension and variable names, which an output coordinate cannot take."""

Task = Literal["regression", "classification"]


@dataclass(frozen=True)
class OutputSpec:
    """What an oracle returns per query.

    Args:
        names: one name per output column (regression) or the label's name (classification).
        task: "regression" (real outputs, shape (len(names),)) or "classification"
            (one integer label in [0, len(classes)) per query, stored as shape (1,)).
        classes: class names, required for classification.
        coords: where each output sits along some axis, one per output: numbers (a
            multipole, a time, a wavelength) or strings. Stored as a coordinate on the store's
            `output` dim.
        coord_name: what `coords` measure, e.g. "ell" or "time" (default "output_coord").
        units: the outputs' units: one string for all, or one per output.
        transform: what the simulator did to its raw outputs before returning them, e.g.
            "log10", so that readers can undo it.
    """

    names: tuple[str, ...]
    task: Task = "regression"
    classes: tuple[str, ...] | None = None
    coords: tuple[float | str, ...] | None = None
    coord_name: str | None = None
    units: tuple[str, ...] | str | None = None
    transform: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        if not self.names:
            raise ValueError("an OutputSpec needs at least one output name")
        repeated = sorted({str(n) for n in self.names if self.names.count(n) > 1})
        if repeated:
            raise ValueError(f"output names must be unique; repeated: {', '.join(repeated)}")
        if self.task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {self.task!r}")
        if self.task == "regression" and self.classes is not None:
            raise ValueError("an OutputSpec with classes is a classification: give task='classification' "
                             "(or leave classes out for real-valued outputs)")
        if self.task == "classification":
            if not self.classes or len(self.classes) < 2:
                raise ValueError("a classification OutputSpec needs at least two classes")
            if len(self.names) != 1:
                raise ValueError("a classification OutputSpec has exactly one output (the label)")
            object.__setattr__(self, "classes", tuple(self.classes))
        if self.coords is not None:
            object.__setattr__(self, "coords", _output_coords(self.coords, len(self.names)))
        if self.coord_name is not None:
            if not isinstance(self.coord_name, str) or not self.coord_name:
                raise ValueError(f"OutputSpec coord_name must be a non-empty string, got {self.coord_name!r}")
            if self.coords is None:
                raise ValueError(f"OutputSpec coord_name {self.coord_name!r} needs coords, one per output")
            if self.coord_name in STORE_NAMES:
                raise ValueError(f"OutputSpec coord_name {self.coord_name!r} is a name the run store uses itself "
                                 f"({', '.join(sorted(STORE_NAMES))}); choose another, e.g. "
                                 f"{self.coord_name + '_coord'!r}")
        if self.units is not None:
            object.__setattr__(self, "units", _output_units(self.units, len(self.names)))
        if self.transform is not None and (not isinstance(self.transform, str) or not self.transform):
            raise ValueError(f"OutputSpec transform must be a non-empty string, got {self.transform!r}")

    @property
    def dim(self) -> int:
        return len(self.names)


def _output_coords(coords, n_outputs: int) -> tuple[float, ...] | tuple[str, ...]:
    """`coords` as a tuple of n_outputs floats or of n_outputs strings, or ValueError."""
    if isinstance(coords, str) or not isinstance(coords, Sequence | np.ndarray):
        raise ValueError(f"OutputSpec coords must be a sequence, one per output, got {coords!r}")
    coords = tuple(coords.tolist() if isinstance(coords, np.ndarray) else coords)
    if len(coords) != n_outputs:
        raise ValueError(f"OutputSpec coords has {len(coords)} values for {n_outputs} outputs")
    if all(isinstance(c, str) for c in coords):
        return coords
    numbers = all(isinstance(c, int | float | np.integer | np.floating) and not isinstance(c, bool) for c in coords)
    if not numbers:
        raise ValueError(f"OutputSpec coords must be all numbers or all strings, got {coords!r}")
    return tuple(float(c) for c in coords)


def _output_units(units, n_outputs: int) -> str | tuple[str, ...]:
    """`units` as one string or a tuple of n_outputs strings, or ValueError."""
    if isinstance(units, str):
        return units
    units = tuple(units)
    if len(units) != n_outputs or not all(isinstance(u, str) for u in units):
        raise ValueError(f"OutputSpec units must be one string or {n_outputs} strings (one per output), "
                         f"got {units!r}")
    return units


class Outcome(NamedTuple):
    """Results of n runs.

    Fields:
        y: (n, n_outputs) float64; NaN where the run failed.
        ok: (n,) bool; whether the run succeeded.
        error: (n,) str; empty where ok, else the reason.
        cost_s: (n,) float64; wall seconds spent on each run.
    """

    y: np.ndarray
    ok: np.ndarray
    error: np.ndarray
    cost_s: np.ndarray

    def __len__(self) -> int:
        return len(self.ok)


def concat_outcomes(outcomes: Sequence[Outcome], n_outputs: int) -> Outcome:
    """Stack outcomes in order; an empty sequence gives an empty Outcome."""
    if not outcomes:
        return Outcome(
            np.empty((0, n_outputs)), np.empty(0, bool), np.empty(0, dtype=object), np.empty(0)
        )
    return Outcome(*(np.concatenate(parts) for parts in zip(*outcomes)))


@runtime_checkable
class Oracle(Protocol):
    """A simulator the loop may query."""

    @property
    def space(self) -> Space: ...

    @property
    def outputs(self) -> OutputSpec: ...

    def run(self, queries: np.ndarray) -> Outcome:
        """Run every query, shape (n, space.dim); never raise for a single bad run."""
        ...


def _describe(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}".replace("\n", " ")


def _numbers(values) -> np.ndarray:
    """values as float64, refusing text: a simulator that hands back "1.5" has most likely read its
    output file without converting it, and one that hands back "" or "error" would otherwise
    pass as a number or fail with numpy's words."""
    raw = np.asarray(values)
    if raw.dtype.kind in "USO":
        text = [v.item() if isinstance(v, np.generic) else v for v in raw.ravel() if isinstance(v, (str, bytes))]
        if text:
            raise ValueError(f"simulator returned text ({text[0]!r}), expected numbers (convert with float())")
        if any(v is None for v in raw.ravel()):
            raise ValueError("simulator returned None among its values, expected numbers (a missing return?)")
    return raw.astype(np.float64)


def _as_outputs(values, n: int, n_outputs: int) -> np.ndarray:
    if values is None:
        raise ValueError(f"simulator returned None, expected an array of shape {(n, n_outputs)} (a missing return?)")
    y = _numbers(values)
    if y.ndim == 1 and n_outputs == 1 and y.shape[0] == n:
        y = y[:, None]
    if y.shape != (n, n_outputs):
        raise ValueError(f"simulator returned shape {y.shape}, expected {(n, n_outputs)}")
    return y


def _one_output_row(values, n_outputs: int) -> np.ndarray:
    if values is None:
        raise ValueError(f"simulator returned None for one query, expected {n_outputs} values (a missing return?)")
    y = _numbers(values)
    if y.size != n_outputs:
        raise ValueError(f"simulator returned {y.size} values of shape {y.shape} for one query, expected {n_outputs}")
    return y.reshape(n_outputs)


@dataclass(frozen=True)
class FunctionOracle:
    """Turn a numpy or JAX function into an oracle.

    Args:
        fn: vectorised, (n, dim) -> (n, n_outputs) or (n,); or per point,
            (dim,) -> (n_outputs,) or a scalar, when `vectorized=False`.
        space: the inputs `fn` accepts.
        outputs: what `fn` returns.
        vectorized: whether `fn` takes a whole batch. If a vectorised call raises, each
            query is retried alone so that one bad input fails only its own run.
        version: names the code behind `fn` (change it when its results change). A result
            cache built from a config keys on it; without one, on a digest of the simulator's
            source files.
    """

    fn: Callable[[np.ndarray], np.ndarray]
    space: Space
    outputs: OutputSpec
    vectorized: bool = True
    version: str | None = None

    def run(self, queries: np.ndarray) -> Outcome:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        if queries.shape[1] != self.space.dim:
            raise ValueError(
                f"queries have {queries.shape[1]} columns, the space {list(self.space.names)} "
                f"has {self.space.dim}"
            )
        if self.vectorized:
            start = time.perf_counter()
            try:
                returned = self.fn(queries)
            except Exception:  # noqa: BLE001 - isolate the failing queries below
                return self._run_each(queries)
            elapsed = time.perf_counter() - start
            cost = np.full(len(queries), elapsed / max(len(queries), 1))
            try:
                y = _as_outputs(returned, len(queries), self.outputs.dim)
            except ValueError as exc:  # the batch's own shape, not one query's, says what is wrong
                return Outcome(np.full((len(queries), self.outputs.dim), np.nan), np.zeros(len(queries), bool),
                               np.full(len(queries), _describe(exc), dtype=object), cost)
            return self._checked(y, cost)
        return self._run_each(queries)

    def _checked(self, y: np.ndarray, cost: np.ndarray) -> Outcome:
        """Rows y (n, n_outputs) as an Outcome: failed where an output is not finite or, for a
        classification, not one of the class indices."""
        finite = np.all(np.isfinite(y), axis=1)
        error = np.array([_non_finite(row, self.outputs.names) for row in y], dtype=object)
        if self.outputs.task == "classification":
            n = len(self.outputs.classes)
            label = y[:, 0] if y.shape[1] else np.zeros(len(y))
            bad = finite & ((label < 0) | (label >= n) | (label != np.round(label)))
            error[bad] = [f"label {v:g} is not a class index in [0, {n}) ({', '.join(self.outputs.classes)})"
                          for v in label[bad]]
            finite &= ~bad
        return Outcome(np.where(finite[:, None], y, np.nan), finite, error, cost)

    def _run_each(self, queries: np.ndarray) -> Outcome:
        n, n_out = len(queries), self.outputs.dim
        y = np.full((n, n_out), np.nan)
        error = np.full(n, "", dtype=object)
        cost = np.zeros(n)
        for i, q in enumerate(queries):
            start = time.perf_counter()
            try:
                out = self.fn(q[None, :]) if self.vectorized else self.fn(q)
                y[i] = _as_outputs(out, 1, n_out)[0] if self.vectorized else _one_output_row(out, n_out)
            except Exception as exc:  # noqa: BLE001 - a failed run is data
                error[i] = _describe(exc)
            cost[i] = time.perf_counter() - start
        failed_by_error = error != ""
        outcome = self._checked(y, cost)
        error = np.where(failed_by_error, error, outcome.error)
        ok = outcome.ok & ~failed_by_error
        return Outcome(np.where(ok[:, None], y, np.nan), ok, error, cost)


def _non_finite(row: np.ndarray, names: tuple[str, ...], shown: int = 3) -> str:
    """"" for a row (n_outputs,) of finite outputs, else "non-finite output NAME, ..." naming them."""
    bad = [name for name, v in zip(names, row) if not np.isfinite(v)]
    if not bad:
        return ""
    more = f" and {len(bad) - shown} more" if len(bad) > shown else ""
    whole = " (a run's outputs are kept together or not at all)" if len(names) > 1 else ""
    return f"non-finite output {', '.join(bad[:shown])}{more}{whole}"
