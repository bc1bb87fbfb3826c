"""HOG features of turbulence maps (on the lognormal surrogate, for speed) and their bench."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.bench.turbulence_hog import main as bench
from simulators.turbulence import InvalidSetting, lognormal_density
from simulators.turbulence.hog import hog_features, maps


def surrogate(index: float, seed: int) -> np.ndarray:
    return lognormal_density(index, n_cells=16, seed=seed)


def test_maps_and_hog_vectors_have_the_documented_shapes_and_repeat():
    images, run, index = maps([3.0, 11 / 3, 4.5], [0, 1, 2], surrogate, axes=(0, 2))
    assert images.shape == (6, 16, 16) and run.tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_allclose(index, [3.0, 3.0, 11 / 3, 11 / 3, 4.5, 4.5])
    features = hog_features(images, pixels_per_cell=4, cells_per_block=2)
    # 4 x 4 cells of 4 pixels, 3 x 3 blocks of 2 x 2 cells, 9 orientations each.
    assert features.shape == (6, 3 * 3 * 2 * 2 * 9) and np.all(np.isfinite(features))
    again, _, _ = maps([3.0, 11 / 3, 4.5], [0, 1, 2], surrogate, axes=(0, 2))
    np.testing.assert_array_equal(hog_features(again, pixels_per_cell=4), features)
    # Contrast alone changes nothing: HOG normalises it away.
    np.testing.assert_allclose(hog_features(3.0 * images + 1.0, pixels_per_cell=4), features, atol=1e-12)


@pytest.mark.parametrize("images, message", [
    (np.zeros((2, 16, 8)), "square maps"),
    (np.zeros((2, 4, 4)), "smaller than one block"),
    (np.full((1, 16, 16), np.nan), "image 0 is not finite"),
])
def test_bad_maps_are_refused(images, message):
    with pytest.raises(InvalidSetting, match=message):
        hog_features(images)


def test_the_bench_scores_map_hog_and_pixels(tmp_path, capsys):
    assert bench(["--per-class", "4", "--continuous", "2", "--grid", "16", "--surrogate",
                  "--out-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("turbulence_hog: Kolmogorov vs Burgers k-NN accuracy ")
    result = json.loads((tmp_path / "turbulence_hog.json").read_text())
    assert result["scored_maps"] == 24 and result["settings"]["model"] == "lognormal surrogate"
    for space in ("tsne_map", "hog", "pixels", "map_statistics"):
        assert 0.0 <= result[space]["knn_accuracy"] <= 1.0
    assert (tmp_path / "turbulence_hog.png").exists() and (tmp_path / "turbulence_hog.md").exists()
