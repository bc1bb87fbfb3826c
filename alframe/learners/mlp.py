"""An ensemble of Flax MLPs trained together with optax.

Members differ by initialisation and by the minibatches they draw (optionally by a
bootstrap resample too). All members train in one jitted, vmapped loop over a
fixed-capacity buffer: the training set lives in the first `n` rows of the buffer and
`n` and the step count are traced values, so a growing data set never triggers a
recompilation. Predictions are padded to power-of-two batch sizes for the same reason.
"""

from __future__ import annotations

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

Activation = Literal["tanh", "relu", "gelu", "silu"]
_ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "gelu": jax.nn.gelu, "silu": jax.nn.silu}


class MLP(nnx.Module):
    """A plain multilayer perceptron: (n, n_inputs) -> (n, n_outputs)."""

    def __init__(self, n_inputs: int, n_outputs: int, hidden: Sequence[int], activation: str, *, rngs: nnx.Rngs):
        sizes = [n_inputs, *hidden]
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.head = nnx.Linear(sizes[-1], n_outputs, rngs=rngs)
        self.activation = activation

    def __call__(self, x: jax.Array) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        for layer in self.layers:
            x = act(layer(x))
        return self.head(x)


@dataclasses.dataclass(frozen=True)
class _Architecture:
    """Everything a compiled function depends on; hashable so compiled functions are shared."""

    n_inputs: int
    n_outputs: int
    hidden: tuple[int, ...]
    activation: str
    members: int
    classification: bool
    batch_size: int
    weight_decay: float
    bootstrap: bool


class _Fitted(NamedTuple):
    params: nnx.State  # leaves (members, ...)
    opt_state: optax.OptState
    x_mean: jax.Array  # (n_inputs,)
    x_scale: jax.Array  # (n_inputs,)
    y_mean: jax.Array  # (n_outputs,)
    y_scale: jax.Array  # (n_outputs,)
    capacity: int
    n_at_cold_fit: int  # training-set size at the last fit from scratch


def _build_model(arch: _Architecture, key: jax.Array) -> MLP:
    return MLP(arch.n_inputs, arch.n_outputs, arch.hidden, arch.activation, rngs=nnx.Rngs(params=key))


@functools.lru_cache(maxsize=None)
def _compiled(arch: _Architecture):
    """Build the jitted init, train and predict functions for one architecture."""
    graphdef = nnx.graphdef(_build_model(arch, jax.random.key(0)))
    tx = adam(arch.weight_decay)

    def member_loss(params, xb, yb):
        out = nnx.merge(graphdef, params)(xb)
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
        """x_buf (capacity, n_inputs), y_buf (capacity, n_outputs); rows >= n are ignored.

        n, steps and the learning rates are traced: changing them compiles nothing.
        """
        capacity = x_buf.shape[0]

        def one_member(p, o, k):
            k_boot, k_steps = jax.random.split(k)
            rows = (
                jax.random.randint(k_boot, (capacity,), 0, n)
                if arch.bootstrap
                else jnp.arange(capacity)
            )
            decay_steps = jnp.maximum(steps, 1).astype(jnp.float32)

            def step(i, carry):
                p, o = carry
                pick = jax.random.randint(jax.random.fold_in(k_steps, i), (arch.batch_size,), 0, n)
                idx = rows[pick]
                loss_grad = jax.grad(member_loss)(p, x_buf[idx], y_buf[idx])
                updates, o = tx.update(loss_grad, o, p)
                # Cosine decay within each fit: warm starts resume at full rate, then settle.
                frac = i.astype(jnp.float32) / decay_steps
                lr = final_lr + 0.5 * (peak_lr - final_lr) * (
                    1.0 + jnp.cos(jnp.pi * frac)
                )
                p = optax.apply_updates(p, jax.tree.map(lambda u: -lr * u, updates))
                return p, o

            return jax.lax.fori_loop(0, steps, step, (p, o))

        return jax.vmap(one_member)(params, opt_state, jax.random.split(key, arch.members))

    @jax.jit
    def predict(params, x, x_mean, x_scale, y_mean, y_scale):
        """x (bucket, n_inputs) raw -> (members, bucket, n_outputs) in output units."""
        z = (x - x_mean) / x_scale
        out = jax.vmap(lambda p: nnx.merge(graphdef, p)(z))(params)
        return jax.nn.softmax(out, axis=-1) if arch.classification else out * y_scale + y_mean

    return init, train, predict


@dataclasses.dataclass(frozen=True)
class MLPCommittee:
    """A committee of `members` MLPs, trained together.

    Args:
        members: committee size.
        hidden: hidden layer widths.
        activation: silu (default), gelu, tanh or relu. SiLU is smooth like tanh but does
            not saturate; on the 1-D potential its committees reach a given test error with
            fewer simulations (the README's peer benchmark).
        task: "regression" or "classification".
        n_classes: number of classes (classification only).
        learning_rate, final_learning_rate: cosine schedule within a fit from scratch.
        warm_learning_rate: where a warm-started fit's cosine schedule starts (it ends at
            `final_learning_rate` too); lower than `learning_rate` so that a refit does not
            throw the committee out of the minimum it is in.
        weight_decay: decoupled weight decay (0 for none).
        batch_size: minibatch size per member and step.
        steps_first: optimisation steps of a fit from scratch (at most; see the next two).
        steps_per_sample, steps_first_min: a fit from scratch on n points takes
            min(steps_first, max(steps_first_min, steps_per_sample * n)) steps: small data sets
            converge in fewer. None for steps_per_sample: always `steps_first`.
        steps_warm: steps of a warm-started fit (when `warm_start` and already fitted).
        warm_start: continue from the current parameters on refit.
        restart_growth: refit from scratch (`cold_steps(n)` steps) whenever the training set has
            grown by this factor since the last fit from scratch; warm starts alone get stuck
            in the basin found on the first few points. None never restarts.
        bootstrap: each member trains on its own bootstrap resample of the data.
        capacity: rows of the training buffer; set it to the budget so nothing recompiles.
            A larger data set doubles it (one recompilation, with a warning).

    `fit(x, y, key=...)` takes x (n, n_inputs) and y (n, n_outputs) or labels (n,);
    `predict_members(x)` returns (members, n, n_outputs) or (members, n, n_classes).
    """

    members: int = 5
    hidden: tuple[int, ...] = (64, 64, 64)
    activation: Activation = "silu"
    task: Literal["regression", "classification"] = "regression"
    n_classes: int | None = None
    learning_rate: float = 3e-3
    final_learning_rate: float = 1e-5
    warm_learning_rate: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    steps_first: int = 10000
    steps_per_sample: float | None = 16.0
    steps_first_min: int = 2000
    steps_warm: int = 300
    warm_start: bool = True
    restart_growth: float | None = 1.5
    bootstrap: bool = False
    capacity: int = 1024
    state: _Fitted | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.members < 1:
            raise ValueError(f"members must be >= 1, got {self.members}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} unknown; choose one of {sorted(_ACTIVATIONS)}")
        if self.task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {self.task!r}")
        if self.task == "classification" and (self.n_classes is None or self.n_classes < 2):
            raise ValueError(f"classification needs n_classes >= 2, got {self.n_classes}")
        for name in ("batch_size", "steps_first", "steps_first_min", "capacity"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.restart_growth is not None and self.restart_growth <= 1:
            raise ValueError(f"restart_growth must be > 1 or None, got {self.restart_growth}")
        if self.steps_per_sample is not None and not self.steps_per_sample > 0:
            raise ValueError(f"steps_per_sample must be > 0 or None, got {self.steps_per_sample}")
        if self.steps_warm < 0:
            raise ValueError(f"steps_warm must be >= 0, got {self.steps_warm}")

    def _architecture(self, n_inputs: int, n_outputs: int) -> _Architecture:
        return _Architecture(
            n_inputs=n_inputs,
            n_outputs=self.n_classes if self.task == "classification" else n_outputs,
            hidden=self.hidden,
            activation=self.activation,
            members=self.members,
            classification=self.task == "classification",
            batch_size=self.batch_size,
            weight_decay=float(self.weight_decay),
            bootstrap=self.bootstrap,
        )

    def cold_steps(self, n: int) -> int:
        """Optimisation steps of a fit from scratch on n points."""
        if self.steps_per_sample is None:
            return self.steps_first
        return int(min(self.steps_first, max(self.steps_first_min, round(self.steps_per_sample * n))))

    @property
    def is_fitted(self) -> bool:
        return self.state is not None

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "MLPCommittee":
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 1:
            y = y[:, None]
        if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
            raise ValueError(f"fit needs x (n, dim) and y (n, outputs) with n >= 1, got {x.shape} and {y.shape}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("fit received non-finite training data")
        classification = self.task == "classification"
        if classification and (np.any(y < 0) or np.any(y >= self.n_classes) or np.any(y != np.round(y))):
            raise ValueError(f"class labels must be integers in [0, {self.n_classes}), got values {np.unique(y)[:10]}")
        n = len(x)
        arch = self._architecture(x.shape[1], y.shape[1])
        init, train, _ = _compiled(arch)
        key_init, key_train = jax.random.split(key)

        warm = (
            self.warm_start
            and self.state is not None
            and (self.restart_growth is None or n < self.restart_growth * self.state.n_at_cold_fit)
        )
        if warm and x.shape[1] != self.state.x_mean.shape[0]:
            raise ValueError(f"fit got {x.shape[1]} inputs, the committee was fitted on {self.state.x_mean.shape[0]}")
        if warm:
            prior = self.state
            # numpy, not jax: a jax operand would compile the scaling anew for every n.
            x_mean, x_scale, y_mean, y_scale = (
                np.asarray(a) for a in (prior.x_mean, prior.x_scale, prior.y_mean, prior.y_scale)
            )
            params, opt_state, capacity = prior.params, prior.opt_state, prior.capacity
        else:
            x_mean, x_scale = x.mean(0), x.std(0) + 1e-6
            if classification:
                y_mean, y_scale = np.zeros(1, np.float32), np.ones(1, np.float32)
            else:
                y_mean, y_scale = y.mean(0), y.std(0) + 1e-6
            params, opt_state = init(key_init)
            capacity = self.capacity if self.state is None else self.state.capacity
        if n > capacity:
            new_capacity = bucket(n, 64)
            warnings.warn(
                f"training set of {n} exceeds the committee capacity {capacity}; growing it to "
                f"{new_capacity} (one recompilation). Set capacity >= the budget to avoid this.",
                stacklevel=2,
            )
            capacity = new_capacity

        x_buf = np.zeros((capacity, x.shape[1]), np.float32)
        y_buf = np.zeros((capacity, y.shape[1]), np.float32)
        x_buf[:n] = (x - x_mean) / x_scale
        y_buf[:n] = y if classification else (y - y_mean) / y_scale
        steps = self.steps_warm if warm else self.cold_steps(n)
        peak_lr = self.warm_learning_rate if warm else self.learning_rate
        params, opt_state = train(params, opt_state, x_buf, y_buf, jnp.int32(n), jnp.int32(steps),
                                  jnp.float32(peak_lr), jnp.float32(self.final_learning_rate), key_train)
        n_at_cold_fit = self.state.n_at_cold_fit if warm else n
        fitted = _Fitted(params, opt_state, jnp.asarray(x_mean), jnp.asarray(x_scale),
                         jnp.asarray(y_mean), jnp.asarray(y_scale), capacity, n_at_cold_fit)
        return dataclasses.replace(self, state=fitted)

    def predict_members(self, x: np.ndarray) -> jax.Array:
        if self.state is None:
            raise RuntimeError("predict_members called on a committee that was never fitted")
        s = self.state
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != s.x_mean.shape[0]:
            raise ValueError(f"predict_members needs x of shape (n, {s.x_mean.shape[0]}), got {x.shape}")
        n = len(x)
        n_outputs = s.y_mean.shape[0]
        arch = self._architecture(x.shape[1], n_outputs)
        _, _, predict = _compiled(arch)
        padded = np.zeros((bucket(n, 64), x.shape[1]), np.float32)
        padded[:n] = x
        out = predict(s.params, padded, s.x_mean, s.x_scale, s.y_mean, s.y_scale)
        # Slice on the host: slicing the device array would compile once per n.
        return jax.device_put(np.asarray(out)[:, :n])
