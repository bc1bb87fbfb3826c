"""alframe/embedding.py: t-SNE maps and placing points in them, PCA, and the separation scores."""

from __future__ import annotations

import numpy as np
import pytest

from alframe.embedding import (chance_accuracy, cluster_recovery, knn_accuracy, pca, place, standardise, tsne)


def blobs(n_per: int = 30, d: int = 6, gap: float = 8.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated Gaussian blobs in d dimensions and their labels."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, d) * gap
    x = np.concatenate([rng.normal(c, 1.0, (n_per, d)) for c in centres])
    return x, np.repeat(np.array(["a", "b", "c"]), n_per)


@pytest.fixture(scope="module")
def fitted():
    x, groups = blobs()
    points, model = tsne(x, perplexity=15, seed=3)
    return x, groups, points, model


def test_the_same_seed_gives_the_same_map_and_another_seed_another(fitted):
    x, _, points, _ = fitted
    again, _ = tsne(x, perplexity=15, seed=3)
    other, _ = tsne(x, perplexity=15, seed=4)
    assert points.shape == (len(x), 2) and points.dtype == np.float64
    np.testing.assert_array_equal(points, again)
    assert not np.array_equal(points, other)


def test_a_map_keeps_separated_groups_apart(fitted):
    _, groups, points, _ = fitted
    assert knn_accuracy(points, groups) == 1.0
    assert cluster_recovery(points, groups) > 0.95
    shuffled = np.random.default_rng(0).permutation(groups)
    assert knn_accuracy(points, shuffled) < 0.6
    assert abs(cluster_recovery(points, shuffled)) < 0.1


def test_scores_work_in_any_dimension_and_know_chance():
    x, groups = blobs(d=40)
    assert knn_accuracy(x, groups, k=3) == 1.0 and cluster_recovery(x, groups) == pytest.approx(1.0)
    assert chance_accuracy(groups) == pytest.approx(1 / 3)
    # 90 % of one group: plain accuracy looks good while the vote never finds the rare group.
    rng = np.random.default_rng(1)
    rare = np.where(np.arange(100) < 10, "rare", "common")
    noise = rng.normal(size=(100, 3))
    assert knn_accuracy(noise, rare) >= 0.85
    assert knn_accuracy(noise, rare, balanced=True) < 0.6
    assert chance_accuracy(rare) == 0.9 and chance_accuracy(rare, balanced=True) == 0.5


def test_points_of_ones_own_block_never_vote():
    # Pairs of identical points with a random label per pair: each point's twin votes for
    # the right label unless the pair is one block.
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(60, 4))
    x = np.repeat(centres, 2, axis=0)
    labels = np.repeat(rng.integers(0, 2, 60), 2)
    pairs = np.repeat(np.arange(60), 2)
    assert knn_accuracy(x, labels, k=1) == 1.0
    assert knn_accuracy(x, labels, k=1, blocks=pairs) < 0.7


def test_place_puts_a_fitted_point_near_its_own_position_and_moves_nothing(fitted):
    x, _, points, model = fitted
    before = np.array(model.embedding)
    placed = place(model, x[:6])
    spread = np.ptp(points, axis=0).max()
    assert placed.shape == (6, 2)
    assert np.linalg.norm(placed - points[:6], axis=1).max() < 0.05 * spread
    np.testing.assert_array_equal(np.asarray(model.embedding), before)
    np.testing.assert_array_equal(place(model, x[:6]), placed)
    # A new point of blob "b" lands among blob "b".
    new = place(model, np.eye(1, x.shape[1], 1) * 8.0)
    nearest = np.argsort(np.linalg.norm(points - new, axis=1))[:5]
    assert set(fitted[1][nearest]) == {"b"}


def test_small_sets_clamp_the_perplexity():
    x, _ = blobs(n_per=4)
    points, model = tsne(x, perplexity=30, seed=0)
    assert model.perplexity == pytest.approx((len(x) - 1) / 3) and points.shape == (12, 2)


def test_pca_is_deterministic_and_standardises():
    x, groups = blobs()
    x[:, 1] *= 1000.0  # a column in other units must not dominate
    first, second = pca(x), pca(x)
    np.testing.assert_array_equal(first, second)
    assert first.shape == (len(x), 2) and knn_accuracy(first, groups) > 0.9
    z, mean, std = standardise(np.column_stack([x[:, 0], np.full(len(x), 7.0)]))
    assert np.all(z[:, 1] == 0) and std[1] == 1.0 and mean[1] == 7.0


@pytest.mark.parametrize("call, message", [
    (lambda: tsne(np.zeros((4, 3))), "4 rows; at least 5"),
    (lambda: tsne(np.zeros(10)), "shape (n, d)"),
    (lambda: tsne(np.array([[0.0, 1.0]] * 6 + [[np.nan, 1.0]])), "x row 6 is not finite (column 0: nan)"),
    (lambda: tsne(np.random.default_rng(0).normal(size=(10, 2)), perplexity=-1), "perplexity must be a positive"),
    (lambda: knn_accuracy(np.zeros((10, 2)), np.zeros(9)), "one label per point"),
    (lambda: knn_accuracy(np.zeros((10, 2)), np.zeros(10)), "at least two distinct labels"),
    (lambda: knn_accuracy(np.zeros((6, 2)), np.arange(6) % 2, k=6), "k=6 needs at least 6 points"),
    (lambda: cluster_recovery(np.zeros((3, 2)), np.arange(3)), "3 points cannot be split into 3 clusters"),
    (lambda: pca(np.zeros((10, 2)), n_components=3), "n_components must be in [1, 2]"),
])
def test_bad_input_raises_one_line(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_placing_points_of_the_wrong_width_is_refused(fitted):
    with pytest.raises(ValueError, match="new_x has 2 columns, the map was fitted on 6"):
        place(fitted[3], np.zeros((3, 2)))
