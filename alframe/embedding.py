"""Two-dimensional views of a point set and scores of how well a view keeps groups apart.

- `tsne(x)`: a t-SNE map (openTSNE) of standardised features, deterministic for a seed, and
  a model that `place(model, new_x)` uses to put further points into the same map without
  moving the fitted ones.
- `pca(x)`: the first principal components of the standardised features, for comparison.
- `knn_accuracy(points, groups)`: leave-one-out k-nearest-neighbour accuracy of group labels;
  `cluster_recovery(points, groups)`: adjusted Rand index of a k-means clustering. Both work
  in any dimension, so the same score rates a map, the feature space or raw pixels.

Points are float arrays (n, d), one row per point; groups are (n,) labels of any kind.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import openTSNE
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors

MIN_POINTS = 5
# openTSNE finds exact neighbours up to here (scikit-learn), Annoy's approximate ones beyond;
# exact ones make a map independent of the index's own randomness.
EXACT_NEIGHBOURS = 10_000


class TSNEModel(NamedTuple):
    """A fitted t-SNE map and what placing new points into it needs.

    Fields:
        embedding: the fitted openTSNE `TSNEEmbedding` (n, 2), with its affinities.
        mean, std: (d,) the standardisation of the features it was fitted on.
        perplexity: the perplexity used (after the small-sample rule of `tsne`).
    """

    embedding: openTSNE.TSNEEmbedding
    mean: np.ndarray
    std: np.ndarray
    perplexity: float


def check_points(x, *, name: str = "x", min_rows: int = 1) -> np.ndarray:
    """`x` as a float64 array (n, d), or a one-line ValueError naming the first bad row."""
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers, shape (n, d): {exc}") from None
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n, d) with d >= 1, got {array.shape}")
    if len(array) < min_rows:
        raise ValueError(f"{name} has {len(array)} rows; at least {min_rows} are needed")
    bad = ~np.isfinite(array)
    if bad.any():
        row, column = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{name} row {row} is not finite (column {column}: {array[row, column]})")
    return array


def _check_groups(groups, n: int, *, name: str = "groups") -> np.ndarray:
    """Group labels (n,) as integer codes 0..g-1, at least two groups."""
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"{name} must have one label per point, shape ({n},), got {groups.shape}")
    if groups.dtype.kind == "f" and not np.all(np.isfinite(groups)):
        raise ValueError(f"{name} entry {int(np.flatnonzero(~np.isfinite(groups))[0])} is not finite")
    _, codes = np.unique(groups, return_inverse=True)
    if codes.max(initial=0) < 1:
        raise ValueError(f"{name} must hold at least two distinct labels, got only {groups[:1].tolist()}")
    return codes.reshape(-1)


def standardise(x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre each column on its mean and scale it to unit standard deviation.

    Args:
        x: (n, d) finite features.
    Returns:
        z (n, d), mean (d,), std (d,): z = (x - mean) / std. A constant column is only
        centred (its std is returned as 1), so it becomes zeros instead of NaN.
    """
    x = check_points(x, min_rows=1)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (x - mean) / std, mean, std


def effective_perplexity(perplexity: float, n: int) -> float:
    """The perplexity `tsne` uses for n points: `perplexity`, at most (n - 1) / 3.

    Each point's neighbourhood holds about 3 x perplexity points; beyond (n - 1) / 3 it would
    need more points than there are (openTSNE applies the same limit).
    """
    if not (isinstance(perplexity, int | float) and np.isfinite(perplexity) and perplexity > 0):
        raise ValueError(f"perplexity must be a positive number, got {perplexity!r}")
    return float(min(perplexity, (n - 1) / 3.0))


def tsne(x, *, perplexity: float = 30.0, seed: int = 0, metric: str = "euclidean", n_iter: int = 500,
         early_exaggeration_iter: int = 250) -> tuple[np.ndarray, TSNEModel]:
    """A t-SNE map of the standardised rows of `x`.

    Args:
        x: (n, d) finite features, n >= 5.
        perplexity: the effective number of neighbours each point keeps close; clamped to
            (n - 1) / 3 for small n (see `effective_perplexity`; `model.perplexity` says what
            was used).
        seed: the one source of randomness (openTSNE's `random_state`); with a single thread
            the same x and seed give the same map, bit for bit.
        metric: distance between standardised rows, any metric openTSNE accepts.
        n_iter, early_exaggeration_iter: optimisation steps after and during early exaggeration.
    Returns:
        map (n, 2) float64, centred; the `TSNEModel` for `place`.
    """
    x = check_points(x, min_rows=MIN_POINTS)
    z, mean, std = standardise(x)
    used = effective_perplexity(perplexity, len(z))
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    embedding = openTSNE.TSNE(
        n_components=2, perplexity=used, metric=metric, n_iter=int(n_iter),
        early_exaggeration_iter=int(early_exaggeration_iter), initialization="pca", random_state=int(seed),
        n_jobs=1, neighbors="exact" if len(z) <= EXACT_NEIGHBOURS else "annoy", verbose=False,
    ).fit(z)
    # openTSNE centres the map in place whenever points are added; centred now, it stays put.
    embedding -= (embedding.max(axis=0) + embedding.min(axis=0)) / 2
    return np.array(embedding, dtype=np.float64), TSNEModel(embedding, mean, std, used)


def place(model: TSNEModel, new_x, *, perplexity: float = 5.0) -> np.ndarray:
    """Positions (m, 2) of new points in the map of `model`, the fitted points held fixed.

    Each new row (m, d), in the units of the features the map was fitted on, is standardised
    the same way and optimised against the fitted points only (openTSNE's `transform`: new
    points do not attract each other). `perplexity` (at most (n - 1) / 3 of the n fitted
    points) sets how many fitted neighbours pull on each new point.
    """
    n, d = model.embedding.shape[0], len(model.mean)
    new_x = check_points(new_x, name="new_x")
    if new_x.shape[1] != d:
        raise ValueError(f"new_x has {new_x.shape[1]} columns, the map was fitted on {d}")
    z = (new_x - model.mean) / model.std
    fitted = np.array(model.embedding)
    positions = model.embedding.transform(z, perplexity=effective_perplexity(perplexity, n), k=min(25, n))
    # transform re-centres the fitted map in place; the model must not move between calls.
    np.copyto(model.embedding, fitted)
    return np.array(positions, dtype=np.float64)


def pca(x, *, n_components: int = 2) -> np.ndarray:
    """The first principal components (n, n_components) of the standardised rows of x (n, d).

    Deterministic: a full SVD, each component's sign fixed by scikit-learn's convention.
    """
    x = check_points(x, min_rows=2)
    if not 1 <= n_components <= min(x.shape):
        raise ValueError(f"n_components must be in [1, {min(x.shape)}] for x of shape {x.shape}, got {n_components}")
    z, _, _ = standardise(x)
    return PCA(n_components=n_components, svd_solver="full").fit_transform(z)


def _neighbours(points: np.ndarray, k: int, blocks: np.ndarray | None) -> np.ndarray:
    """(n, k) indices of each point's k nearest other points, nearest first, skipping points
    of its own block."""
    n = len(points)
    largest = 1 if blocks is None else int(np.unique(blocks, return_counts=True)[1].max())
    if n - largest < k:
        raise ValueError(f"k={k} needs at least {k} points outside each point's own "
                         f"{'block' if blocks is not None else 'position'}; there are {n - largest}")
    query = min(n, k + largest)
    _, idx = NearestNeighbors(n_neighbors=query).fit(points).kneighbors(points)
    own = np.arange(n)[:, None] if blocks is None else blocks[:, None]
    same = (idx == own) if blocks is None else (blocks[idx] == own)
    # A stable sort moves the excluded entries to the end and keeps the others nearest first.
    order = np.argsort(same, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)[:, :k]


def knn_accuracy(points, groups, *, k: int = 5, blocks=None, balanced: bool = False) -> float:
    """Leave-one-out k-nearest-neighbour accuracy of the group labels.

    Each point's group is predicted by a vote of its k nearest other points (Euclidean, in
    whatever space `points` live: a map, standardised features, raw pixels); a tied vote goes
    to the tied group of the nearest voter.

    Args:
        points: (n, d) finite.
        groups: (n,) labels, at least two distinct.
        k: voters per point.
        blocks: optional (n,) ids; points of a point's own block never vote for it (leave one
            block out: e.g. the several images of one simulation).
        balanced: the mean of the per-group accuracies instead of the share of all points
            (chance is then 1 / number of groups, not the largest group's share).
    Returns:
        The share of points whose group the vote gets right, in [0, 1].
    """
    points = check_points(points, name="points", min_rows=2)
    codes = _check_groups(groups, len(points))
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if blocks is not None:
        blocks = np.asarray(blocks)
        if blocks.shape != (len(points),):
            raise ValueError(f"blocks must have one id per point, shape ({len(points)},), got {blocks.shape}")
        _, blocks = np.unique(blocks, return_inverse=True)
        blocks = blocks.reshape(-1)
    voters = codes[_neighbours(points, int(k), blocks)]
    counts = np.stack([(voters == g).sum(axis=1) for g in range(codes.max() + 1)], axis=1)
    support = np.take_along_axis(counts, voters, axis=1)
    # The first voter whose group has the most votes: the nearest of the tied groups.
    predicted = voters[np.arange(len(voters)), np.argmax(support == support.max(axis=1, keepdims=True), axis=1)]
    right = predicted == codes
    if balanced:
        return float(np.mean([right[codes == g].mean() for g in range(codes.max() + 1)]))
    return float(right.mean())


def cluster_recovery(points, groups, *, seed: int = 0) -> float:
    """How well a clustering of `points` finds the groups: the adjusted Rand index of
    k-means with as many clusters as groups (1: the groups exactly; about 0: chance).

    k-means rather than Ward's agglomeration: both minimise the within-cluster variance, but
    k-means optimises it over the whole set (10 restarts, seeded by `seed`) instead of by
    greedy merges, and its cost grows linearly with n, so one score serves a map of a few
    hundred points and a feature space of many thousand.

    Args:
        points: (n, d) finite, n > number of groups.
        groups: (n,) labels, at least two distinct.
    """
    points = check_points(points, name="points", min_rows=2)
    codes = _check_groups(groups, len(points))
    n_groups = int(codes.max()) + 1
    if len(points) <= n_groups:
        raise ValueError(f"{len(points)} points cannot be split into {n_groups} clusters")
    clusters = KMeans(n_clusters=n_groups, n_init=10, random_state=int(seed)).fit_predict(points)
    return float(adjusted_rand_score(codes, clusters))


def chance_accuracy(groups, *, balanced: bool = False) -> float:
    """The k-NN accuracy of guessing: the largest group's share (or 1 / number of groups
    for balanced accuracy), to read `knn_accuracy` against."""
    _, counts = np.unique(np.asarray(groups), return_counts=True)
    return float(1.0 / len(counts) if balanced else counts.max() / counts.sum())
