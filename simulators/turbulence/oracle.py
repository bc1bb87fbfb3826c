"""The turbulent box as an alframe oracle: input the velocity index n, output a projected map.

A query is one number, n in [3, 4.5] by default. Each query runs the box (or its lognormal
surrogate) from a seed derived from the oracle's seed and the query's exact float64 bytes, so a
query gives the same answer in any batch and order, and the same n at two resolutions starts
from the same large-scale velocity modes (a low-resolution run is a cheap, correlated
low-fidelity version of the full one; `with_resolution` makes that oracle).

Outputs (`output`):
- "image": the log10 column-density map along `axis`, over its mean, flattened row-major from
  shape `image_shape` (names "log10_column[i,j]").
- "summary": (std of log10 column density, slope of its 2-D power spectrum).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alframe.oracle import FunctionOracle, Outcome, OutputSpec
from alframe.space import Box
from simulators.turbulence.errors import InvalidSetting
from simulators.turbulence.images import (
    SUMMARY_NAMES,
    check_image_size,
    column_summary,
    log_column_image,
)
from simulators.turbulence.simulation import check_cells, check_seed, simulate
from simulators.turbulence.solver import Scheme, check_scheme, resolve_dtype
from simulators.turbulence.surrogate import DEFAULT_SIGMA, lognormal_density
from simulators.turbulence.units import CloudSetup

INPUT_NAMES = ("n",)
MODELS = ("hydro", "lognormal")
OUTPUTS = ("image", "summary")


def run_seed(seed: int, query: np.ndarray) -> int:
    """The field seed of one query: blake2b of the oracle seed and the query's float64 bytes.

    -0.0 counts as 0.0. Returns an int in [0, 2**32).
    """
    row = np.ascontiguousarray(np.asarray(query, dtype="<f8").reshape(-1) + 0.0)
    digest = hashlib.blake2b(row.tobytes(), digest_size=4,
                             key=int(seed).to_bytes(8, "little")).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True)
class TurbulenceSimulator:
    """Query (1,) = (n,) -> outputs (n_outputs,); build it through `make_oracle`.

    A frozen dataclass so that it pickles into spawned worker processes and shows its
    settings in logs.
    """

    n_cells: int
    model: str
    output: str
    axis: int
    image_size: int
    seed: int
    scheme: Scheme
    setup: CloudSetup
    sigma: float
    dtype: str

    def density(self, index: float, seed: int) -> np.ndarray:
        """Final density cube (n_cells,) * 3 for velocity index `index` and field `seed`."""
        if self.model == "lognormal":
            return lognormal_density(index, n_cells=self.n_cells, seed=seed, sigma=self.sigma,
                                     dtype=self.dtype)
        return simulate(index, n_cells=self.n_cells, seed=seed, setup=self.setup,
                        scheme=self.scheme, dtype=self.dtype).density

    def observe(self, density: np.ndarray) -> np.ndarray:
        """The oracle's output for a density cube: (n_outputs,)."""
        if self.output == "summary":
            return column_summary(density, axis=self.axis)
        return log_column_image(density, axis=self.axis, image_size=self.image_size).ravel()

    def __call__(self, query: np.ndarray) -> np.ndarray:
        query = np.asarray(query, dtype=np.float64).reshape(-1)
        if query.shape != (len(INPUT_NAMES),):
            raise ValueError(f"a query is one value {INPUT_NAMES}, got shape {query.shape}")
        return self.observe(self.density(float(query[0]), run_seed(self.seed, query)))


@dataclass(frozen=True)
class TurbulenceOracle:
    """The oracle protocol over a `TurbulenceSimulator` (see the module docstring)."""

    simulator: TurbulenceSimulator
    space: Box

    @functools.cached_property
    def outputs(self) -> OutputSpec:
        if self.simulator.output == "summary":
            return OutputSpec(names=SUMMARY_NAMES)
        m = self.simulator.image_size
        return OutputSpec(names=tuple(f"log10_column[{i},{j}]" for i in range(m)
                                      for j in range(m)))

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(M, M) of an image output (reshape y rows to it), None for summaries."""
        if self.simulator.output == "summary":
            return None
        return (self.simulator.image_size,) * 2

    def run(self, queries: np.ndarray) -> Outcome:
        """Run each query, shape (n, 1); y has shape (n, n_outputs), failed runs NaN."""
        # One query at a time: each is a whole simulation, timed and failed on its own.
        return FunctionOracle(fn=self.simulator, space=self.space, outputs=self.outputs,
                              vectorized=False).run(queries)

    def with_resolution(self, n_cells: int) -> TurbulenceOracle:
        """The same oracle on another grid, images kept at the same size (the proxy run)."""
        check_cells(n_cells)
        check_image_size(self.simulator.image_size, n_cells)
        return dataclasses.replace(self, simulator=dataclasses.replace(self.simulator,
                                                                       n_cells=int(n_cells)))


def _check_range(name: str, value) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidSetting(f"{name} must be a pair (low, high), got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low < high <= 10):
        raise InvalidSetting(f"{name} must satisfy 0 <= low < high <= 10, got {value!r}")
    return low, high


def make_oracle(
    n_cells: int = 64,
    *,
    model: str = "hydro",
    output: str = "image",
    axis: int = 2,
    image_size: int | None = None,
    index_range: Sequence[float] = (3.0, 4.5),
    seed: int = 0,
    riemann: str = "rusanov",
    order: int = 1,
    limiter: str = "minmod",
    cfl: float = 0.5,
    setup: CloudSetup | None = None,
    sigma: float = DEFAULT_SIGMA,
    dtype: str = "float32",
) -> TurbulenceOracle:
    """The turbulent-box oracle: input n (velocity spectral index), output a projected map.

    Args:
        n_cells: cells per side of the simulation grid (the resolution; fidelity setting).
        model: "hydro" (the finite-volume solver) or "lognormal" (the surrogate).
        output: "image" (flattened log10 column-density map) or "summary".
        axis: line of sight, 0, 1 or 2.
        image_size: side of the image in pixels (default n_cells); must divide n_cells or be
            a multiple of it.
        index_range: (low, high) bounds of n.
        seed: integer in [0, 2**32); with the query it fixes each run's velocity field.
        riemann, order, limiter, cfl: the solver's `Scheme`.
        setup: the physical set-up (default: the talk's, `CloudSetup()`).
        sigma: ln-density width of the lognormal surrogate (ignored by the hydro model).
        dtype: "float32", or "float64" in JAX 64-bit mode.

    Raises:
        InvalidSetting: naming the bad parameter and its value.
    """
    check_cells(n_cells)
    if model not in MODELS:
        raise InvalidSetting(f"model must be one of {MODELS}, got {model!r}")
    if output not in OUTPUTS:
        raise InvalidSetting(f"output must be one of {OUTPUTS}, got {output!r}")
    if isinstance(axis, bool) or axis not in (0, 1, 2):
        raise InvalidSetting(f"axis must be 0, 1 or 2, got {axis!r}")
    image_size = check_image_size(n_cells if image_size is None else image_size, n_cells)
    low, high = _check_range("index_range", index_range)
    sigma = float(sigma)
    if not (math.isfinite(sigma) and sigma > 0):
        raise InvalidSetting(f"sigma must be a positive finite number, got {sigma!r}")
    simulator = TurbulenceSimulator(
        n_cells=int(n_cells), model=model, output=output, axis=int(axis),
        image_size=image_size, seed=check_seed(seed),
        scheme=check_scheme(Scheme(riemann=riemann, order=order, limiter=limiter, cfl=cfl)),
        setup=CloudSetup() if setup is None else setup, sigma=sigma,
        dtype=resolve_dtype(dtype).name,
    )
    return TurbulenceOracle(simulator=simulator,
                            space=Box(names=INPUT_NAMES, lower=(low,), upper=(high,)))
