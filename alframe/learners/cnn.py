"""An ensemble of Flax convolutional networks on images, trained together with optax.

The default architecture is the turbulence talk's: four 3x3 convolutions, each followed by
ReLU and 2x2 max pooling, then three dense layers (two hidden, with ReLU and dropout, and the
output layer). Sizes are settings.

Images travel as flattened rows: x is (n, H * W), as alframe's loop and store keep 2-D inputs,
and `image_shape=(H, W)` says how to fold them back. Like `MLPCommittee`, all members train in
one jitted, vmapped loop over a fixed-capacity buffer whose first `n` rows hold the data; `n`
and the step count are traced values, so a growing training set compiles nothing new.
Predictions run in fixed power-of-two chunks for the same reason (and to bound memory).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import warnings
from collections.abc import Sequence
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from alframe.learners._shared import adam, bucket

# Times each compiled function was traced, by name ("train", "predict"): a trace is a
# compilation, so tests and benchmarks read this to prove that growing data compiles nothing.
TRACES: collections.Counter = collections.Counter()


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
    bootstrap: bool


class _Fitted(NamedTuple):
    params: nnx.State  # leaves (members, ...)
    opt_state: optax.OptState
    x_mean: np.ndarray  # () pixel mean of the training images
    x_scale: np.ndarray  # () pixel standard deviation
    y_mean: np.ndarray  # (n_outputs,)
    y_scale: np.ndarray  # (n_outputs,)
    capacity: int
    n_at_cold_fit: int


def _build_model(arch: _Architecture, key: jax.Array) -> CNN:
    return CNN(arch.image_shape, arch.n_outputs, arch.conv_features, arch.dense, arch.kernel_size,
               arch.dropout, rngs=nnx.Rngs(params=key))


@functools.cache
def _compiled(arch: _Architecture):
    """Build the jitted init, train and predict functions for one architecture."""
    graphdef = nnx.graphdef(_build_model(arch, jax.random.key(0)))
    tx = adam(arch.weight_decay)
    h, w = arch.image_shape

    def member_loss(params, xb, yb, dropout_key):
        out = nnx.merge(graphdef, params)(xb.reshape(-1, h, w, 1), dropout_key)
        if arch.classification:
            return optax.softmax_cross_entropy_with_integer_labels(out, yb[:, 0].astype(jnp.int32)).mean()
        return jnp.mean((out - yb) ** 2)

    @jax.jit
    def init(key):
        keys = jax.random.split(key, arch.members)
        params = jax.vmap(lambda k: nnx.state(_build_model(arch, k), nnx.Param))(keys)
        return params, jax.vmap(tx.init)(params)

    @jax.jit
    def train(params, opt_state, x_buf, y_buf, n, steps, peak_lr, final_lr, key):
        """x_buf (capacity, H*W) standardised, y_buf (capacity, n_outputs); rows >= n unused."""
        TRACES["train"] += 1
        capacity = x_buf.shape[0]

        def one_member(p, o, k):
            k_boot, k_steps = jax.random.split(k)
            rows = jax.random.randint(k_boot, (capacity,), 0, n) if arch.bootstrap else jnp.arange(capacity)
            decay_steps = jnp.maximum(steps, 1).astype(jnp.float32)

            def step(i, carry):
                p, o = carry
                k_pick, k_drop = jax.random.split(jax.random.fold_in(k_steps, i))
                idx = rows[jax.random.randint(k_pick, (arch.batch_size,), 0, n)]
                grads = jax.grad(member_loss)(p, x_buf[idx], y_buf[idx], k_drop)
                updates, o = tx.update(grads, o, p)
                frac = i.astype(jnp.float32) / decay_steps
                lr = final_lr + 0.5 * (peak_lr - final_lr) * (1.0 + jnp.cos(jnp.pi * frac))
                return optax.apply_updates(p, jax.tree.map(lambda u: -lr * u, updates)), o

            return jax.lax.fori_loop(0, steps, step, (p, o))

        return jax.vmap(one_member)(params, opt_state, jax.random.split(key, arch.members))

    @jax.jit
    def predict(params, x, x_mean, x_scale, y_mean, y_scale):
        """x (chunk, H*W) raw -> (members, chunk, n_outputs) probabilities or output units."""
        TRACES["predict"] += 1
        z = ((x - x_mean) / x_scale).reshape(-1, h, w, 1)
        out = jax.vmap(lambda p: nnx.merge(graphdef, p)(z))(params)
        return jax.nn.softmax(out, axis=-1) if arch.classification else out * y_scale + y_mean

    return init, train, predict


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
    state: _Fitted | None = dataclasses.field(default=None, repr=False, compare=False)

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
        if self.members < 1:
            raise ValueError(f"members must be >= 1, got {self.members}")
        if any(c < 1 for c in self.conv_features) or any(d < 1 for d in self.dense):
            raise ValueError(f"layer sizes must be >= 1, got conv_features={self.conv_features}, dense={self.dense}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {self.task!r}")
        if self.task == "classification" and (self.n_classes is None or self.n_classes < 2):
            raise ValueError(f"classification needs n_classes >= 2, got {self.n_classes}")
        for name in ("kernel_size", "batch_size", "steps_first", "steps_first_min", "capacity"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.predict_chunk < 1 or self.predict_chunk & (self.predict_chunk - 1):
            raise ValueError(f"predict_chunk must be a power of two, got {self.predict_chunk}")
        if self.restart_growth is not None and self.restart_growth <= 1:
            raise ValueError(f"restart_growth must be > 1 or None, got {self.restart_growth}")
        if self.steps_per_sample is not None and not self.steps_per_sample > 0:
            raise ValueError(f"steps_per_sample must be > 0 or None, got {self.steps_per_sample}")
        if self.steps_warm < 0:
            raise ValueError(f"steps_warm must be >= 0, got {self.steps_warm}")

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
            bootstrap=self.bootstrap,
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
        if self.steps_per_sample is None:
            return self.steps_first
        return int(min(self.steps_first, max(self.steps_first_min, round(self.steps_per_sample * n))))

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> CNNCommittee:
        """Fit on images x (n, H*W) and y (n, n_outputs) values or (n,) integer labels."""
        x = self._check_images(x, "fit")
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or len(x) != len(y) or len(x) == 0:
            raise ValueError(f"fit needs x (n, {self.n_pixels}) and y (n, outputs) with n >= 1, "
                             f"got {x.shape} and {y.shape}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("fit received non-finite training data")
        classification = self.task == "classification"
        if classification and (y.shape[1] != 1 or np.any(y < 0) or np.any(y >= self.n_classes)
                               or np.any(y != np.round(y))):
            raise ValueError(f"class labels must be integers in [0, {self.n_classes}), "
                             f"got values {np.unique(y)[:10]}")
        n = len(x)
        arch = self._architecture(y.shape[1])
        init, train, _ = _compiled(arch)
        key_init, key_train = jax.random.split(key)

        warm = (self.warm_start and self.state is not None
                and (self.restart_growth is None or n < self.restart_growth * self.state.n_at_cold_fit))
        if warm and y.shape[1] != self.state.y_mean.shape[0]:
            raise ValueError(f"fit got {y.shape[1]} outputs, the committee was fitted on "
                             f"{self.state.y_mean.shape[0]}")
        if warm:
            prior = self.state
            x_mean, x_scale, y_mean, y_scale = prior.x_mean, prior.x_scale, prior.y_mean, prior.y_scale
            params, opt_state, capacity = prior.params, prior.opt_state, prior.capacity
        else:
            x_mean, x_scale = np.float32(x.mean()), np.float32(x.std() + 1e-12)
            if classification:
                y_mean, y_scale = np.zeros(1, np.float32), np.ones(1, np.float32)
            else:
                y_mean, y_scale = y.mean(0), y.std(0) + 1e-6
            params, opt_state = init(key_init)
            capacity = self.capacity if self.state is None else self.state.capacity
        if n > capacity:
            new_capacity = bucket(n, 16)
            warnings.warn(f"training set of {n} images exceeds the committee capacity {capacity}; "
                          f"growing it to {new_capacity} (one recompilation). Set capacity >= the "
                          f"largest training set to avoid this.", stacklevel=2)
            capacity = new_capacity

        x_buf = np.zeros((capacity, self.n_pixels), np.float32)
        y_buf = np.zeros((capacity, y.shape[1]), np.float32)
        x_buf[:n] = (x - x_mean) / x_scale
        y_buf[:n] = y if classification else (y - y_mean) / y_scale
        steps = self.steps_warm if warm else self.cold_steps(n)
        peak_lr = self.warm_learning_rate if warm else self.learning_rate
        params, opt_state = train(params, opt_state, x_buf, y_buf, jnp.int32(n), jnp.int32(steps),
                                  jnp.float32(peak_lr), jnp.float32(self.final_learning_rate), key_train)
        fitted = _Fitted(params, opt_state, np.float32(x_mean), np.float32(x_scale),
                         np.asarray(y_mean, np.float32), np.asarray(y_scale, np.float32), capacity,
                         self.state.n_at_cold_fit if warm else n)
        return dataclasses.replace(self, state=fitted)

    def predict_members(self, x: np.ndarray) -> jax.Array:
        """Images x (n, H*W) -> (members, n, n_classes) probabilities or (members, n, n_outputs)."""
        if self.state is None:
            raise RuntimeError("predict_members called on a committee that was never fitted")
        s = self.state
        x = self._check_images(x, "predict_members")
        n = len(x)
        _, _, predict = _compiled(self._architecture(s.y_mean.shape[0]))
        chunk = min(bucket(n, 16), self.predict_chunk)
        parts = []
        for start in range(0, max(n, 1), chunk):
            block = x[start:start + chunk]
            padded = np.zeros((chunk, self.n_pixels), np.float32)
            padded[:len(block)] = block
            out = predict(s.params, padded, s.x_mean, s.x_scale, s.y_mean, s.y_scale)
            # Slice on the host: slicing the device array would compile once per n.
            parts.append(np.asarray(out)[:, :len(block)])
        return jax.device_put(np.concatenate(parts, axis=1))
