"""RunStore: appends, reading back with plain xarray, config identity, uncommitted tails."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from alframe.oracle import Outcome
from alframe import store as store_module
from alframe.store import RunStore, StoreMismatchError, read_run

INPUTS = ("x0", "x1")
OUTPUTS = ("y",)
ATTRS = {"config": {"budget": 10, "strategy": "qbc"}, "seed": 3, "alframe_version": "0.1.0"}


def open_store(path, attrs=ATTRS):
    return RunStore.open(path, input_names=INPUTS, output_names=OUTPUTS, attrs=attrs)


def outcome(n, *, start=0, fail=()):
    y = np.arange(start, start + n, dtype=np.float64)[:, None] / 10
    ok = np.ones(n, bool)
    error = np.full(n, "", dtype=object)
    for i in fail:
        ok[i], y[i], error[i] = False, np.nan, f"ValueError: run {start + i} diverged"
    return Outcome(y, ok, error, np.full(n, 0.5))


def xs(n, start=0):
    return np.arange(2 * start, 2 * (start + n), dtype=np.float64).reshape(n, 2)


def fill(store):
    store.write_test_set(xs(5, start=100), np.arange(5.0)[:, None])
    store.append_runs(xs(4), outcome(4, fail=(1,)), round_index=0)
    store.append_round({"round": 1, "n_runs": 4, "mse": 0.5})
    store.append_runs(xs(3, start=4), outcome(3, start=4), round_index=1)
    store.append_round({"round": 2, "n_runs": 7, "mse": 0.25})


def open_strictly(path):
    """What a user does: `xr.open_zarr(path)`, here with every warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return xr.open_zarr(path).load()


def test_appended_runs_and_rounds_read_back_with_plain_xarray(tmp_path):
    path = tmp_path / "run.zarr"
    store = open_store(path)
    assert not store.exists
    fill(store)
    assert store.exists
    ds = open_strictly(path)
    assert dict(ds.sizes) == {"sample": 7, "input": 2, "output": 1, "round": 2, "test_sample": 5}
    assert list(ds["input"].values) == list(INPUTS)
    assert list(ds["output"].values) == list(OUTPUTS)
    assert ds["x"].dims == ("sample", "input")
    assert ds["y"].dims == ("sample", "output")
    assert ds["x_test"].dims == ("test_sample", "input")
    np.testing.assert_array_equal(ds["x"].values, xs(7))
    np.testing.assert_array_equal(ds["ok"].values, [True, False, True, True, True, True, True])
    assert ds["ok"].dtype == bool
    assert ds["error"].values[1] == "ValueError: run 1 diverged"
    assert all(str(e) == "" for i, e in enumerate(ds["error"].values) if i != 1)
    assert np.isnan(ds["y"].values[1, 0])
    np.testing.assert_array_equal(ds["round_of"].values, [0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(ds["mse"].values, [0.5, 0.25])
    np.testing.assert_array_equal(ds["n_runs"].values, [4, 7])
    np.testing.assert_array_equal(ds["x_test"].values, xs(5, start=100))
    assert json.loads(ds.attrs["config"]) == ATTRS["config"]
    assert ds.attrs["seed"] == 3
    assert ds.attrs["alframe_version"] == "0.1.0"


def test_read_matches_open_zarr(tmp_path):
    path = tmp_path / "run.zarr"
    store = open_store(path)
    assert store.read().sizes == {}  # nothing written yet
    fill(store)
    assert store.read().identical(open_strictly(path))


def test_update_attrs_is_committed(tmp_path):
    path = tmp_path / "run.zarr"
    store = open_store(path)
    fill(store)
    store.update_attrs(stop_reason="budget spent")
    assert open_strictly(path).attrs["stop_reason"] == "budget spent"
    assert open_store(path).read().attrs["stop_reason"] == "budget spent"


def test_empty_append_is_a_no_op(tmp_path):
    path = tmp_path / "run.zarr"
    store = open_store(path)
    fill(store)
    store.append_runs(np.empty((0, 2)), outcome(0), round_index=5)
    assert open_strictly(path).sizes["sample"] == 7


def test_reopening_continues_the_same_store(tmp_path):
    path = tmp_path / "run.zarr"
    fill(open_store(path))
    again = open_store(path)
    again.append_runs(xs(2, start=7), outcome(2, start=7), round_index=2)
    again.append_round({"round": 3, "n_runs": 9, "mse": 0.125})
    ds = open_strictly(path)
    assert ds.sizes["sample"] == 9 and ds.sizes["round"] == 3
    np.testing.assert_array_equal(ds["x"].values, xs(9))
    np.testing.assert_array_equal(ds["mse"].values, [0.5, 0.25, 0.125])


def test_reopening_with_another_config_raises(tmp_path):
    path = tmp_path / "run.zarr"
    fill(open_store(path))
    other = {**ATTRS, "config": {"budget": 20, "strategy": "qbc"}}
    with pytest.raises(StoreMismatchError, match="different config"):
        open_store(path, other)
    assert open_strictly(path).sizes["sample"] == 7  # untouched


def test_a_path_that_is_not_a_store_raises(tmp_path):
    path = tmp_path / "run.zarr"
    path.mkdir()
    (path / "notes.txt").write_text("not zarr")
    with pytest.raises(StoreMismatchError, match="not an alframe run store"):
        open_store(path)


def test_uncommitted_tail_is_cut_on_open(tmp_path):
    path = tmp_path / "run.zarr"
    fill(open_store(path))
    # A process killed mid-append: arrays grown and written, consolidated metadata not yet.
    group = zarr.open_group(path, mode="r+", use_consolidated=False)
    for name, extra in (("x", np.full((3, 2), 99.0)), ("ok", np.zeros(3, bool))):
        array = group[name]
        old = array.shape[0]
        array.resize((old + 3, *array.shape[1:]))
        array[old:] = extra
    assert zarr.open_group(path, mode="r", use_consolidated=False)["x"].shape == (10, 2)
    assert open_strictly(path).sizes["sample"] == 7  # readers see only committed data

    store = open_store(path)
    raw = zarr.open_group(path, mode="r", use_consolidated=False)
    assert raw["x"].shape == (7, 2)
    assert raw["ok"].shape == (7,)
    store.append_runs(xs(2, start=7), outcome(2, start=7), round_index=2)
    ds = open_strictly(path)
    assert ds.sizes["sample"] == 9
    np.testing.assert_array_equal(ds["x"].values, xs(9))
    assert not ds["ok"].values[1]  # row 1 failed; the stale all-False tail is gone
    np.testing.assert_array_equal(ds["ok"].values[7:], [True, True])


def test_an_append_through_xarray_interrupted_before_its_commit_leaves_the_committed_store(tmp_path, monkeypatch):
    path = tmp_path / "run.zarr"
    store = open_store(path)
    fill(store)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed before consolidating")

    monkeypatch.setattr(zarr, "consolidate_metadata", killed)
    with pytest.raises(KeyboardInterrupt):  # a new variable: written by xarray, then consolidated
        store.append_round({"round": 3, "n_runs": 9, "mse": 0.125, "fit_s": 1.0})
    monkeypatch.undo()

    reopened = open_store(path)
    ds = reopened.read()
    assert ds.sizes["round"] == 2 and "fit_s" not in ds
    np.testing.assert_array_equal(ds["x"].values, xs(7))


def test_an_append_interrupted_at_any_file_leaves_a_readable_committed_store(tmp_path, monkeypatch):
    """Killed before each of an append's atomic file replacements in turn (its chunks, the
    arrays' metadata, the consolidated metadata, the commit record): readers see a whole store,
    reopening cuts the append off, and the next append lands where it should."""
    real = store_module._replace_file
    replaced = []

    def counting(target, data, scratch):
        replaced.append(Path(target))
        real(target, data, scratch)

    filled = tmp_path / "filled.zarr"
    fill(open_store(filled))

    def filled_store(name):
        path = tmp_path / name
        shutil.copytree(filled, path)
        shutil.copy(store_module.commit_path(filled), store_module.commit_path(path))
        return path, open_store(path)

    path, store = filled_store("whole.zarr")
    monkeypatch.setattr(store_module, "_replace_file", counting)
    store.append_runs(xs(2, start=7), outcome(2, start=7), round_index=2)
    monkeypatch.undo()
    # Each of the 6 arrays' chunk and metadata, then the consolidated metadata and the commit record.
    assert [p.name for p in replaced] == ["0", "zarr.json"] * 6 + ["zarr.json", "whole.zarr.commit.json"]
    assert replaced[-2] == path / "zarr.json"

    # Before the first chunk, the first metadata, a later chunk, the consolidated metadata, the commit.
    for killed_at in (0, 1, 8, 12, 13):
        path, store = filled_store(f"run{killed_at}.zarr")
        replaced.clear()

        def killed(target, data, scratch):
            if len(replaced) == killed_at:
                raise KeyboardInterrupt("killed mid-append")
            counting(target, data, scratch)

        monkeypatch.setattr(store_module, "_replace_file", killed)
        with pytest.raises(KeyboardInterrupt):
            store.append_runs(xs(2, start=7), outcome(2, start=7), round_index=2)
        monkeypatch.undo()
        assert read_run(path).sizes["sample"] == 7
        assert open_strictly(path).sizes["sample"] == 7 if killed_at < 13 else 9  # whole either way
        reopened = open_store(path)
        assert reopened.read().sizes["sample"] == 7
        reopened.append_runs(xs(3, start=7), outcome(3, start=7, fail=(0,)), round_index=2)
        ds = open_strictly(path)
        np.testing.assert_array_equal(ds["x"].values, xs(10))
        np.testing.assert_array_equal(ds["ok"].values[6:], [True, False, True, True])


def test_appended_chunks_are_the_bytes_zarr_writes(tmp_path):
    path = tmp_path / "run.zarr"
    fill(open_store(path))
    whole = xr.open_zarr(path).load()
    again = tmp_path / "whole.zarr"
    encoding = {name: {"chunks": list(whole[name].encoding["chunks"])} for name in whole.data_vars}
    whole.to_zarr(again, encoding=encoding, consolidated=False)
    for name in ("x", "y", "ok", "error", "cost_s", "round_of", "mse", "n_runs"):
        ours = sorted(p.relative_to(path) for p in (path / name / "c").rglob("*") if p.is_file())
        assert ours == sorted(p.relative_to(again) for p in (again / name / "c").rglob("*") if p.is_file())
        for chunk in ours:
            assert (path / chunk).read_bytes() == (again / chunk).read_bytes(), chunk


def test_appends_across_chunk_boundaries_read_back(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "SAMPLE_CHUNK", 4)
    path = tmp_path / "run.zarr"
    store = open_store(path)
    start = 0
    for n in (3, 1, 6, 2, 9):
        store.append_runs(xs(n, start=start), outcome(n, start=start, fail=(0,)), round_index=start)
        start += n
    store = open_store(path)  # a reopened store picks up the partly filled chunk
    store.append_runs(xs(2, start=start), outcome(2, start=start), round_index=start)
    ds = open_strictly(path)
    assert ds["x"].encoding["chunks"] == (4, 2)
    np.testing.assert_array_equal(ds["x"].values, xs(start + 2))
    np.testing.assert_array_equal(ds["y"].values[:, 0], np.where(ds["ok"].values, np.arange(start + 2) / 10, np.nan))
    assert list(ds["ok"].values).count(False) == 5
    np.testing.assert_array_equal(ds["round_of"].values, [0] * 3 + [3] + [4] * 6 + [10] * 2 + [12] * 9 + [21] * 2)
    assert read_run(path).identical(ds)


# -- several outputs: per-output round metrics, output coordinates and units -------------------

ELLS = (2.0, 10.0, 100.0)
SPECTRUM = ("c_2", "c_10", "c_100")


def open_spectrum(path, **description):
    description = {"output_coords": ELLS, "output_coord_name": "ell", "output_units": "uK^2",
                   "output_transform": "log10", **description}
    return RunStore.open(path, input_names=INPUTS, output_names=SPECTRUM, attrs=ATTRS, **description)


def spectrum_outcome(n, start=0):
    y = np.arange(3 * start, 3 * (start + n), dtype=np.float64).reshape(n, 3)
    return Outcome(y, np.ones(n, bool), np.full(n, "", dtype=object), np.full(n, 0.5))


def spectrum_round(i):
    return {"round": i, "mse": 1.0 / i, "mse_per_output": np.array([1.0, 2.0, 3.0]) / i,
            "r2_per_output": np.array([0.5, np.nan, 0.25]) * i}


def test_per_output_round_metrics_and_output_coords_read_back(tmp_path):
    path = tmp_path / "run.zarr"
    store = open_spectrum(path)
    store.write_test_set(xs(4, start=50), spectrum_outcome(4).y)
    store.append_runs(xs(2), spectrum_outcome(2), round_index=0)
    for i in (1, 2, 3):
        store.append_round(spectrum_round(i))
        store.append_runs(xs(1, start=1 + i), spectrum_outcome(1, start=1 + i), round_index=i)
    store = open_spectrum(path)  # reopened: the next round goes on the same arrays
    store.append_round(spectrum_round(4))
    ds = open_strictly(path)
    assert ds["mse_per_output"].dims == ds["r2_per_output"].dims == ("round", "output")
    np.testing.assert_array_equal(ds["mse_per_output"].values,
                                  np.array([[1.0, 2.0, 3.0]]) / np.arange(1, 5)[:, None])
    np.testing.assert_array_equal(ds["r2_per_output"].values[:, 1], np.full(4, np.nan))
    np.testing.assert_array_equal(ds["mse"].values, 1.0 / np.arange(1, 5))
    assert ds["ell"].dims == ("output",) and "ell" in ds.coords
    np.testing.assert_array_equal(ds["ell"].values, ELLS)
    np.testing.assert_array_equal(ds["mse_per_output"].sel(output="c_10").values, 2.0 / np.arange(1, 5))
    assert json.loads(ds.attrs["output_units"]) == ["uK^2"] * 3
    assert ds.attrs["output_transform"] == "log10" and ds.attrs["output_coord_name"] == "ell"
    assert "coordinates" not in ds.attrs
    assert read_run(path).identical(ds)
    assert store.read().identical(ds)


def test_per_output_round_metrics_take_the_chunked_append(tmp_path, monkeypatch):
    path = tmp_path / "run.zarr"
    store = open_spectrum(path)
    store.append_runs(xs(2), spectrum_outcome(2), round_index=0)
    store.append_round(spectrum_round(1))  # the first round: written by xarray
    through_xarray = []
    monkeypatch.setattr(store, "_put_with_xarray", lambda *args: through_xarray.append(args))
    store.append_round(spectrum_round(2))
    assert through_xarray == []
    np.testing.assert_array_equal(open_strictly(path)["mse_per_output"].values[1], [0.5, 1.0, 1.5])


def test_a_round_append_killed_midway_is_cut_off_on_reopening(tmp_path, monkeypatch):
    path = tmp_path / "run.zarr"
    store = open_spectrum(path)
    store.append_runs(xs(2), spectrum_outcome(2), round_index=0)
    store.append_round(spectrum_round(1))
    real, replaced = store_module._replace_file, []

    def killed_after_two_files(target, data, scratch):
        if len(replaced) == 2:
            raise KeyboardInterrupt("killed mid-append")
        replaced.append(target)
        real(target, data, scratch)

    monkeypatch.setattr(store_module, "_replace_file", killed_after_two_files)
    with pytest.raises(KeyboardInterrupt):
        store.append_round(spectrum_round(2))
    monkeypatch.undo()
    assert read_run(path).sizes["round"] == 1
    reopened = open_spectrum(path)
    reopened.append_round(spectrum_round(3))
    ds = open_strictly(path)
    np.testing.assert_array_equal(ds["mse_per_output"].values, [[1.0, 2.0, 3.0], [1 / 3, 2 / 3, 1.0]])
    np.testing.assert_array_equal(ds["round"].values, [1, 3])


def test_string_output_coords_and_units_per_output(tmp_path):
    path = tmp_path / "run.zarr"
    store = open_spectrum(path, output_coords=("TT", "EE", "TE"), output_coord_name="mode",
                          output_units=("uK^2", "uK^2", "uK^2 (signed)"), output_transform=None)
    store.append_runs(xs(2), spectrum_outcome(2), round_index=0)
    ds = open_strictly(path)
    assert list(ds["mode"].values) == ["TT", "EE", "TE"]
    assert json.loads(ds.attrs["output_units"])[2] == "uK^2 (signed)"
    assert "output_transform" not in ds.attrs
    assert read_run(path).identical(ds)


@pytest.mark.parametrize(
    ("description", "match"),
    [(dict(output_coords=(1.0, 2.0)), "output_coords has 2 values for 3 outputs"),
     (dict(output_units=("a", "b")), "output_units has 2 entries for 3 outputs"),
     (dict(output_coords=None, output_coord_name="ell"), "needs output_coords"),
     (dict(output_coord_name="sample"), "'sample' is taken")],
)
def test_bad_output_descriptions_are_refused(tmp_path, description, match):
    with pytest.raises(ValueError, match=match):
        open_spectrum(tmp_path / "run.zarr", **description)


def test_a_round_metric_of_the_wrong_shape_is_refused(tmp_path):
    store = open_spectrum(tmp_path / "run.zarr")
    with pytest.raises(ValueError, match=r"'mse_per_output' has shape \(2,\)"):
        store.append_round({"round": 1, "mse_per_output": np.zeros(2)})


def test_rounds_that_bring_or_lack_a_variable_keep_every_variable_as_long_as_the_rounds(tmp_path):
    """A metric that appears in a later round (a newer version resuming a run, a committee that
    reports something new) is blank for the earlier rounds; one a round lacks is blank there."""
    path = tmp_path / "run.zarr"
    store = open_store(path)
    store.append_round({"round": 1, "mse": 0.5, "learner": "gp"})
    store.append_round({"round": 2, "mse": 0.25, "learner": "gp"})
    store.append_round({"round": 3, "mse": 0.125, "learner": "gp_log", "cv_error_gp_log": 0.1, "note": "new"})
    store.append_round({"round": 4, "mse": 0.0625})
    for ds in (xr.open_zarr(path), read_run(path), open_store(path).read()):
        assert ds.sizes["round"] == 4
        np.testing.assert_array_equal(ds["mse"].values, [0.5, 0.25, 0.125, 0.0625])
        np.testing.assert_array_equal(ds["cv_error_gp_log"].values, [np.nan, np.nan, 0.1, np.nan])
        assert list(ds["learner"].values) == ["gp", "gp", "gp_log", ""]
        assert list(ds["note"].values) == ["", "", "new", ""]
