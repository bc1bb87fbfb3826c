"""The turbulence reproduction script end to end on tiny settings (lognormal surrogate, 16^2 images)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simulators.turbulence import classification as turbulence_index

TINY = ["--surrogate", "--grid", "32", "--n-runs", "5", "--probe-runs", "3", "--steps", "30",
        "--members", "2", "--conv", "4", "--dense", "8", "--batch-size", "16", "--no-progress"]


def test_script_writes_confusion_response_and_figures(tmp_path, capsys):
    out = tmp_path / "ti"
    assert turbulence_index.main([*TINY, "--out", str(out)]) == 0
    assert "holdout accuracy" in capsys.readouterr().out
    figures = json.loads((out / "figures.json").read_text())
    assert figures["image_shape"] == [16, 16]
    assert figures["images_per_run"] == 48
    scores = figures["scores"]
    # 5 runs per class, 80/10/10 by run, boundaries rounded: 4 train, 0 test, 1 holdout each.
    assert [scores[s]["runs"] for s in ("train", "test", "holdout")] == [8, 0, 2]
    assert scores["test"]["accuracy"] is None
    for split in (scores["train"], scores["holdout"]):
        matrix = np.array(split["confusion"])
        assert matrix.shape == (2, 2) and matrix.sum() == split["images"] == 48 * split["runs"]
        assert split["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    response = figures["response"]
    assert response["index"] == pytest.approx([3.0, 3.75, 4.5])
    assert all(0.0 <= f <= 1.0 for f in response["fraction_burgers"])
    for name in ("confusion.png", "response.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "dataset.zarr").is_dir() and (out / "probe.zarr").is_dir()


@pytest.mark.parametrize(("argv", "message"), [
    (["--n-runs", "2"], "--n-runs must be >= 5"),
    (["--conv", "4,x"], "--conv must be comma-separated integers"),
    (["--steps", "0"], "--steps must be >= 1"),
])
def test_bad_arguments_exit_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        turbulence_index.parse_args(argv)
    assert exit_info.value.code == 2
    assert f"turbulence_index: error: {message}" in capsys.readouterr().err


def test_bad_grid_is_reported_in_one_line(tmp_path, capsys):
    assert turbulence_index.main([*TINY, "--grid", "6", "--out", str(tmp_path / "bad")]) == 2
    assert "turbulence_index: error: n_cells must be an even integer" in capsys.readouterr().err
