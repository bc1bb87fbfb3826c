"""yt reads the writer's outputs to the same grids as this package's reader (3-D: yt 4.4 does not
read 2-D RAMSES outputs, real ones included)."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.ramses import (
    hilbert_keys,
    paint,
    read_output,
    sample_cells,
    write_amr,
    write_uniform,
)

yt = pytest.importorskip("yt")
yt_hilbert = pytest.importorskip("yt.frontends.ramses.hilbert")
yt.set_log_level(40)


def yt_density_grid(ds, level: int, levelmin: int) -> np.ndarray:
    n = 2**level
    grid = ds.covering_grid(level=level - levelmin, left_edge=ds.domain_left_edge, dims=[n] * 3)
    return np.asarray(grid[("ramses", "Density")])


def test_yt_reads_uniform_output(tmp_path):
    rng = np.random.default_rng(3)
    rho = rng.lognormal(size=(16, 16, 16))
    path = write_uniform(tmp_path / "output_00001", {"density": rho,
                         "velocity_x": rng.normal(size=rho.shape),
                         "velocity_y": rng.normal(size=rho.shape),
                         "velocity_z": rng.normal(size=rho.shape),
                         "pressure": rng.uniform(1, 2, rho.shape)}, boxlen=4.0, time=0.25)
    np.testing.assert_array_equal(yt_density_grid(yt.load(str(path)), 4, 4), rho)


def test_yt_reads_amr_output_on_several_cpus(tmp_path):
    centre = np.array([0.40, 0.56, 0.47])

    def fields(position):
        r2 = ((position - centre) ** 2).sum(axis=1)
        return {"density": 1 + 5 * np.exp(-r2 / 0.01), "velocity_x": position[:, 0],
                "velocity_y": position[:, 1], "velocity_z": position[:, 2],
                "pressure": np.exp(-r2 / 0.02)}

    def refine(position, size):
        return np.abs(np.sqrt(((position - centre) ** 2).sum(axis=1)) - 0.15) < 2 * size

    cells = sample_cells(fields, ndim=3, levelmin=3, levelmax=5, refine=refine)
    path = write_amr(tmp_path / "output_00001", cells, ncpu=3)
    ds = yt.load(str(path))
    np.testing.assert_array_equal(yt_density_grid(ds, 5, 3), paint(read_output(path)))
    # Every leaf exactly once, whichever CPU file holds it, and yt's CPU selection by Hilbert
    # keys finds the cells of a sub-box.
    assert ds.all_data()[("ramses", "Density")].size == len(cells)
    box = ds.box([0.1, 0.2, 0.3], [0.45, 0.7, 0.6])
    inside = np.all((cells.position > [0.1, 0.2, 0.3]) & (cells.position < [0.45, 0.7, 0.6]),
                    axis=1)
    assert box[("ramses", "Density")].size == int(inside.sum())


def test_hilbert_keys_match_yt_ramses_convention():
    coords = np.random.default_rng(0).integers(0, 2**7, (300, 3))
    np.testing.assert_array_equal(hilbert_keys(coords, 7),
                                  yt_hilbert.hilbert3d(coords, 7).astype(np.int64))
