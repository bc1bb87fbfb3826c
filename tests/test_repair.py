"""Repairing a damaged run directory: cut back to its last good commit, resumed by the same command."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import alframe.store as store_module
from alframe.recorder import repair_run
from alframe.store import RepairRefused, StoreDamagedError, commit_path, read_run, repair_staging
from tests.conftest import make_loop, without_timing
from tests.test_bad_input import DAMAGE, DiesAfter, damaged

RUN_VARS = ["x", "y", "ok", "error", "round_of"]
# What a repair keeps of the interrupted run (20 runs: the design and the first round), by damage.
KEPT = {"truncated chunk": 0, "random chunk": 0, "no root zarr.json": 20, "garbage commit": 20,
        "commit of another shape": 20, "empty checkpoint": 10, "truncated checkpoint": 10}


def interrupted_run(root: Path) -> Path:
    """A run directory left by a run killed in its second round (as in test_bad_input)."""
    with pytest.raises(RuntimeError, match="lost the node"):
        make_loop(oracle=DiesAfter(200 + 10 + 10 + 5)).run(root / "run.zarr")
    return root


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    return interrupted_run(tmp_path_factory.mktemp("interrupted"))


@pytest.fixture(scope="module")
def small_chunks(tmp_path_factory) -> Path:
    """The same interrupted run, its runs stored in chunks of 8 rows, so damage in one chunk
    leaves the ones before it readable."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "SAMPLE_CHUNK", 8)
        return interrupted_run(tmp_path_factory.mktemp("small_chunks"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> xr.Dataset:
    return without_timing(make_loop().run(tmp_path_factory.mktemp("whole") / "run.zarr"))


def committed_runs(path: Path) -> xr.Dataset:
    return read_run(path)[RUN_VARS].load()


def check_one_line(text: str) -> None:
    assert "\n" not in text and "Traceback" not in text


@pytest.mark.parametrize("name", list(KEPT))
def test_a_repaired_run_resumes_with_every_committed_run(interrupted, uninterrupted, tmp_path, name):
    before = committed_runs(interrupted / "run.zarr")
    path = damaged(interrupted, tmp_path, DAMAGE[name][0])
    summary = repair_run(path)
    check_one_line(summary)
    assert f"kept {KEPT[name]} of 20 runs" in summary and "the same command resumes" in summary
    assert read_run(path).sizes.get("sample", 0) == KEPT[name]
    finished = make_loop().run(path)
    assert finished.attrs["stop_reason"] == "budget spent"
    # The runs committed before the damage are all there (those a repair cut off, run again).
    xr.testing.assert_equal(finished[RUN_VARS].isel(sample=slice(0, 20)), before)
    xr.testing.assert_identical(without_timing(finished), uninterrupted)


def test_damage_in_a_later_chunk_keeps_the_chunks_before_it(small_chunks, uninterrupted, tmp_path):
    before = committed_runs(small_chunks / "run.zarr")

    def second_chunk_of_x(run_dir: Path) -> None:
        chunk = run_dir / "run.zarr" / "x" / "c" / "1" / "0"
        chunk.write_bytes(chunk.read_bytes()[:5])

    path = damaged(small_chunks, tmp_path, second_chunk_of_x)
    with pytest.raises(StoreDamagedError, match="alframe repair"):
        make_loop().run(path)
    summary = repair_run(path)
    assert "x unreadable from row 8" in summary and "kept 8 of 20 runs" in summary
    xr.testing.assert_equal(committed_runs(path), before.isel(sample=slice(0, 8)))
    finished = make_loop().run(path)
    xr.testing.assert_equal(finished[RUN_VARS].isel(sample=slice(0, 20)), before)
    xr.testing.assert_identical(without_timing(finished), uninterrupted)


def test_an_undamaged_run_needs_no_repair(interrupted, tmp_path):
    path = damaged(interrupted, tmp_path, lambda d: None)
    files = sorted(p.name for p in path.parent.iterdir())
    assert "nothing to repair" in repair_run(path)
    assert sorted(p.name for p in path.parent.iterdir()) == files


@pytest.mark.parametrize("damage, message", [
    (DAMAGE["store is a file"][0], "is a file, not a run store: there is nothing to keep"),
    # Without its root metadata and with a commit record from before it kept the attrs, the run's
    # config is gone: there is no telling which run the rows belong to.
    (lambda d: ((d / "run.zarr" / "zarr.json").unlink(),
                commit_path(d / "run.zarr").write_text(json.dumps(
                    {k: v for k, v in json.loads(commit_path(d / "run.zarr").read_text()).items() if k != "attrs"}))),
     "its attributes (the run's config) are lost"),
], ids=["store is a file", "attrs lost"])
def test_a_repair_that_can_keep_nothing_is_refused_in_one_line(interrupted, tmp_path, damage, message):
    path = damaged(interrupted, tmp_path, damage)
    files = {p.name: (p.stat().st_size if p.is_file() else None) for p in path.parent.iterdir()}
    with pytest.raises(RepairRefused) as caught:
        repair_run(path)
    assert message in str(caught.value)
    check_one_line(str(caught.value))
    assert {p.name: (p.stat().st_size if p.is_file() else None) for p in path.parent.iterdir()} == files


def test_a_repair_killed_before_its_commit_leaves_the_old_files(interrupted, tmp_path, monkeypatch):
    path = damaged(interrupted, tmp_path, DAMAGE["garbage commit"][0])
    real = store_module.write_atomically

    def dies_at_the_manifest(target, data, **kwargs):
        if Path(target).name == "manifest.json":
            raise KeyboardInterrupt("killed")
        real(target, data, **kwargs)

    monkeypatch.setattr(store_module, "write_atomically", dies_at_the_manifest)
    with pytest.raises(KeyboardInterrupt):
        repair_run(path)
    monkeypatch.undo()
    assert commit_path(path).read_text() == "{{{"  # untouched
    assert "kept 20 of 20 runs" in repair_run(path)  # the staged files left behind are dropped
    assert not repair_staging(path).exists()


def test_a_repair_killed_after_its_commit_is_completed_on_the_next_open(interrupted, tmp_path, monkeypatch):
    path = damaged(interrupted, tmp_path, DAMAGE["truncated checkpoint"][0])
    real = os.replace

    def dies_moving_the_repaired_store_in(src, dst):
        if Path(dst) == path:  # the damaged store moved aside, the repaired one not yet in place
            raise KeyboardInterrupt("killed")
        real(src, dst)

    monkeypatch.setattr(store_module.os, "replace", dies_moving_the_repaired_store_in)
    with pytest.raises(KeyboardInterrupt):
        repair_run(path)
    monkeypatch.undo()
    assert repair_staging(path).exists() and not path.exists()
    finished = make_loop().run(path)  # opening the store completes the repair first
    assert finished.attrs["stop_reason"] == "budget spent" and finished.sizes["sample"] == 40
    assert not repair_staging(path).exists() and (path.parent / "run.zarr.damaged").is_dir()
    np.testing.assert_array_equal(finished["x"].values[:20], read_run(interrupted / "run.zarr")["x"].values)


def test_repair_of_a_finished_run_with_a_damaged_chunk_goes_back_to_its_design(tmp_path, uninterrupted):
    path = tmp_path / "run" / "run.zarr"
    make_loop().run(path)
    chunk = path / "y" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:9])
    summary = repair_run(path)
    assert "kept 0 of 40 runs" in summary
    assert "stop_reason" not in read_run(path).attrs
    xr.testing.assert_identical(without_timing(make_loop().run(path)), uninterrupted)


def test_the_kept_copy_is_the_damaged_store(interrupted, tmp_path):
    path = damaged(interrupted, tmp_path, DAMAGE["no root zarr.json"][0])
    repair_run(path)
    kept = path.parent / "run.zarr.damaged"
    assert not (kept / "zarr.json").exists() and (kept / "x" / "zarr.json").exists()
    shutil.rmtree(kept)  # the user's to delete
    assert read_run(path).sizes["sample"] == 20
