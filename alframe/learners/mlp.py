"""An ensemble of Flax MLPs trained together with optax.

Members differ by initialisation and by the minibatches they draw (optionally by a
bootstrap resample too). All members train in one jitted, vmapped loop over a
fixed-capacity buffer: the training set lives in the first `n` rows of the buffer and
`n` and the step count are traced values, so a growing data set never triggers a
recompilation. Predictions are padded to power-of-two batch sizes for the same reason.

With `early_stopping`, member m holds out fold m of the data (each row belongs to one fold,
fixed by a hash of its inputs, so a row stays held out across warm refits), checks its loss on
that fold every `eval_every` steps, stops once it has not improved for `patience` checks and
returns to its best parameters. The held-out predictions of all members together are one
cross-validated prediction of every training row (`held_out_predictions`), which is how
`AutoCommittee` compares the committee with other families at no extra cost.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from alframe.learners._shared import adam, bucket, row_folds

Activation = Literal["tanh", "relu", "gelu", "silu"]
_ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "gelu": jax.nn.gelu, "silu": jax.nn.silu}
Loss = Literal["mse", "huber"]
OutputTransform = Literal["none", "log", "asinh"]
_NO_PATIENCE = 2**30  # without early stopping every fit runs its full step count


def transform_outputs(y: np.ndarray, transform: str) -> np.ndarray:
    """y (n, k) in the simulator's units -> the units the members learn in."""
    if transform == "log":
        if np.any(y <= 0):
            raise ValueError(f"output_transform='log' needs positive outputs, got a minimum of {np.min(y):.4g}")
        return np.log(y)
    if transform == "asinh":
        return np.arcsinh(y)
    return y


def _untransform(z: jax.Array, transform: str) -> jax.Array:
    if transform == "log":
        return jnp.exp(z)
    if transform == "asinh":
        return jnp.sinh(z)
    return z


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
    loss: str = "mse"
    output_transform: str = "none"
    eval_every: int = 50
    early_stopping: bool = False  # static: without it, a fit is the plain loop, with no held-out checks


class _Fitted(NamedTuple):
    params: nnx.State  # leaves (members, ...)
    opt_state: optax.OptState
    x_mean: jax.Array  # (n_inputs,)
    x_scale: jax.Array  # (n_inputs,)
    y_mean: jax.Array  # (n_outputs,)
    y_scale: jax.Array  # (n_outputs,)
    capacity: int
    n_at_cold_fit: int  # training-set size at the last fit from scratch
    held_out: np.ndarray | None = None  # (n, n_outputs or n_classes) cross-validated predictions
    steps_run: np.ndarray | None = None  # (members,) steps each member ran in the last fit


def _build_model(arch: _Architecture, key: jax.Array) -> MLP:
    return MLP(arch.n_inputs, arch.n_outputs, arch.hidden, arch.activation, rngs=nnx.Rngs(params=key))


@functools.cache
def _members_apply(arch: _Architecture) -> Callable:
    predict = _compiled(arch)[2]
    return lambda args, x: predict(args[0], x, *args[1:])


@functools.lru_cache(maxsize=None)
def _compiled(arch: _Architecture):
    """Build the jitted init, train and predict functions for one architecture."""
    graphdef = nnx.graphdef(_build_model(arch, jax.random.key(0)))
    tx = adam(arch.weight_decay)

    def errors(out, yb):
        """Per-row loss (rows,) in standardised units."""
        if arch.classification:
            return optax.softmax_cross_entropy_with_integer_labels(out, yb[:, 0].astype(jnp.int32))
        r = out - yb
        if arch.loss == "huber":
            return optax.huber_loss(r, delta=1.0).mean(axis=-1)
        return jnp.mean(r**2, axis=-1)

    def member_loss(params, xb, yb):
        return errors(nnx.merge(graphdef, params)(xb), yb).mean()

    @jax.jit
    def init(key):
        keys = jax.random.split(key, arch.members)
        params = jax.vmap(lambda k: nnx.state(_build_model(arch, k), nnx.Param))(keys)
        return params, jax.vmap(tx.init)(params)

    @jax.jit
    def train(params, opt_state, x_buf, y_buf, rows, n_rows, held_out, steps, patience, peak_lr, final_lr, key):
        """x_buf (capacity, n_inputs), y_buf (capacity, n_outputs): the standardised data.

        rows (members, capacity) int32: member m draws its minibatches from rows[m, :n_rows[m]];
        held_out (members, capacity) float32: 1 on the rows member m is validated on, else 0.
        A member stops after `patience` checks without a better held-out loss and returns its
        best parameters; without held-out rows it runs all `steps` and returns the last ones.
        Shapes are fixed and the counts traced: changing them compiles nothing.
        """

        def one_member(p, o, k, member_rows, n_member, weights):
            _, k = jax.random.split(k)  # the first half drew the bootstrap rows (see `_member_rows`)
            decay_steps = jnp.maximum(steps, 1).astype(jnp.float32)
            validated = weights.sum() > 0

            def step(i, carry):
                p, o = carry
                pick = jax.random.randint(jax.random.fold_in(k, i), (arch.batch_size,), 0, n_member)
                idx = member_rows[pick]
                loss_grad = jax.grad(member_loss)(p, x_buf[idx], y_buf[idx])
                updates, o = tx.update(loss_grad, o, p)
                # Cosine decay within each fit: warm starts resume at full rate, then settle.
                frac = i.astype(jnp.float32) / decay_steps
                lr = final_lr + 0.5 * (peak_lr - final_lr) * (1.0 + jnp.cos(jnp.pi * frac))
                p = optax.apply_updates(p, jax.tree.map(lambda u: -lr * u, updates))
                return p, o

            def held_out_loss(p):
                per_row = errors(nnx.merge(graphdef, p)(x_buf), y_buf)
                return jnp.sum(per_row * weights) / jnp.maximum(weights.sum(), 1.0)

            def chunk(carry):
                p, o, best_p, best_loss, since_best, i = carry
                end = jnp.minimum(i + arch.eval_every, steps)
                p, o = jax.lax.fori_loop(i, end, step, (p, o))
                loss = held_out_loss(p)
                better = (loss < best_loss) | ~validated
                best_p = jax.tree.map(lambda new, old: jnp.where(better, new, old), p, best_p)
                return (p, o, best_p, jnp.where(better, loss, best_loss),
                        jnp.where(better, 0, since_best + 1), end)

            def going(carry):
                return (carry[5] < steps) & (carry[4] < patience)

            if not arch.early_stopping:
                return (*jax.lax.fori_loop(0, steps, step, (p, o)), steps)
            start = (p, o, p, jnp.where(validated, held_out_loss(p), jnp.inf), jnp.int32(0), jnp.int32(0))
            _, o, best_p, _, _, ran = jax.lax.while_loop(going, chunk, start)
            return best_p, o, ran

        keys = jax.random.split(key, arch.members)
        return jax.vmap(one_member)(params, opt_state, keys, rows, n_rows, held_out)

    @jax.jit
    def predict(params, x, x_mean, x_scale, y_mean, y_scale):
        """x (bucket, n_inputs) raw -> (members, bucket, n_outputs) in output units."""
        z = (x - x_mean) / x_scale
        out = jax.vmap(lambda p: nnx.merge(graphdef, p)(z))(params)
        if arch.classification:
            return jax.nn.softmax(out, axis=-1)
        return _untransform(out * y_scale + y_mean, arch.output_transform)

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
        bootstrap: each member trains on its own bootstrap resample of the data (of its
            training folds, with `early_stopping`).
        early_stopping: member m holds out fold m of `members` folds, stops when its held-out
            loss has not improved for `patience` checks (one every `eval_every` steps) and
            returns to its best parameters; `steps_first`/`steps_warm` are then upper bounds.
            Needs members >= 2.
        patience, eval_every: see `early_stopping`.
        loss: "mse" or "huber" (squared below one standard deviation of the outputs, linear
            above: a few huge outputs no longer dominate the fit).
        output_transform: "none", "log" (positive outputs spanning decades) or "asinh"
            (signed heavy tails); members learn the transformed outputs and predict in the
            simulator's units.
        output_clip: (low, high) bounds, either None, applied to the outputs before training.
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
    early_stopping: bool = False
    patience: int = 8
    eval_every: int = 50
    loss: Loss = "mse"
    output_transform: OutputTransform = "none"
    output_clip: tuple[float | None, float | None] | None = None
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
        if self.early_stopping and self.members < 2:
            raise ValueError("early_stopping holds out one fold per member and needs members >= 2")
        for name in ("patience", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.loss not in ("mse", "huber"):
            raise ValueError(f"loss must be 'mse' or 'huber', got {self.loss!r}")
        if self.output_transform not in ("none", "log", "asinh"):
            raise ValueError(f"output_transform must be 'none', 'log' or 'asinh', got {self.output_transform!r}")
        if self.output_clip is not None:
            object.__setattr__(self, "output_clip", tuple(self.output_clip))
            lo, hi = self.output_clip
            if lo is not None and hi is not None and not lo < hi:
                raise ValueError(f"output_clip needs low < high, got {self.output_clip}")

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
            loss=self.loss,
            output_transform="none" if self.task == "classification" else self.output_transform,
            eval_every=self.eval_every,
            early_stopping=self.early_stopping,
        )

    def _targets(self, y: np.ndarray) -> np.ndarray:
        """Regression outputs (n, k) clipped and transformed as the members learn them."""
        if self.output_clip is not None:
            lo, hi = self.output_clip
            y = np.clip(y, -np.inf if lo is None else lo, np.inf if hi is None else hi)
        return transform_outputs(y, self.output_transform).astype(np.float32)

    def _member_rows(self, x: np.ndarray, capacity: int, key: jax.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows (members, capacity) each member trains on (the first n_rows (members,) of them)
        and its held-out weights (members, capacity), for training data x (n, dim)."""
        n = len(x)
        rows = np.zeros((self.members, capacity), np.int32)
        n_rows = np.zeros(self.members, np.int32)
        held_out = np.zeros((self.members, capacity), np.float32)
        folds = row_folds(x, self.members) if self.early_stopping and n >= 2 * self.members else None
        keys = jax.random.split(key, self.members)
        for m in range(self.members):
            train_rows = np.arange(n) if folds is None else np.flatnonzero(folds != m)
            if folds is not None:
                held_out[m, np.flatnonzero(folds == m)] = 1.0
            if self.bootstrap:
                k_boot = jax.random.split(keys[m])[0]
                pick = np.asarray(jax.random.randint(k_boot, (capacity,), 0, len(train_rows)))
                rows[m] = train_rows[pick]
            else:
                rows[m, :len(train_rows)] = train_rows
            n_rows[m] = len(train_rows)
        return rows, n_rows, held_out

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
        if not classification:
            y = self._targets(y)
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
        rows, n_rows, held_out = self._member_rows(x, capacity, key_train)
        patience = self.patience if held_out.any() else _NO_PATIENCE
        params, opt_state, steps_run = train(
            params, opt_state, x_buf, y_buf, rows, n_rows, held_out, jnp.int32(steps), jnp.int32(patience),
            jnp.float32(peak_lr), jnp.float32(self.final_learning_rate), key_train)
        n_at_cold_fit = self.state.n_at_cold_fit if warm else n
        fitted = _Fitted(params, opt_state, jnp.asarray(x_mean), jnp.asarray(x_scale),
                         jnp.asarray(y_mean), jnp.asarray(y_scale), capacity, n_at_cold_fit,
                         steps_run=np.asarray(steps_run))
        committee = dataclasses.replace(self, state=fitted)
        if held_out.any():
            members = np.asarray(committee.predict_members(x))  # (members, n, width)
            own = held_out[:, :n].argmax(axis=0)  # the member that held each row out
            fitted = fitted._replace(held_out=members[own, np.arange(n)])
            committee = dataclasses.replace(self, state=fitted)
        return committee

    def held_out_predictions(self) -> np.ndarray:
        """Cross-validated predictions of the last fit's training rows, (n, n_outputs) values
        or (n, n_classes) probabilities: each row predicted by the member that held it out.
        Needs `early_stopping` and at least 2 * members rows."""
        if self.state is None or self.state.held_out is None:
            raise RuntimeError("held_out_predictions needs a committee fitted with early_stopping on >= 2 * members rows")
        return self.state.held_out

    def differentiable_members(self) -> tuple[Callable, tuple]:
        """(apply, args): apply(args, x (n, dim)) -> (members, n, n_outputs), a pure JAX function
        of the inputs (hashable, so a search compiled on it is reused), for gradient search."""
        if self.state is None:
            raise RuntimeError("differentiable_members needs a fitted committee")
        s = self.state
        arch = self._architecture(int(s.x_mean.shape[0]), int(s.y_mean.shape[0]))
        return _members_apply(arch), (s.params, s.x_mean, s.x_scale, s.y_mean, s.y_scale)

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
