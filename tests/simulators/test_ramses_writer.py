"""RAMSES writer: uniform and AMR outputs, 1-3 dimensions, one or several CPU files, read back
identically; real outputs rewritten cell for cell; invalid hierarchies refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulators.ramses import (
    Cells,
    Units,
    paint,
    read_info,
    read_output,
    sample_cells,
    uniform_cells,
    write_amr,
    write_uniform,
)
from simulators.ramses.fortran import RecordReader
from simulators.ramses.reader import parse_fortran_float, read_amr_header
from simulators.ramses.writer import fortran_e

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ramses"


def sorted_cells(cells: Cells) -> Cells:
    order = np.lexsort((*cells.index.T[::-1], cells.level))
    return cells.select(order)


def assert_same_cells(a: Cells, b: Cells) -> None:
    a, b = sorted_cells(a), sorted_cells(b)
    np.testing.assert_array_equal(a.level, b.level)
    np.testing.assert_array_equal(a.index, b.index)
    assert list(a.fields) == list(b.fields)
    for name in a.fields:
        np.testing.assert_array_equal(a.fields[name], b.fields[name], err_msg=name)
    assert a.boxlen == b.boxlen


def blast(ndim: int):
    """An off-centre Gaussian blast: positions (n, ndim) -> RAMSES hydro variables."""
    centre = np.array([0.40, 0.56, 0.47])[:ndim]

    def fields(position):
        r2 = ((position - centre) ** 2).sum(axis=1)
        out = {"density": 1.0 + 5.0 * np.exp(-r2 / 0.01)}
        for d, c in enumerate("xyz"[:ndim]):
            out[f"velocity_{c}"] = (position[:, d] - centre[d]) * out["density"]
        out["pressure"] = 0.1 + np.exp(-r2 / 0.02)
        return out

    def refine(position, size):
        r = np.sqrt(((position - centre) ** 2).sum(axis=1))
        return np.abs(r - 0.15) < 2 * size

    return fields, refine


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("ncpu", [1, 3])
def test_uniform_round_trip(tmp_path, ndim, ncpu):
    n = {1: 64, 2: 32, 3: 16}[ndim]
    rng = np.random.default_rng(ndim)
    fields = {"density": rng.uniform(0.1, 3.0, (n,) * ndim),
              "velocity_x": rng.normal(size=(n,) * ndim),
              "pressure": rng.uniform(0.5, 1.0, (n,) * ndim),
              "scalar_01": rng.uniform(size=(n,) * ndim)}
    units = Units(3.0857e18, 1.5e-20, 3.156e13)
    path = write_uniform(tmp_path / "output_00007", fields, boxlen=10.0, time=0.125,
                         units=units, gamma=5 / 3, ncpu=ncpu)
    out = read_output(path)
    assert out.number == 7 and out.ndim == ndim and out.info.ncpu == ncpu
    assert (out.time, out.boxlen, out.units, out.gamma) == (0.125, 10.0, units, 5 / 3)
    assert out.variables == tuple(fields)
    assert out.cells.count_per_level() == {int(np.log2(n)): n**ndim}
    for name, values in fields.items():
        np.testing.assert_array_equal(paint(out, name), values)
    for cpu in range(1, ncpu + 1):
        header = read_amr_header(RecordReader(path / f"amr_00007.out{cpu:05d}"))
        assert header.ncpu == ncpu and header.ordering == "hilbert"


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("ncpu", [1, 4])
def test_amr_round_trip(tmp_path, ndim, ncpu):
    fields, refine = blast(ndim)
    cells = sample_cells(fields, ndim=ndim, levelmin=3, levelmax=5, refine=refine)
    assert len(cells.count_per_level()) == 3  # really refined
    path = write_amr(tmp_path / "output_00001", cells, time=0.01, ncpu=ncpu)
    out = read_output(path)
    assert_same_cells(out.cells, cells)
    assert (out.info.levelmin, out.info.levelmax) == (3, 5)
    mass = out.cells.integral("density")
    np.testing.assert_allclose(paint(out, level=2).sum() / 4**ndim, mass, rtol=1e-12)


def test_multi_cpu_domains_split_the_cells(tmp_path):
    fields, refine = blast(3)
    cells = sample_cells(fields, ndim=3, levelmin=3, levelmax=5, refine=refine)
    path = write_amr(tmp_path / "output_00001", cells, ncpu=4)
    info = read_info(path / "info_00001.txt")
    assert info.domains.shape == (4, 2)
    np.testing.assert_array_equal(info.domains[1:, 0], info.domains[:-1, 1])
    assert info.domains[0, 0] == 0 and info.domains[-1, 1] == 2 ** (3 * 6)
    # Each CPU file owns octs of its own domain and lists copies of some of the others'.
    for cpu in range(1, 5):
        octs = read_amr_header(RecordReader(path / f"amr_00001.out0000{cpu}")).octs.sum(axis=0)
        assert octs[cpu - 1] > 0 and octs.sum() > octs[cpu - 1]


@pytest.mark.parametrize("name", ["turb16", "amr3d", "amr2d"])
def test_real_outputs_rewritten_cell_for_cell(tmp_path, name):
    source = DATA / name / "output_00002"
    if not source.is_dir():
        pytest.skip(f"RAMSES fixture not found: {source}")
    original = read_output(source)
    path = write_amr(tmp_path / "output_00002", original.cells, time=original.time,
                     units=original.units, gamma=original.gamma, ncpu=3,
                     levelmin=original.info.levelmin)
    copy = read_output(path)
    assert_same_cells(copy.cells, original.cells)
    assert copy.variables == original.variables
    assert (copy.info.levelmin, copy.info.levelmax) == (original.info.levelmin,
                                                         original.info.levelmax)
    np.testing.assert_array_equal(paint(copy), paint(original))


@pytest.mark.parametrize("ncpu", [1, 2])
def test_levelmax_above_the_finest_leaves(tmp_path, ncpu):
    rho = np.random.default_rng(5).uniform(size=(8, 8))
    path = write_amr(tmp_path / "output_00001", uniform_cells({"density": rho}), levelmax=6,
                     ncpu=ncpu)
    out = read_output(path)
    assert (out.info.levelmin, out.info.levelmax) == (3, 6)
    np.testing.assert_array_equal(paint(out), rho)


def test_writer_keeps_namelist_and_refuses_to_overwrite(tmp_path):
    fields = {"density": np.ones((4, 4))}
    path = write_uniform(tmp_path / "output_00002", fields, namelist="&RUN_PARAMS\n/\n")
    assert (path / "namelist.txt").read_text() == "&RUN_PARAMS\n/\n"
    with pytest.raises(FileExistsError, match="output_00002: exists"):
        write_uniform(path, fields)
    write_uniform(path, {"density": np.full((4, 4), 2.0)}, overwrite=True)
    assert np.all(paint(read_output(path)) == 2.0)
    assert read_output(write_uniform(tmp_path / "plain", fields, iout=12)).number == 12


def test_invalid_inputs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="power of two"):
        uniform_cells({"density": np.ones((6, 6))})
    with pytest.raises(ValueError, match="cube"):
        uniform_cells({"density": np.ones((4, 8))})
    with pytest.raises(ValueError, match="'velocity_x' has shape"):
        uniform_cells({"density": np.ones((4, 4)), "velocity_x": np.ones((8, 8))})
    cells = uniform_cells({"density": np.ones((4, 4))})
    holes = cells.select(np.arange(len(cells)) != 5)
    with pytest.raises(ValueError, match="do not cover the box"):
        write_amr(tmp_path / "a", holes)
    overlap = Cells(level=np.r_[cells.level, 1], index=np.r_[cells.index, [[0, 0]]],
                    fields={"density": np.ones(len(cells) + 1)})
    with pytest.raises(ValueError, match="cells overlap"):
        write_amr(tmp_path / "b", overlap)
    with pytest.raises(ValueError, match="variable name 'rho x'"):
        write_amr(tmp_path / "c", Cells(cells.level, cells.index, {"rho x": np.ones(16)}))
    with pytest.raises(ValueError, match="ncpu must be"):
        write_amr(tmp_path / "d", cells, ncpu=17)
    with pytest.raises(ValueError, match="levelmin = 3"):
        write_amr(tmp_path / "e", cells, levelmin=3)
    with pytest.raises(ValueError, match=r"Cells.index \[4\] of cell 1 lies outside \[0, 2\^2\)"):
        Cells(level=np.array([1, 2]), index=np.array([[0], [4]]), fields={})


def test_fortran_number_format():
    assert fortran_e(1.0) == "  0.100000000000000E+01"
    assert fortran_e(0.0) == "  0.000000000000000E+00"
    assert fortran_e(-3.0857e18) == " -0.308570000000000E+19"
    assert fortran_e(1.5e-120) == "  0.150000000000000-119"
    for value in (1.0, -3.0857e18, 1.5e-120, 2.0**40, 1 / 3):
        assert parse_fortran_float(fortran_e(value)) == pytest.approx(value, rel=1e-15)
    assert fortran_e(0.999999999999999999) == "  0.100000000000000E+01"
