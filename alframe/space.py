"""Input spaces: a continuous `Box` of named inputs and a finite `Pool` of candidates.

Both answer the same two questions the loop asks: which inputs exist (`names`, `dim`)
and which candidates to consider now (`draw`). Points are always float arrays of shape
(n, dim), columns in the order of `names`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from scipy.stats import qmc

DrawMethod = Literal["uniform", "sobol", "lhs"]
DRAW_METHODS: tuple[str, ...] = ("uniform", "sobol", "lhs")
MAX_CATEGORIES = 64
# The kinds of input a Box may declare (by field), and the pairs no input may be both of.
_KINDS = {"log-scale": "log", "periodic": "periodic", "integer": "integer", "categorical": "categorical"}
_EXCLUSIVE = (("log-scale", "periodic"), ("integer", "periodic"), ("categorical", "log-scale"),
              ("categorical", "periodic"), ("categorical", "integer"))


@runtime_checkable
class Space(Protocol):
    """What an oracle accepts."""

    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def dim(self) -> int: ...

    def draw(self, n: int, *, seed: int, method: DrawMethod = "uniform", offset: int = 0) -> np.ndarray:
        """Return `n` candidate points, shape (n, dim)."""
        ...


def _check_names(names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(names)
    if not names:
        raise ValueError("a space needs at least one input name")
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"input name {name!r} is not a valid identifier")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"input names must be unique; repeated: {', '.join(duplicated)}")
    return names


@dataclass(frozen=True)
class Box:
    """Named continuous inputs with bounds, optionally on a log scale.

    Args:
        names: one identifier per input.
        lower, upper: bounds per input, `lower < upper`, both finite.
        log: names of inputs drawn uniformly in log10 (their bounds must be positive); the
            learners see their log10.
        periodic: names of inputs whose bounds span one period (an angle in [0, 2 pi], a phase,
            a time of day): the learners see each as (cos, sin) of its phase, so the two ends
            of its range are neighbours.
        integer: names of inputs that take whole numbers only (a grid resolution, a number of
            particles or species): their bounds must be whole numbers and are both included,
            draws are uniform over those values (over their log10 with `log`, rounded to the
            nearest whole number), and the simulator receives them as floats with no fraction.
        categorical: names of inputs whose whole values label unordered options (a choice of
            equation of state, of solver, of initial condition): drawn like `integer` ones, and
            the learners see each as one indicator column per value, so no option is nearer to
            one than to another. Bounds are whole numbers, e.g. 0 and the number of options - 1.

    Example:
        >>> box = Box(names=("x0", "v0", "t"), lower=(-2, -2, 0), upper=(2, 2, 5))
        >>> box.draw(4, seed=0, method="sobol").shape
        (4, 3)
    """

    names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    log: tuple[str, ...] = ()
    periodic: tuple[str, ...] = ()
    integer: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    _log_mask: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = _check_names(self.names)
        lower = tuple(float(v) for v in self.lower)
        upper = tuple(float(v) for v in self.upper)
        if len(lower) != len(names) or len(upper) != len(names):
            raise ValueError(
                f"Box has {len(names)} names but {len(lower)} lower and {len(upper)} upper bounds"
            )
        for name, lo, hi in zip(names, lower, upper):
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"bounds of input {name!r} must be finite, got [{lo}, {hi}]")
            if not lo < hi:
                raise ValueError(f"input {name!r} needs lower < upper, got [{lo}, {hi}]")
        kinds = {kind: tuple(getattr(self, field_name)) for kind, field_name in _KINDS.items()}
        for kind, declared in kinds.items():
            unknown = [n for n in declared if n not in names]
            if unknown:
                raise ValueError(f"{kind} inputs {unknown} are not among the names {list(names)}")
        for first, second in _EXCLUSIVE:
            both = [n for n in kinds[first] if n in kinds[second]]
            if both:
                raise ValueError(f"inputs {both} are declared both {first} and {second}; choose one")
        log, periodic, integer, categorical = kinds.values()
        for name, lo, hi in zip(names, lower, upper):
            if name in log and lo <= 0:
                raise ValueError(f"log-scale input {name!r} needs a positive lower bound, got {lo}")
            if name in integer + categorical and not (lo.is_integer() and hi.is_integer()):
                kind = "integer" if name in integer else "categorical"
                raise ValueError(f"{kind} input {name!r} needs whole-number bounds, got [{lo:g}, {hi:g}]")
            if name in categorical and hi - lo + 1 > MAX_CATEGORIES:
                raise ValueError(f"categorical input {name!r} has {hi - lo + 1:.0f} options; at most "
                                 f"{MAX_CATEGORIES} are supported (declare it integer if its values are ordered)")
        object.__setattr__(self, "periodic", periodic)
        object.__setattr__(self, "integer", integer)
        object.__setattr__(self, "categorical", categorical)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "log", log)
        object.__setattr__(self, "_log_mask", np.array([n in log for n in names]))

    @property
    def dim(self) -> int:
        return len(self.names)

    def _scaled_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.array(self.lower), np.array(self.upper)
        lo = np.where(self._log_mask, np.log10(np.where(self._log_mask, lo, 1.0)), lo)
        hi = np.where(self._log_mask, np.log10(np.where(self._log_mask, hi, 1.0)), hi)
        return lo, hi

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Map points of the unit cube, shape (n, dim), to the box (integer inputs to one of
        their values, each value taking an equal share of the cube's side)."""
        lo, hi = self._scaled_bounds()
        u = np.asarray(u, dtype=np.float64)
        z = lo + u * (hi - lo)
        # Only log-scale columns are exponentiated: 10**z of a linear column may overflow.
        x = np.where(self._log_mask, 10.0 ** np.where(self._log_mask, z, 0.0), z)
        for j, name in enumerate(self.names):
            if name in self._whole:
                low, high = self.lower[j], self.upper[j]
                whole = np.rint(x[:, j]) if name in self.log else np.floor(low + u[:, j] * (high - low + 1))
                x[:, j] = np.clip(whole, low, high)
        return x

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """Map points of the box, shape (n, dim), to the unit cube."""
        lo, hi = self._scaled_bounds()
        x = np.asarray(x, dtype=np.float64)
        z = np.where(self._log_mask, np.log10(np.where(self._log_mask, np.abs(x), 1.0)), x)
        return (z - lo) / (hi - lo)

    @property
    def _whole(self) -> tuple[str, ...]:
        """The inputs that take whole numbers only: integer and categorical ones."""
        return self.integer + self.categorical

    @property
    def plain(self) -> bool:
        """Whether every input is linear: no log-scale, periodic or categorical ones, so
        `coordinates` is x."""
        return not (self.log or self.periodic or self.categorical)

    def coordinates(self, x: np.ndarray) -> np.ndarray:
        """The inputs as a learner should see them: points (n, dim) -> (n, m), m = dim +
        n_periodic + sum over categorical inputs of (their number of options - 1).

        Linear inputs are kept as they are, log-scale ones become log10, each periodic one
        becomes the cos and sin of its phase 2 pi (x - lower) / (upper - lower), both columns
        in its place, and each categorical one an indicator column per option.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"coordinates needs points of shape (n, {self.dim}), got {x.shape}")
        columns = []
        for j, name in enumerate(self.names):
            column = x[:, j]
            if name in self.log:
                columns.append(np.log10(np.maximum(column, np.finfo(float).tiny)))
            elif name in self.periodic:
                phase = 2 * np.pi * (column - self.lower[j]) / (self.upper[j] - self.lower[j])
                columns += [np.cos(phase), np.sin(phase)]
            elif name in self.categorical:
                options = np.arange(self.lower[j], self.upper[j] + 1)
                columns += list((column[None, :] == options[:, None]).astype(np.float64))
            else:
                columns.append(column)
        return np.stack(columns, axis=1) if columns else np.empty((len(x), 0))

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Whether each point, shape (n, dim), lies in the box (integer inputs at whole numbers);
        returns (n,) bool."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        inside = (x >= np.array(self.lower)) & (x <= np.array(self.upper))
        whole = np.array([name in self._whole for name in self.names])
        return np.all(inside & (~whole | (x == np.round(x))), axis=1)

    def draw(self, n: int, *, seed: int, method: DrawMethod = "uniform", offset: int = 0) -> np.ndarray:
        """Draw `n` points, shape (n, dim).

        `uniform` and `lhs` give independent draws for each `seed` (and `offset`).
        `sobol` gives points `offset .. offset + n` of one scrambled Sobol sequence fixed by
        `seed`, so successive calls with growing offsets continue a single low-discrepancy design.
        """
        if n < 0:
            raise ValueError(f"cannot draw a negative number of points ({n})")
        if method == "uniform":
            rng = np.random.default_rng([seed, offset])
            u = rng.random((n, self.dim))
        elif method == "sobol":
            sampler = qmc.Sobol(d=self.dim, scramble=True, seed=np.random.default_rng(seed))
            if offset:
                sampler.fast_forward(offset)
            with warnings.catch_warnings():
                # Batches of any size continue one sequence; the power-of-two advice is moot.
                warnings.filterwarnings("ignore", message="The balance properties of Sobol")
                u = sampler.random(n) if n else np.empty((0, self.dim))
        elif method == "lhs":
            sampler = qmc.LatinHypercube(d=self.dim, seed=np.random.default_rng([seed, offset]))
            u = sampler.random(n) if n else np.empty((0, self.dim))
        else:
            raise ValueError(f"unknown draw method {method!r}; choose one of {DRAW_METHODS}")
        return self.from_unit(u)


@dataclass(frozen=True)
class Pool:
    """A finite set of candidates: the rows of a table, shape (n_rows, dim).

    `draw` returns rows in a seeded random order (all methods are the same on a pool; the
    rows themselves are the design). `index_of` maps points back to row numbers.
    """

    names: tuple[str, ...]
    values: np.ndarray
    ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        names = _check_names(self.names)
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(names):
            raise ValueError(
                f"Pool values must have shape (n_rows, {len(names)}) for names {list(names)}, "
                f"got {values.shape}"
            )
        if not np.all(np.isfinite(values)):
            bad = np.argwhere(~np.isfinite(values))[0]
            raise ValueError(f"Pool value in row {bad[0]}, column {names[bad[1]]!r} is not finite")
        if self.ids is not None and len(self.ids) != len(values):
            raise ValueError(f"Pool has {len(values)} rows but {len(self.ids)} ids")
        values = values.copy()
        values.setflags(write=False)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "values", values)

    @property
    def dim(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.values)

    def draw(self, n: int, *, seed: int, method: DrawMethod = "uniform", offset: int = 0) -> np.ndarray:
        """Return `min(n, len(pool))` rows in a random order fixed by `seed` and `offset`."""
        if n < 0:
            raise ValueError(f"cannot draw a negative number of points ({n})")
        if method not in DRAW_METHODS:
            raise ValueError(f"unknown draw method {method!r}; choose one of {DRAW_METHODS}")
        rng = np.random.default_rng([seed, offset])
        rows = rng.permutation(len(self.values))[: min(n, len(self.values))]
        return self.values[rows]

    def index_of(self, x: np.ndarray) -> np.ndarray:
        """Row numbers of points `x`, shape (n, dim) -> (n,) int; -1 where absent."""
        lookup = {row.tobytes(): i for i, row in enumerate(self.values)}
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        return np.array([lookup.get(row.tobytes(), -1) for row in x], dtype=np.int64)


def declaration(space: Space) -> dict[str, list] | None:
    """A `Box`'s names, bounds and declared kinds of input, as lists a store can keep (JSON);
    `Box(**declaration(box)) == box`. None for other spaces, whose inputs a learner sees as given."""
    if not isinstance(space, Box):
        return None
    return {name: list(getattr(space, name)) for name in ("names", "lower", "upper", *_KINDS.values())}
