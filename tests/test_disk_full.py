"""A disk that fills during a run: one line naming the path, exit 2, the store intact, and the
same command resumes once there is room, to the store an uninterrupted run writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

from alframe.store import read_run
from tests.conftest import without_timing

REPO = Path(__file__).resolve().parents[1]
# About the cheapest run of the command line: a GP on the 1-D potential, a small test set.
CHEAP = ["budget=60", "n_initial=10", "batch_size=10", "test_size=50", "learner=gp", "progress=false"]
# tmpfs sizes to try, as fractions of what a whole run writes, until one fills during the run
# (how much fits depends on the file system's pages).
FRACTIONS = (0.5, 0.35, 0.65, 0.25, 0.8)
PAGE_KB = 4


def command(run_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.run", *CHEAP, f"hydra.run.dir={run_dir}"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def pages_kb(directory: Path) -> int:
    """KiB that the files under `directory` take in whole pages."""
    return sum(PAGE_KB * -(-p.stat().st_size // (PAGE_KB * 1024)) for p in directory.rglob("*") if p.is_file())


def mount(where: Path, size_kb: int, *, remount: bool = False) -> None:
    options = f"{'remount,' if remount else ''}size={size_kb}k"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True, capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A directory on a tmpfs of its own, mounted (and sized) by the test; unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where = tmp_path / "disk"
    where.mkdir()
    try:
        mount(where, 64)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {getattr(exc, 'stderr', b'') or exc}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.mark.slow
def test_a_full_disk_stops_the_run_in_one_line_and_the_same_command_resumes(small_disk, tmp_path):
    run_dir = small_disk / "run"
    # What an uninterrupted run holds, and how much it writes.
    whole = command(tmp_path / "roomy")
    assert whole.returncode == 0, whole.stderr[-3000:]
    reference = without_timing(read_run(tmp_path / "roomy" / "run.zarr"))
    written_kb = pages_kb(tmp_path / "roomy")
    sizes_kb = [PAGE_KB * max(1, round(f * written_kb / PAGE_KB)) for f in FRACTIONS]
    for size_kb in sizes_kb:
        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        mount(small_disk, size_kb, remount=True)
        stopped = command(run_dir)
        committed = read_run(run_dir / "run.zarr").sizes.get("sample", 0) if (run_dir / "run.zarr").exists() else 0
        if stopped.returncode != 0 and 0 < committed < 60:
            break
    else:
        pytest.fail(f"no tmpfs size of {sizes_kb} KiB filled during the run ({written_kb} KiB written by a whole one)")
    assert stopped.returncode == 2
    lines = stopped.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stopped.stderr, stopped.stderr[-3000:]
    assert lines[0].startswith(f"alframe: error: {run_dir}") and "No space left on device" in lines[0]
    # The store is readable, and what it holds is what an uninterrupted run holds.
    partial = without_timing(read_run(run_dir / "run.zarr"))
    for name in ("x", "y", "ok", "error", "round_of"):
        xr.testing.assert_equal(partial[name], reference[name].isel(sample=slice(0, committed)))
    mount(small_disk, 4096, remount=True)  # room again
    resumed = command(run_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    xr.testing.assert_identical(without_timing(read_run(run_dir / "run.zarr")), reference)
