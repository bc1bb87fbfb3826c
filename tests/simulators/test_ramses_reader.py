"""RAMSES reader, grids and maps: exact against independent readers on real RAMSES outputs,
and one clear error per kind of bad file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from simulators.ramses import (
    Cells,
    RamsesFormatError,
    column_density,
    flips,
    log_column_density,
    paint,
    quarter_cuts,
    read_descriptor,
    read_info,
    read_output,
    sample_cells,
    training_images,
    uniform_cells,
    write_amr,
    write_uniform,
)
from simulators.ramses.fortran import RecordReader, encode_record
from simulators.ramses.reader import read_amr_header, tiling_fault
from simulators.ramses.hilbert import hilbert_keys

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ramses"
FIXTURES = ("turb16", "amr3d", "amr2d")


def fixture(name: str) -> tuple[Path, dict]:
    output = DATA / name / "output_00002"
    reference = DATA / name / "reference.npz"
    if not output.is_dir() or not reference.is_file():
        pytest.skip(f"RAMSES fixture not found: {output}")
    with np.load(reference) as npz:
        return output, {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module", params=FIXTURES)
def real(request):
    output, reference = fixture(request.param)
    return read_output(output), reference


def test_metadata_matches_reference(real):
    out, ref = real
    assert out.ndim == ref["ndim"]
    assert out.boxlen == ref["boxlen"] and out.time == ref["time"]
    assert (out.info.levelmin, out.info.levelmax) == (ref["levelmin"], ref["levelmax"])
    assert out.cells.finest_level == ref["finest_level"]
    assert out.variables == tuple(ref["variable_names"]) and len(out.variables) == ref["nvar"]
    assert tuple(out.units) == (ref["unit_l"], ref["unit_d"], ref["unit_t"])


def test_leaf_cells_per_level_and_total_mass_exact(real):
    out, ref = real
    counts = out.cells.count_per_level()
    assert list(counts) == ref["levels"].tolist()
    assert list(counts.values()) == ref["levels_ncells"].tolist()
    np.testing.assert_allclose(out.cells.integral("density"), ref["total_mass"], rtol=1e-13)


def test_density_grid_and_column_density_match_reference(real):
    out, ref = real
    grid = paint(out)
    assert grid.shape == ref["density_grid"].shape
    np.testing.assert_allclose(grid, ref["density_grid"], rtol=1e-12, atol=0)
    axis, key = ("z", "column_density_z") if out.ndim == 3 else ("y", "column_density_y")
    np.testing.assert_allclose(column_density(out, axis), ref[key], rtol=1e-12, atol=0)


def test_cells_geometry(real):
    out, _ = real
    cells = out.cells
    pos, size = cells.position, cells.size
    assert np.all(pos - size[:, None] / 2 >= 0) and np.all(pos + size[:, None] / 2 <= out.boxlen)
    # The leaves tile the box: their volumes add up to it.
    np.testing.assert_allclose(cells.volume.sum(), out.boxlen**out.ndim, rtol=1e-14)
    assert set(cells.fields) == set(out.variables)


def test_blast_is_off_centre_where_the_namelist_put_it():
    out = read_output(fixture("amr3d")[0])
    cells = out.cells
    # The blast's swept-up shell is the densest gas; its centroid is the explosion point.
    rho = cells.fields["density"]
    shell = rho > np.quantile(rho, 0.99)
    centre = np.average(cells.position[shell], axis=0, weights=cells.volume[shell])
    np.testing.assert_allclose(centre, [0.40, 0.56, 0.47], atol=0.03)


@pytest.mark.parametrize("name", FIXTURES)
def test_coarser_grids_conserve_mass(name):
    out = read_output(fixture(name)[0])
    mass = out.cells.integral("density")
    for level in range(0, out.cells.finest_level + 2):
        grid = paint(out, level=level)
        assert grid.shape == (2**level,) * out.ndim
        np.testing.assert_allclose(grid.sum() * (out.boxlen / 2**level) ** out.ndim, mass,
                                   rtol=1e-12)


def test_coarse_grid_is_the_block_average_of_the_finest():
    out = read_output(fixture("amr3d")[0])
    fine = paint(out)
    coarse = paint(out, level=4)
    expected = fine.reshape(16, 4, 16, 4, 16, 4).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(coarse, expected, rtol=1e-12)


def test_mass_weighted_velocity_grid():
    out = read_output(fixture("amr3d")[0])
    rho, vx = paint(out), paint(out, "velocity_x")
    weighted = paint(out, "velocity_x", level=3, weight="density")
    momentum = (rho * vx).reshape(8, 8, 8, 8, 8, 8).sum(axis=(1, 3, 5))
    mass = rho.reshape(8, 8, 8, 8, 8, 8).sum(axis=(1, 3, 5))
    np.testing.assert_allclose(weighted, momentum / mass, rtol=1e-12, atol=1e-15)


def test_projections_along_every_axis_and_log():
    out = read_output(fixture("amr3d")[0])
    grid, dx = paint(out), out.boxlen / 64
    for number, axis in enumerate("xyz"):
        np.testing.assert_allclose(column_density(out, axis), grid.sum(axis=number) * dx,
                                   rtol=1e-12)
    np.testing.assert_allclose(log_column_density(out, "x", level=5),
                               np.log10(column_density(out, 0, level=5)), rtol=1e-14)
    with pytest.raises(ValueError, match="axis 'w'"):
        column_density(out, "w")
    two_d = read_output(fixture("amr2d")[0])
    with pytest.raises(ValueError, match="2-D"):
        column_density(two_d, "z")


def test_flips_and_quarter_cuts():
    image = np.arange(16.0).reshape(4, 4)
    f = flips(image)
    assert f.shape == (4, 4, 4)
    np.testing.assert_array_equal(f[0], image)
    np.testing.assert_array_equal(f[1], image[::-1, :])
    np.testing.assert_array_equal(f[2], image[:, ::-1])
    np.testing.assert_array_equal(f[3], image[::-1, ::-1])
    q = quarter_cuts(image)
    np.testing.assert_array_equal(q[0], image[:2, :2])
    np.testing.assert_array_equal(q[1], image[2:, :2])
    np.testing.assert_array_equal(q[2], image[:2, 2:])
    np.testing.assert_array_equal(q[3], image[2:, 2:])
    # The quarters put back together give the image.
    np.testing.assert_array_equal(np.block([[q[0], q[2]], [q[1], q[3]]]), image)
    with pytest.raises(ValueError, match="even sides"):
        quarter_cuts(np.ones((3, 4)))


def test_training_images_are_the_augmented_projections():
    out = read_output(fixture("turb16")[0])
    images = training_images(out)
    assert images.shape == (3, 4, 4, 8, 8)
    for axis in range(3):
        log_column = np.log10(column_density(out, axis))
        np.testing.assert_allclose(images[axis, 0, 0], log_column[:8, :8], rtol=1e-14)
        np.testing.assert_allclose(images[axis, 3, 3], log_column[::-1, ::-1][8:, 8:], rtol=1e-14)
    with pytest.raises(ValueError, match="3-D"):
        training_images(read_output(fixture("amr2d")[0]))


def test_variable_selection():
    output, _ = fixture("amr2d")
    out = read_output(output, variables=["pressure"])
    assert list(out.cells.fields) == ["pressure"]
    assert out.variables == ("density", "velocity_x", "velocity_y", "pressure")
    with pytest.raises(KeyError, match="no variable 'temperature'"):
        read_output(output, variables=["temperature"])
    with pytest.raises(KeyError, match="no field 'density'"):
        paint(out)


def test_info_and_descriptor_parsing():
    output, _ = fixture("turb16")
    info = read_info(output / "info_00002.txt")
    assert (info.ncpu, info.ndim, info.levelmin, info.levelmax) == (1, 3, 4, 4)
    assert info.ordering == "hilbert" and info.domains.tolist() == [[0.0, 32768.0]]
    assert info.units.unit_l == 3.0857e18
    assert read_descriptor(output / "hydro_file_descriptor.txt") == (
        "density", "velocity_x", "velocity_y", "velocity_z", "pressure")


def test_hilbert_keys_are_a_continuous_curve():
    for ndim, bits in ((1, 5), (2, 4), (3, 3)):
        coords = np.indices((2**bits,) * ndim).reshape(ndim, -1).T
        keys = hilbert_keys(coords, bits)
        np.testing.assert_array_equal(np.sort(keys), np.arange(len(keys)))
        path = coords[np.argsort(keys)]
        assert np.all(np.abs(np.diff(path, axis=0)).sum(axis=1) == 1)


# ------------------------------------------------------------------------------ old files


@pytest.fixture
def small(tmp_path) -> Path:
    """A 3-D 8^3 output on two CPU files, made with the writer."""
    rng = np.random.default_rng(1)
    fields = {"density": rng.uniform(0.5, 2.0, (8, 8, 8)), "velocity_x": rng.normal(size=(8, 8, 8)),
              "velocity_y": rng.normal(size=(8, 8, 8)), "velocity_z": rng.normal(size=(8, 8, 8)),
              "pressure": rng.uniform(1, 2, (8, 8, 8))}
    return write_uniform(tmp_path / "output_00003", fields, boxlen=2.0, time=0.5, ncpu=2)


def test_old_style_descriptor(small):
    names = read_output(small).variables
    lines = [f"nvar        ={len(names):11d}"]
    lines += [f"variable #{i:2d}: {name}" for i, name in enumerate(names, start=1)]
    (small / "hydro_file_descriptor.txt").write_text("\n".join(lines) + "\n")
    assert read_descriptor(small / "hydro_file_descriptor.txt") == names
    assert read_output(small).variables == names
    (small / "hydro_file_descriptor.txt").write_text("\n".join(lines[:-1]).replace(
        f"={len(names):11d}", f"={len(names) - 1:11d}") + "\n")
    with pytest.raises(RamsesFormatError, match="hydro_00003.out00001: nvar = 5, but the "
                                                "variable names list 4"):
        read_output(small)


def test_missing_descriptor_uses_ramses_layout(small):
    (small / "hydro_file_descriptor.txt").unlink()
    assert read_output(small).variables == (
        "density", "velocity_x", "velocity_y", "velocity_z", "pressure")


def _drop_record(path: Path, number: int) -> None:
    reader = RecordReader(path)
    reader.skip(number, what="header")
    start = reader.offset
    reader.skip(1, what="dropped")
    data = path.read_bytes()
    path.write_bytes(data[:start] + data[reader.offset:])


def test_amr_files_without_mass_sph(small):
    before = read_output(small)
    for cpu in (1, 2):
        _drop_record(small / f"amr_00003.out0000{cpu}", 18)  # mass_sph, absent before 2017
    after = read_output(small)
    np.testing.assert_array_equal(paint(before), paint(after))


# ------------------------------------------------------------------------------ bad files


def test_truncated_file(small):
    path = small / "hydro_00003.out00002"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(RamsesFormatError, match=r"hydro_00003\.out00002: record \d+ .*truncated"):
        read_output(small)


def test_wrong_record_length_markers(small):
    path = small / "amr_00003.out00001"
    data = bytearray(path.read_bytes())
    data[4 + 4:4 + 8] = np.int32(12).tobytes()  # ncpu's trailing marker says 12, head says 4
    path.write_bytes(bytes(data))
    with pytest.raises(RamsesFormatError,
                       match=r"amr_00003\.out00001: record 0 \(ncpu\) has mismatched length "
                             r"markers 4 and 12"):
        read_output(small)


def test_record_of_the_wrong_size(small):
    path = small / "amr_00003.out00002"
    data = path.read_bytes()
    # ndim written as a 2-item record: consistent markers, wrong length for the field.
    path.write_bytes(data[:12] + encode_record(np.array([3, 3], dtype="<i4")) + data[24:])
    with pytest.raises(RamsesFormatError, match=r"amr_00003\.out00002: record 1 \(ndim\) has 8 "
                                                r"bytes, expected 4"):
        read_output(small)


def test_missing_cpu_file(small):
    (small / "hydro_00003.out00002").unlink()
    with pytest.raises(RamsesFormatError, match=r"hydro_00003\.out00002: missing CPU file .*"
                                                r"ncpu = 2"):
        read_output(small)


def test_descriptor_that_does_not_match_nvar(small):
    (small / "hydro_file_descriptor.txt").write_text(
        "# version:  1\n# ivar, variable_name, variable_type\n 1, density, d\n 2, pressure, d\n")
    with pytest.raises(RamsesFormatError, match=r"hydro_00003\.out00001: nvar = 5, but the "
                                                r"variable names list 2 \(hydro_file_descriptor"):
        read_output(small)


def test_unknown_ordering(small):
    path = small / "amr_00003.out00001"
    data = path.read_bytes()
    path.write_bytes(data.replace(b"hilbert".ljust(128), b"peano".ljust(128), 1))
    with pytest.raises(RamsesFormatError, match=r"amr_00003\.out00001: unknown ordering 'peano'"):
        read_output(small)


def test_not_an_output_directory(tmp_path):
    with pytest.raises(RamsesFormatError, match="no info_NNNNN.txt"):
        read_output(tmp_path)
    with pytest.raises(RamsesFormatError, match="not a directory"):
        read_output(tmp_path / "nowhere")


def test_inconsistent_hydro_file(small, tmp_path):
    other = write_uniform(tmp_path / "other" / "output_00003", {"density": np.ones((4, 4, 4))},
                          ncpu=2)
    shutil.copy(other / "hydro_00003.out00001", small / "hydro_00003.out00001")
    with pytest.raises(RamsesFormatError, match=r"hydro_00003\.out00001: nlevelmax = 2, but "
                                                r"amr_00003\.out00001 has 3"):
        read_output(small)


# ------------------------------------------------------------------------------ damaged trees


def blob(positions: np.ndarray) -> dict[str, np.ndarray]:
    """Density and pressure of a smooth blob at (0.4, ...), for refined test outputs."""
    r2 = ((positions - 0.4) ** 2).sum(axis=1)
    return {"density": 1.0 + np.exp(-20.0 * r2), "pressure": np.ones(len(positions))}


def near_blob(positions: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    return ((positions - 0.4) ** 2).sum(axis=1) < 0.1


def amr_output(path: Path, *, ndim: int = 3, ncpu: int = 1, levelmax: int = 4) -> Path:
    """A refined output (levels 2..levelmax) written by the project's writer."""
    cells = sample_cells(blob, ndim=ndim, levelmin=2, levelmax=levelmax, refine=near_blob)
    return write_amr(path / "output_00002", cells, ncpu=ncpu)


def oct_records(path: Path) -> dict[tuple[int, int], dict]:
    """Where the octs of each (level, domain) sit in an amr file: their count, the byte offset
    of the first value of each oct-centre record (ndim) and of each son record (2^ndim)."""
    reader = RecordReader(path)
    header = read_amr_header(reader)
    ndim = header.ndim
    found = {}
    for level in range(1, header.nlevelmax + 1):
        for domain in range(header.octs.shape[1]):
            n = int(header.octs[level - 1, domain])
            if n == 0:
                continue
            reader.skip(3, what="ind_grid, next, prev")
            centres = []
            for _ in range(ndim):
                centres.append(reader.offset + 4)
                reader.skip(1, what="centre")
            reader.skip(1 + 2 * ndim, what="father, nbor")
            sons = []
            for _ in range(2**ndim):
                sons.append(reader.offset + 4)
                reader.skip(1, what="son")
            reader.skip(2 * 2**ndim, what="cpu_map, flag1")
            found[(level, domain + 1)] = {"n": n, "centres": centres, "sons": sons}
    return found


def patch(path: Path, offset: int, value: np.ndarray) -> None:
    data = bytearray(path.read_bytes())
    raw = np.asarray(value).tobytes()
    data[offset:offset + len(raw)] = raw
    path.write_bytes(bytes(data))


def son_values(path: Path, where: dict) -> np.ndarray:
    """The son pointers of the octs at `where`, (2^ndim, n)."""
    data = path.read_bytes()
    return np.stack([np.frombuffer(data, "<i4", where["n"], offset) for offset in where["sons"]])


def first_son(path: Path, level: int, *, refined: bool, domain: int = 1) -> tuple[int, int]:
    """(byte offset, son value) of the first cell at `level` of `domain` that is refined (or a leaf)."""
    where = oct_records(path)[(level, domain)]
    sons = son_values(path, where)
    ind, oct_row = np.argwhere((sons > 0) if refined else (sons == 0))[0]
    return where["sons"][ind] + 4 * int(oct_row), int(sons[ind, oct_row])


def test_a_refined_cell_turned_leaf_overlaps_its_children(tmp_path):
    output = amr_output(tmp_path)
    amr = output / "amr_00002.out00001"
    offset, _ = first_son(amr, 3, refined=True)
    patch(amr, offset, np.int32(0))  # son = 0: the cell reads as a leaf, its children stay
    with pytest.raises(RamsesFormatError, match=r"amr_00002\.out00001: level 3: 1 leaf cells are refined too "
                                                r"\(finer leaves lie inside them\); the leaf cells do not tile"):
        read_output(output)


def test_a_leaf_turned_refined_leaves_a_hole(tmp_path):
    output = amr_output(tmp_path)
    amr = output / "amr_00002.out00001"
    offset, _ = first_son(amr, 4, refined=False)
    patch(amr, offset, np.int32(7))  # a son pointer where there was none: the leaf is gone
    with pytest.raises(RamsesFormatError, match=r"amr_00002\.out00001: level 4: 1 of its 4096 cells are neither "
                                                r"leaves nor refined \(a hole: the leaf volumes add up to "
                                                r"0\.999755859375 of the box\)") as caught:
        read_output(output)
    assert "\n" not in str(caught.value)


def test_an_oct_moved_onto_another_lists_its_cells_twice(tmp_path):
    output = amr_output(tmp_path, ndim=2)
    amr = output / "amr_00002.out00001"
    where = oct_records(amr)[(4, 1)]
    data = amr.read_bytes()
    x = np.frombuffer(data, "<f8", where["n"], where["centres"][0]).copy()
    y = np.frombuffer(data, "<f8", where["n"], where["centres"][1])
    # The second oct takes the first one's place: still on the grid, the file still parses.
    other = int(np.flatnonzero(y == y[0])[1]) if np.sum(y == y[0]) > 1 else 1
    patch(amr, where["centres"][0] + 8 * other, x[0])
    patch(amr, where["centres"][1] + 8 * other, y[0])
    with pytest.raises(RamsesFormatError, match=r"amr_00002\.out00001: level 4: 4 leaf cells are listed more "
                                                r"than once; the leaf cells do not tile the box"):
        read_output(output)


def test_the_file_at_fault_is_named_among_several_cpus(tmp_path):
    output = amr_output(tmp_path, ncpu=3)
    amr = output / "amr_00002.out00002"
    records = oct_records(amr)
    level = next(lv for (lv, domain), where in sorted(records.items())
                 if domain == 2 and lv > 2 and (son_values(amr, where) > 0).any())
    offset, _ = first_son(amr, level, refined=True, domain=2)
    patch(amr, offset, np.int32(0))
    with pytest.raises(RamsesFormatError, match=rf"amr_00002\.out00002: level {level}: 1 leaf cells are refined"):
        read_output(output)


def test_a_real_output_with_a_leaf_lost(tmp_path):
    output, _ = fixture("amr3d")
    copy = tmp_path / "output_00002"
    shutil.copytree(output, copy)
    amr = copy / "amr_00002.out00001"
    offset, _ = first_son(amr, 6, refined=False)
    patch(amr, offset, np.int32(1))
    with pytest.raises(RamsesFormatError, match=r"level 6: 1 of its 262144 cells are neither leaves nor refined "
                                                r"\(a hole: the leaf volumes add up to 0\.99999618530\d* of the box"):
        read_output(copy)


def test_tiling_fault_on_cells_built_by_hand():
    good = uniform_cells({"density": np.ones((4, 4))})
    assert tiling_fault(good) is None
    assert tiling_fault(read_output(fixture("amr2d")[0]).cells) is None
    twice = Cells(np.array([1, 1, 1, 1, 1]), np.array([[0, 0], [1, 0], [0, 1], [1, 1], [1, 1]]), {})
    fault = tiling_fault(twice)
    assert (fault.level, fault.rows.tolist()) == (1, [3, 4]) and "listed more than once" in fault.problem
    inside = Cells(np.array([1, 1, 1, 1, 2]), np.array([[0, 0], [1, 0], [0, 1], [1, 1], [3, 3]]), {})
    fault = tiling_fault(inside)
    assert (fault.level, fault.rows.tolist()) == (1, [3]) and "refined too" in fault.problem
    hole = Cells(np.array([1, 1, 1]), np.array([[0, 0], [1, 0], [0, 1]]), {})
    fault = tiling_fault(hole)
    assert fault.level == 1 and fault.problem.startswith("1 of its 4 cells") and "0.75 of the box" in fault.problem
    # Levels whose coordinates do not fit one int64 key are compared row by row.
    deep = Cells(np.array([1, 1, 1, 22, 22]), np.array([[1, 0, 0], [0, 1, 0], [1, 1, 1], [5, 5, 5], [5, 5, 5]]), {})
    assert tiling_fault(deep).level == 22 and "listed more than once" in tiling_fault(deep).problem


@pytest.mark.parametrize("ndim, ncpu", [(3, 1), (2, 3), (3, 4)])
def test_random_damage_to_the_oct_tree_is_refused_or_harmless(tmp_path, ndim, ncpu):
    """8 random bytes anywhere in one amr file: refused in one line, or the same mass.

    The amr files hold the structure, which the reader can check; a damaged hydro value is a
    number like any other and cannot be told from a real one, so hydro files are left out.
    """
    original = amr_output(tmp_path / "original", ndim=ndim, ncpu=ncpu)
    mass = read_output(original).cells.integral()
    rng = np.random.default_rng(100 + 10 * ndim + ncpu)
    outcomes = {"refused": 0, "same mass": 0}
    for trial in range(15):
        copy = tmp_path / f"damaged{trial}" / "output_00002"
        shutil.copytree(original, copy)
        amr = copy / f"amr_00002.out{int(rng.integers(1, ncpu + 1)):05d}"
        data = bytearray(amr.read_bytes())
        at = int(rng.integers(0, len(data) - 8))
        data[at:at + 8] = rng.bytes(8)
        amr.write_bytes(bytes(data))
        try:
            damaged = read_output(copy)
        except RamsesFormatError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(str(copy))
            outcomes["refused"] += 1
            continue
        assert damaged.cells.integral() == pytest.approx(mass, rel=1e-12), f"byte {at} of {amr.name}"
        outcomes["same mass"] += 1
    assert outcomes["refused"] > 0
