"""Pieces the Flax committees share: the optimizer and the power-of-two size buckets."""

from __future__ import annotations

import optax


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
