"""The map plots draw every kind of mark without a warning."""

from __future__ import annotations

import warnings

import numpy as np

from alframe import plots


def test_an_embedding_map_draws_hollow_and_unfilled_marks_without_warnings(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 2))
    panel = plots.Panel(points, rng.uniform(size=50), title="runs", colour_label="y",
                        marks=(plots.Mark("failed", points[:3], marker="x", colour="red"),
                               plots.Mark("queried", points[3:6], marker="o", colour="black"),
                               plots.Mark("placed", points[6:9], marker="*", colour=(0.1, 0.2, 0.3))))
    path = tmp_path / "map.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.embedding_map([panel], path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000


def test_queried_points_draws_a_declared_log_scale_input_on_a_log_axis(tmp_path):
    import json

    import xarray as xr
    from alframe.space import Box, declaration

    box = Box(names=("tau", "albedo"), lower=(0.1, 0.5), upper=(10.0, 0.99), log=("tau",))
    x = box.draw(40, seed=0)
    ok = np.arange(40) % 7 != 0
    ds = xr.Dataset({"x": (("sample", "input"), x), "ok": ("sample", ok),
                     "round_of": ("sample", np.arange(40) // 10)},
                    coords={"input": ["tau", "albedo"]}, attrs={"input_space": json.dumps(declaration(box))})
    assert plots._log_scale_inputs(ds) == {"tau"}
    assert plots._log_scale_inputs(ds.drop_attrs()) == set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = plots.queried_points({"qbc": ds}, tmp_path / "points.png")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_a_log_axis_over_less_than_a_decade_of_runs_labels_more_than_two_ticks():
    import matplotlib.pyplot as plt

    for lo, hi, expected in ((20, 100, {"20", "30", "40", "50", "60", "80", "100"}),
                             (20, 300, {"20", "50", "100", "200"}), (20, 5000, {"100", "1000"})):
        fig, ax = plt.subplots()
        ax.plot([lo, hi], [1, 2])
        ax.set_xscale("log")
        plots._log_ticks(ax.xaxis, lo, hi, plain=True)
        fig.canvas.draw()
        shown = {t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi}
        plt.close(fig)
        assert expected <= shown, (lo, hi, shown)


def test_one_runs_error_falling_threefold_is_drawn_on_a_log_axis_like_a_sweeps(tmp_path, monkeypatch):
    import xarray as xr

    n = np.arange(20, 160, 10)
    error = 1.0 / np.sqrt(n / 20)  # about 2.6x over the run
    ds = xr.Dataset({"mse": ("round", error), "n_runs": ("round", n)})
    drawn = []
    monkeypatch.setattr(plots.plt, "close", drawn.append)
    plots.learning_curves({"qbc": ds}, tmp_path / "one.png")
    assert drawn[0].axes[0].get_yscale() == "log"
    flat = xr.Dataset({"f1": ("round", np.linspace(0.5, 0.9, len(n))), "n_runs": ("round", n)},
                      attrs={"task": "classification"})
    plots.learning_curves({"qbc": flat}, tmp_path / "f1.png")
    assert drawn[1].axes[0].get_yscale() == "linear"


def test_queried_points_spreads_whole_number_inputs_so_that_repeats_show(tmp_path, monkeypatch):
    import json

    import matplotlib.axes
    import xarray as xr
    from alframe.space import Box, declaration

    box = Box(names=("layers", "material", "thickness"), lower=(1, 0, 0.01), upper=(5, 3, 0.2),
              integer=("layers",), categorical=("material",))
    x = box.draw(60, seed=0)
    ds = xr.Dataset({"x": (("sample", "input"), x), "ok": ("sample", np.ones(60, bool)),
                     "round_of": ("sample", np.arange(60) // 10)},
                    coords={"input": list(box.names)}, attrs={"input_space": json.dumps(declaration(box))})
    drawn = []
    scatter = matplotlib.axes.Axes.scatter
    monkeypatch.setattr(matplotlib.axes.Axes, "scatter",
                        lambda self, a, b, *args, **kw: drawn.append((np.asarray(a), np.asarray(b))) or
                        scatter(self, a, b, *args, **kw))
    plots.queried_points({"qbc": ds}, tmp_path / "points.png")
    a, b = drawn[0]
    assert 0 < np.max(np.abs(a - x[:, 0])) <= plots.WHOLE_NUMBER_JITTER  # spread, but not past the next value
    assert 0 < np.max(np.abs(b - x[:, 1])) <= plots.WHOLE_NUMBER_JITTER
    assert len(np.unique(np.round(a, 6))) == 60
    drawn.clear()
    plots.queried_points({"qbc": ds}, tmp_path / "points.png", dims=("thickness", "layers"))
    np.testing.assert_array_equal(drawn[0][0], x[:, 2])  # a continuous input is drawn where it is
