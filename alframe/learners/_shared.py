"""Pieces the committees share: the optimizer, the power-of-two size buckets, the row folds,
the standardisation."""

from __future__ import annotations

import hashlib

import numpy as np
import optax

from alframe.metrics import varies


def adam(weight_decay: float) -> optax.GradientTransformation:
    """Adam's update direction, with decoupled weight decay when `weight_decay` > 0; the
    learning rate is applied by the training loop's own schedule."""
    parts = [optax.scale_by_adam()]
    if weight_decay:
        parts.append(optax.add_decayed_weights(weight_decay))
    return optax.chain(*parts)


def bucket(n: int, minimum: int) -> int:
    """The smallest power of two >= n, and at least `minimum`: padded sizes that keep the
    number of compiled shapes logarithmic in n."""
    return max(minimum, 1 << max(n - 1, 0).bit_length())


def row_folds(x: np.ndarray, folds: int) -> np.ndarray:
    """Fold of each row of x (n, dim), (n,) int in [0, folds): a hash of the row's bytes, so a
    row keeps its fold however the data set grows or is reordered."""
    rows = np.ascontiguousarray(np.asarray(x, dtype="<f8") + 0.0)
    digest = [hashlib.blake2b(r.tobytes(), digest_size=8).digest() for r in rows]
    return np.array([int.from_bytes(d, "little") % folds for d in digest], dtype=np.int64)


def standardisation(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of each column of a (n, k), each (k,) float64, so that (a - mean) / scale
    is of order one in whatever units a comes: a simulator's inputs may span 1e-9 or sit at 1e6
    +- 1, its outputs may be 1e-20 (cgs units), and float32 training or a fixed epsilon would
    lose them. The scale is the standard deviation, or 1 for a column that does not vary
    beyond the round-off of its own magnitude."""
    a = np.asarray(a, dtype=np.float64)
    mean, std = a.mean(axis=0), a.std(axis=0)
    return mean, np.where(varies(a), std, 1.0)
