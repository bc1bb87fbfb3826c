"""RAMSES reader, grids and maps: exact against independent readers on real RAMSES outputs,
and one clear error per kind of bad file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from simulators.ramses import (
    RamsesFormatError,
    column_density,
    flips,
    log_column_density,
    paint,
    quarter_cuts,
    read_descriptor,
    read_info,
    read_output,
    training_images,
    write_uniform,
)
from simulators.ramses.fortran import RecordReader, encode_record
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
