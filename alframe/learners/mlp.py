"""An ensemble of Flax MLPs trained together with optax.

Members differ by initialisation and by the minibatches they draw (optionally by a
bootstrap resample too). All members train in one jitted, vmapped loop over a
fixed-capacity buffer (`alframe.learners.ensemble`, shared with the CNN committee), so a
growing data set never triggers a recompilation.

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
from collections.abc import Callable, Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from alframe.learners import ensemble
from alframe.learners._shared import row_folds, standardisation

Activation = Literal["tanh", "relu", "gelu", "silu"]
_ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "gelu": jax.nn.gelu, "silu": jax.nn.silu}
Loss = Literal["mse", "huber"]
OutputTransform = Literal["none", "log", "asinh"]


def transform_outputs(y: np.ndarray, transform: str) -> np.ndarray:
    """y (n, k) in the simulator's units -> the units the members learn in."""
    if transform == "log":
        if np.any(y <= 0):
            raise ValueError(f"output_transform='log' needs positive outputs, got a minimum of {np.min(y):.4g}")
        return np.log(y)
    if transform == "asinh":
        return np.arcsinh(y)
    return y


TRANSFORMED_MARGIN = 0.05
"""How far beyond its training range (a share of that range, in the learnt units) an MLP that
learns transformed outputs may predict (see `MLPCommittee.bounds`)."""


def untransform_outputs(z: jax.Array, transform: str) -> jax.Array:
    """The inverse of `transform_outputs`: learnt units (..., k) -> the simulator's units."""
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


def row_errors(out: jax.Array, y: jax.Array, *, classification: bool, loss: str) -> jax.Array:
    """Per-row loss (rows,) of outputs (rows, width) against standardised targets (rows, k)
    or labels (rows, 1)."""
    if classification:
        return optax.softmax_cross_entropy_with_integer_labels(out, y[:, 0].astype(jnp.int32))
    r = out - y
    if loss == "huber":
        return optax.huber_loss(r, delta=1.0).mean(axis=-1)
    return jnp.mean(r**2, axis=-1)


def early_stopping_loop(apply: Callable, errors: Callable, eval_every: int) -> ensemble.MemberLoop:
    """A member loop that checks the held-out loss every `eval_every` steps, stops after
    `patience` checks without a better one and returns the best parameters; a member with no
    held-out rows runs all its steps and returns the last ones."""

    def loop(step, p, o, steps, x_buf, y_buf, weights, patience):
        validated = weights.sum() > 0

        def held_out_loss(p):
            per_row = errors(apply(p, x_buf), y_buf)
            return jnp.sum(per_row * weights) / jnp.maximum(weights.sum(), 1.0)

        def chunk(carry):
            p, o, best_p, best_loss, since_best, i = carry
            end = jnp.minimum(i + eval_every, steps)
            p, o = jax.lax.fori_loop(i, end, step, (p, o))
            loss = held_out_loss(p)
            better = (loss < best_loss) | ~validated
            best_p = jax.tree.map(lambda new, old: jnp.where(better, new, old), p, best_p)
            return (p, o, best_p, jnp.where(better, loss, best_loss),
                    jnp.where(better, 0, since_best + 1), end)

        def going(carry):
            return (carry[5] < steps) & (carry[4] < patience)

        start = (p, o, p, jnp.where(validated, held_out_loss(p), jnp.inf), jnp.int32(0), jnp.int32(0))
        _, o, best_p, _, _, ran = jax.lax.while_loop(going, chunk, start)
        return best_p, o, ran

    return loop


@functools.cache
def _programs(arch: _Architecture) -> ensemble.Programs:
    """The jitted programs of one MLP architecture, shared by every committee that has it."""
    net = ensemble.network(
        lambda key: MLP(arch.n_inputs, arch.n_outputs, arch.hidden, arch.activation, rngs=nnx.Rngs(params=key)))
    errors = functools.partial(row_errors, classification=arch.classification, loss=arch.loss)

    def member_loss(params, xb, yb, _key):
        return errors(net.apply(params, xb), yb).mean()

    return ensemble.compile_programs(
        net, members=arch.members, loss=member_loss, weight_decay=arch.weight_decay, batch_size=arch.batch_size,
        classification=arch.classification,
        untransform=functools.partial(untransform_outputs, transform=arch.output_transform),
        member_loop=early_stopping_loop(net.apply, errors, arch.eval_every) if arch.early_stopping
        else ensemble.all_steps)


@functools.cache
def _members_apply(arch: _Architecture) -> Callable:
    predict = _programs(arch).predict
    # Traced inputs: the standardisation runs in float32 here, which a search tolerates.
    return lambda args, x: predict(args[0], (x - args[1]) / args[2], *args[3:])


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
    state: ensemble.Fitted | None = dataclasses.field(default=None, repr=False, compare=False)
    # (low, high), each (n_outputs,), in the simulator's units: where transformed outputs are
    # learnt, predictions stay within the training range (in the learnt units) widened by
    # TRANSFORMED_MARGIN of it, since exp and sinh turn a modest extrapolation into a huge value.
    bounds: tuple[np.ndarray, np.ndarray] | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        ensemble.check_settings(self)
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} unknown; choose one of {sorted(_ACTIVATIONS)}")
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
        return transform_outputs(y, self.output_transform)

    def cold_steps(self, n: int) -> int:
        """Optimisation steps of a fit from scratch on n points."""
        return ensemble.Schedule.of(self).cold_steps(n)

    @property
    def is_fitted(self) -> bool:
        return self.state is not None

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "MLPCommittee":
        classification = self.task == "classification"
        x, y = ensemble.checked_training_data(x, y, width="dim", classification=classification,
                                              n_classes=self.n_classes)
        if not classification:
            y = self._targets(y)
        n = len(x)
        # A row's fold follows from its inputs, so it stays held out by the same member across refits;
        # hashed at float32, so that every run stored so far keeps the folds it was trained with.
        early = self.early_stopping and n >= 2 * self.members
        folds = row_folds(x.astype(np.float32), self.members) if early else None
        fitted = ensemble.fit_ensemble(
            _programs(self._architecture(x.shape[1], y.shape[1])), ensemble.Schedule.of(self), self.state, x, y, key,
            capacity=self.capacity, min_capacity=64, classification=classification, input_stats=standardisation,
            bootstrap=self.bootstrap, folds=folds, patience=ensemble.NO_PATIENCE if folds is None else self.patience)
        committee = dataclasses.replace(self, state=fitted, bounds=None if classification else self._bounds(y))
        if folds is not None:
            members = np.asarray(committee.predict_members(x))  # (members, n, width)
            committee = dataclasses.replace(committee, state=fitted._replace(held_out=members[folds, np.arange(n)]))
        return committee

    def _bounds(self, learnt: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Prediction bounds (see `bounds`) from the training outputs in the learnt units, (n, k)."""
        if self.output_transform == "none":
            return None
        low, high = learnt.min(axis=0), learnt.max(axis=0)
        margin = TRANSFORMED_MARGIN * (high - low)
        inverse = {"log": np.exp, "asinh": np.sinh}[self.output_transform]
        return inverse(low - margin), inverse(high + margin)

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
        arch = self._architecture(s.n_inputs, int(s.y_mean.shape[0]))
        return _members_apply(arch), (s.params, s.x_mean, s.x_scale, s.y_mean, s.y_scale)

    def predict_members(self, x: np.ndarray) -> jax.Array:
        if self.state is None:
            raise RuntimeError("predict_members called on a committee that was never fitted")
        s = self.state
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != s.n_inputs:
            raise ValueError(f"predict_members needs x of shape (n, {s.n_inputs}), got {x.shape}")
        programs = _programs(self._architecture(s.n_inputs, int(s.y_mean.shape[0])))
        members = ensemble.predict_padded(programs, s, x, min_rows=64)
        if self.bounds is None:
            return members
        return jnp.clip(members, *(jnp.asarray(b, members.dtype) for b in self.bounds))
