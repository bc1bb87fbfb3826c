"""An ensemble of Flax convolutional networks on images, trained together with optax.

The default architecture is the turbulence talk's: four 3x3 convolutions, each followed by
ReLU and 2x2 max pooling, then three dense layers (two hidden, with ReLU and dropout, and the
output layer). Sizes are settings.

Images travel as flattened rows: x is (n, H * W), as alframe's loop and store keep 2-D inputs,
and `image_shape=(H, W)` says how to fold them back. Like `MLPCommittee`, all members train in
one jitted, vmapped loop over a fixed-capacity buffer (`alframe.learners.ensemble`), so a
growing training set compiles nothing new. Predictions run in fixed power-of-two chunks for the
same reason (and to bound memory).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from alframe.learners import ensemble


class ImageShapeError(ValueError):
    """Inputs that do not fold into the committee's image shape, or a bad image shape."""


class CNN(nnx.Module):
    """Convolutions with max pooling, then dense layers: (n, H, W, 1) -> (n, n_outputs)."""

    def __init__(self, image_shape: tuple[int, int], n_outputs: int, conv_features: Sequence[int],
                 dense: Sequence[int], kernel_size: int, dropout: float, *, rngs: nnx.Rngs):
        channels = [1, *conv_features]
        self.convs = nnx.List([
            nnx.Conv(a, b, kernel_size=(kernel_size, kernel_size), padding="SAME", rngs=rngs)
            for a, b in zip(channels[:-1], channels[1:])
        ])
        h, w = image_shape
        for _ in conv_features:
            h, w = -(-h // 2), -(-w // 2)  # SAME-padded 2x2 pooling rounds up
        sizes = [h * w * channels[-1], *dense]
        self.dense = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.head = nnx.Linear(sizes[-1], n_outputs, rngs=rngs)
        self.dropout = dropout

    def __call__(self, x: jax.Array, dropout_key: jax.Array | None = None) -> jax.Array:
        """x (n, H, W, 1); dropout on the hidden dense layers only when `dropout_key` is given."""
        for conv in self.convs:
            x = nnx.max_pool(jax.nn.relu(conv(x)), window_shape=(2, 2), strides=(2, 2), padding="SAME")
        x = x.reshape(x.shape[0], -1)
        for i, layer in enumerate(self.dense):
            x = jax.nn.relu(layer(x))
            if dropout_key is not None and self.dropout > 0:
                keep = jax.random.bernoulli(jax.random.fold_in(dropout_key, i), 1.0 - self.dropout, x.shape)
                x = jnp.where(keep, x / (1.0 - self.dropout), 0.0)
        return self.head(x)


@dataclasses.dataclass(frozen=True)
class _Architecture:
    """Everything a compiled function depends on; hashable so compiled functions are shared."""

    image_shape: tuple[int, int]
    n_outputs: int
    conv_features: tuple[int, ...]
    dense: tuple[int, ...]
    kernel_size: int
    dropout: float
    members: int
    classification: bool
    batch_size: int
    weight_decay: float


@functools.cache
def _programs(arch: _Architecture) -> ensemble.Programs:
    """The jitted programs of one CNN architecture, shared by every committee that has it."""
    net = ensemble.network(lambda key: CNN(arch.image_shape, arch.n_outputs, arch.conv_features, arch.dense,
                                           arch.kernel_size, arch.dropout, rngs=nnx.Rngs(params=key)))
    h, w = arch.image_shape

    def images(rows: jax.Array) -> jax.Array:
        return rows.reshape(-1, h, w, 1)

    def member_loss(params, xb, yb, dropout_key):
        out = net.apply(params, images(xb), dropout_key)
        if arch.classification:
            return optax.softmax_cross_entropy_with_integer_labels(out, yb[:, 0].astype(jnp.int32)).mean()
        return jnp.mean((out - yb) ** 2)

    # The loss always gets its own key, whatever the dropout rate, so that a member's
    # minibatches do not depend on it.
    return ensemble.compile_programs(
        net, members=arch.members, loss=member_loss, weight_decay=arch.weight_decay, batch_size=arch.batch_size,
        classification=arch.classification, loss_draws_key=True, forward=lambda p, z: net.apply(p, images(z)))


def _pixel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One mean and scale over every pixel of the images x (n, H*W)."""
    return np.float32(x.mean()), np.float32(x.std() + 1e-12)


@dataclasses.dataclass(frozen=True)
class CNNCommittee:
    """A committee of `members` convolutional networks on (H, W) images, trained together.

    Args:
        image_shape: (H, W); x rows are images flattened row-major, H * W values.
        members: committee size.
        conv_features: output channels of each 3x3 convolution (each followed by ReLU and
            2x2 max pooling).
        dense: widths of the hidden dense layers (ReLU, dropout); the output layer follows.
        kernel_size: side of the square convolution kernels.
        dropout: drop probability on the hidden dense layers while training, in [0, 1).
        task: "regression" or "classification".
        n_classes: number of classes (classification only).
        learning_rate, final_learning_rate: cosine schedule within a fit from scratch.
        warm_learning_rate: start of a warm-started fit's cosine schedule.
        weight_decay: decoupled weight decay (0 for none).
        batch_size: images per member and step.
        steps_first, steps_per_sample, steps_first_min: a fit from scratch on n images takes
            min(steps_first, max(steps_first_min, steps_per_sample * n)) steps (always
            `steps_first` when steps_per_sample is None).
        steps_warm: steps of a warm-started fit.
        warm_start: continue from the current parameters on refit.
        restart_growth: refit from scratch whenever the training set has grown by this factor
            since the last fit from scratch; None never restarts.
        bootstrap: each member trains on its own bootstrap resample.
        capacity: rows (images) of the training buffer; set it to the largest training set so
            nothing recompiles. A larger set doubles it (one recompilation, with a warning).
        predict_chunk: images per compiled prediction call (a power of two); bounds memory.

    `fit(x, y, key=...)` takes x (n, H*W) and y (n, n_outputs) or labels (n,);
    `predict_members(x)` returns (members, n, n_outputs) or (members, n, n_classes).
    Pixels are standardised by the training images' overall mean and standard deviation
    (one number each: the statistics of a texture do not depend on the pixel's position).
    """

    image_shape: tuple[int, int]
    members: int = 5
    conv_features: tuple[int, ...] = (16, 32, 64, 64)
    dense: tuple[int, ...] = (128, 64)
    kernel_size: int = 3
    dropout: float = 0.25
    task: Literal["regression", "classification"] = "classification"
    n_classes: int | None = 2
    learning_rate: float = 1e-3
    final_learning_rate: float = 1e-5
    warm_learning_rate: float = 3e-4
    weight_decay: float = 0.0
    batch_size: int = 32
    steps_first: int = 3000
    steps_per_sample: float | None = 2.0
    steps_first_min: int = 500
    steps_warm: int = 200
    warm_start: bool = True
    restart_growth: float | None = 2.0
    bootstrap: bool = False
    capacity: int = 1024
    predict_chunk: int = 256
    state: ensemble.Fitted | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            shape = tuple(int(s) for s in self.image_shape)
        except (TypeError, ValueError):
            raise ImageShapeError(f"image_shape must be (H, W) positive integers, got {self.image_shape!r}") from None
        if len(shape) != 2 or min(shape) < 1:
            raise ImageShapeError(f"image_shape must be (H, W) positive integers, got {self.image_shape!r}")
        object.__setattr__(self, "image_shape", shape)
        object.__setattr__(self, "conv_features", tuple(int(c) for c in self.conv_features))
        object.__setattr__(self, "dense", tuple(int(d) for d in self.dense))
        ensemble.check_settings(self)
        if any(c < 1 for c in self.conv_features) or any(d < 1 for d in self.dense):
            raise ValueError(f"layer sizes must be >= 1, got conv_features={self.conv_features}, dense={self.dense}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {self.kernel_size}")
        if self.predict_chunk < 1 or self.predict_chunk & (self.predict_chunk - 1):
            raise ValueError(f"predict_chunk must be a power of two, got {self.predict_chunk}")

    @property
    def n_pixels(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    @property
    def is_fitted(self) -> bool:
        return self.state is not None

    def _architecture(self, n_outputs: int) -> _Architecture:
        classification = self.task == "classification"
        return _Architecture(
            image_shape=self.image_shape,
            n_outputs=self.n_classes if classification else n_outputs,
            conv_features=self.conv_features,
            dense=self.dense,
            kernel_size=self.kernel_size,
            dropout=float(self.dropout),
            members=self.members,
            classification=classification,
            batch_size=self.batch_size,
            weight_decay=float(self.weight_decay),
        )

    def _check_images(self, x: np.ndarray, where: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_pixels:
            h, w = self.image_shape
            raise ImageShapeError(f"{where}: x must be (n, {self.n_pixels}) rows of {h}x{w} images "
                                  f"flattened row-major, got shape {x.shape}")
        return x

    def cold_steps(self, n: int) -> int:
        """Optimisation steps of a fit from scratch on n images."""
        return ensemble.Schedule.of(self).cold_steps(n)

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> CNNCommittee:
        """Fit on images x (n, H*W) and y (n, n_outputs) values or (n,) integer labels."""
        classification = self.task == "classification"
        x, y = ensemble.checked_training_data(self._check_images(x, "fit"), y, width=self.n_pixels,
                                              classification=classification, n_classes=self.n_classes)
        fitted = ensemble.fit_ensemble(
            _programs(self._architecture(y.shape[1])), ensemble.Schedule.of(self), self.state, x, y, key,
            capacity=self.capacity, min_capacity=16, classification=classification, input_stats=_pixel_stats,
            bootstrap=self.bootstrap, rows_name=" images")
        return dataclasses.replace(self, state=fitted)

    def predict_members(self, x: np.ndarray) -> jax.Array:
        """Images x (n, H*W) -> (members, n, n_classes) probabilities or (members, n, n_outputs)."""
        if self.state is None:
            raise RuntimeError("predict_members called on a committee that was never fitted")
        s = self.state
        programs = _programs(self._architecture(int(s.y_mean.shape[0])))
        return ensemble.predict_padded(programs, s, self._check_images(x, "predict_members"), min_rows=16,
                                       max_rows=self.predict_chunk)
