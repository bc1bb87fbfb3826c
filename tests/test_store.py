"""RunStore: appends, reading back with plain xarray, config identity, uncommitted tails."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr
import zarr

from alframe.oracle import Outcome
from alframe.store import RunStore, StoreMismatchError

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


def test_an_append_interrupted_before_its_commit_leaves_the_committed_store(tmp_path, monkeypatch):
    path = tmp_path / "run.zarr"
    store = open_store(path)
    fill(store)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed before consolidating")

    monkeypatch.setattr(zarr, "consolidate_metadata", killed)
    with pytest.raises(KeyboardInterrupt):
        store.append_runs(xs(2, start=7), outcome(2, start=7), round_index=2)
    monkeypatch.undo()

    reopened = open_store(path)
    ds = reopened.read()
    assert ds.sizes["sample"] == 7
    np.testing.assert_array_equal(ds["x"].values, xs(7))
