"""`python -m simulators.ramses info|grid|project`, run as a user runs it (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ramses"


def ramses(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulators.ramses", *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def fixture(name: str) -> tuple[Path, dict]:
    output = DATA / name / "output_00002"
    if not output.is_dir():
        pytest.skip(f"RAMSES fixture not found: {output}")
    with np.load(DATA / name / "reference.npz") as npz:
        return output, {k: npz[k] for k in npz.files}


def test_info_text_and_json():
    output, ref = fixture("amr3d")
    text = ramses("info", output)
    assert text.returncode == 0, text.stderr
    assert "leaf cells  45256 (level: count  4: 1912, 5: 13776, 6: 29568)" in text.stdout
    assert "density, velocity_x, velocity_y, velocity_z, pressure" in text.stdout
    as_json = ramses("info", output, "--json")
    summary = json.loads(as_json.stdout)
    assert summary["cells_per_level"] == {"4": 1912, "5": 13776, "6": 29568}
    assert summary["time"] == ref["time"] and summary["units"]["unit_l"] == ref["unit_l"]
    assert summary["total_mass"] == pytest.approx(1.0, rel=1e-13)


def test_grid_and_project_write_the_reference_arrays(tmp_path):
    output, ref = fixture("amr2d")
    grid = ramses("grid", output, "--field", "density", "--out", tmp_path / "rho.npy")
    assert grid.returncode == 0, grid.stderr
    np.testing.assert_allclose(np.load(tmp_path / "rho.npy"), ref["density_grid"], rtol=1e-12)
    coarse = ramses("grid", output, "--level", "5", "--out", tmp_path / "rho5.npy")
    assert coarse.returncode == 0 and np.load(tmp_path / "rho5.npy").shape == (32, 32)
    project = ramses("project", output, "--axis", "y", "--out", tmp_path / "col.npy")
    assert project.returncode == 0, project.stderr
    np.testing.assert_allclose(np.load(tmp_path / "col.npy"), ref["column_density_y"],
                               rtol=1e-12)


def test_project_log_3d(tmp_path):
    output, ref = fixture("turb16")
    done = ramses("project", output, "--axis", "z", "--log", "--out", tmp_path / "log.npy")
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "log.npy"), np.log10(ref["column_density_z"]),
                               rtol=1e-12)


@pytest.mark.parametrize("args, message", [
    (("info", "{tmp}/missing"), "missing: not a directory"),
    (("grid", "{amr2d}", "--field", "temperature", "--out", "{tmp}/t.npy"),
     "no variable 'temperature'"),
    (("project", "{amr2d}", "--axis", "z", "--out", "{tmp}/z.npy"), "--axis z: the output is 2-D"),
    (("grid", "{amr2d}", "--out", "{tmp}/rho.txt"), "expected a .npy file name"),
    (("project", "{amr2d}", "--axis", "w", "--out", "{tmp}/z.npy"), "invalid choice: 'w'"),
])
def test_errors_exit_2_with_one_line(tmp_path, args, message):
    output, _ = fixture("amr2d")
    done = ramses(*(a.format(tmp=tmp_path, amr2d=output) for a in args))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("ramses: error: ")
    assert message in done.stderr


def test_truncated_output_is_an_error(tmp_path):
    output, _ = fixture("turb16")
    copy = tmp_path / "output_00002"
    copy.mkdir()
    for f in output.iterdir():
        copy.joinpath(f.name).write_bytes(f.read_bytes())
    amr = copy / "amr_00002.out00001"
    amr.write_bytes(amr.read_bytes()[:5000])
    done = ramses("info", copy)
    assert done.returncode == 2
    assert "ramses: error: " in done.stderr and "amr_00002.out00001: record" in done.stderr
    assert "truncated" in done.stderr
