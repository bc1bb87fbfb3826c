"""The trainer the neural committees share: every member of an ensemble fitted by one jitted,
vmapped program, and the bookkeeping around it.

A committee brings its network (a builder of one member), the member's loss and, when a fit is
more than a fixed number of steps, the loop that runs one member's steps (the MLP's early
stopping). This module brings the rest: data checks, the choice between a warm fit and a fit
from scratch, the standardisation of inputs and outputs, the training buffer, the minibatch
loop with its cosine learning rate, and padded predictions.

Nothing recompiles as the data grow. The training set lives in the first n rows of a buffer of
`capacity` rows, member m draws its minibatches from its own row list `rows[m, :n_rows[m]]`,
and n, the step count and the learning rates are traced values; a data set that outgrows the
buffer grows it to the next power of two (`bucket`), once. Predictions are padded to
power-of-two row counts for the same reason.
"""

from __future__ import annotations

import collections
import dataclasses
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from alframe.learners._shared import adam, bucket, standardisation

# Times the shared programs were traced, by name ("train", "predict"): a trace is a
# compilation, so tests and benchmarks read this to prove that growing data compiles nothing.
TRACES: collections.Counter = collections.Counter()

NO_PATIENCE = 2**30  # a patience no fit reaches: every member runs its full step count


class Fitted(NamedTuple):
    """A fitted ensemble: parameters, optimiser state, standardisation and buffer size."""

    params: nnx.State  # leaves (members, ...)
    opt_state: optax.OptState  # leaves (members, ...)
    x_mean: np.ndarray  # (n_inputs,) per input, or () for one statistic over all inputs; float64
    x_scale: np.ndarray  # as x_mean
    y_mean: np.ndarray  # (n_outputs,); zeros for classification
    y_scale: np.ndarray  # (n_outputs,); ones for classification
    capacity: int  # rows of the training buffer
    n_at_cold_fit: int  # training-set size at the last fit from scratch
    n_inputs: int  # width of the rows it was fitted on
    held_out: np.ndarray | None = None  # (n, width) cross-validated predictions, if the committee makes them
    steps_run: np.ndarray | None = None  # (members,) steps each member ran in the last fit


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How long and how fast a fit trains, and when it starts from scratch (see the
    committees' docstrings for each setting)."""

    learning_rate: float
    final_learning_rate: float
    warm_learning_rate: float
    steps_first: int
    steps_per_sample: float | None
    steps_first_min: int
    steps_warm: int
    warm_start: bool
    restart_growth: float | None

    @classmethod
    def of(cls, committee: Any) -> Schedule:
        """The schedule of a committee that has each setting as an attribute of the same name."""
        return cls(**{f.name: getattr(committee, f.name) for f in dataclasses.fields(cls)})

    def cold_steps(self, n: int) -> int:
        """Optimisation steps of a fit from scratch on n rows."""
        if self.steps_per_sample is None:
            return self.steps_first
        return int(min(self.steps_first, max(self.steps_first_min, round(self.steps_per_sample * n))))

    def continues(self, state: Fitted | None, n: int) -> bool:
        """Whether a fit on n rows warm-starts from `state` rather than starting from scratch."""
        return (self.warm_start and state is not None
                and (self.restart_growth is None or n < self.restart_growth * state.n_at_cold_fit))


def check_settings(committee: Any) -> None:
    """Refuse bad settings common to the ensemble committees: members, task, n_classes,
    batch_size, capacity and the `Schedule`."""
    if committee.members < 1:
        raise ValueError(f"members must be >= 1, got {committee.members}")
    if committee.task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {committee.task!r}")
    if committee.task == "classification" and (committee.n_classes is None or committee.n_classes < 2):
        raise ValueError(f"classification needs n_classes >= 2, got {committee.n_classes}")
    for name in ("batch_size", "steps_first", "steps_first_min", "capacity"):
        if getattr(committee, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(committee, name)}")
    if committee.restart_growth is not None and committee.restart_growth <= 1:
        raise ValueError(f"restart_growth must be > 1 or None, got {committee.restart_growth}")
    if committee.steps_per_sample is not None and not committee.steps_per_sample > 0:
        raise ValueError(f"steps_per_sample must be > 0 or None, got {committee.steps_per_sample}")
    if committee.steps_warm < 0:
        raise ValueError(f"steps_warm must be >= 0, got {committee.steps_warm}")


def checked_training_data(x: np.ndarray, y: np.ndarray, *, width: int | str, classification: bool,
                          n_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """x (n, width) and y (n, n_outputs), or labels (n,) or (n, 1), as float64 x (n, width) and
    y (n, n_outputs); refuses empty, mismatched or non-finite data and labels outside
    [0, n_classes). `width` names the row width in messages."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"fit needs x (n, {width}) and y (n, outputs) with n >= 1, got {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("fit received non-finite training data")
    if classification and (y.shape[1] != 1 or np.any(y < 0) or np.any(y >= n_classes) or np.any(y != np.round(y))):
        raise ValueError(f"class labels must be integers in [0, {n_classes}), got values {np.unique(y)[:10]}")
    return x, y


# -- the programs ---------------------------------------------------------------------------

class Network(NamedTuple):
    """One member's network: `build(key)` makes it, `apply(params, x, *args)` runs it."""

    build: Callable[[jax.Array], nnx.Module]
    graphdef: Any

    def apply(self, params: nnx.State, x: jax.Array, *args: Any) -> jax.Array:
        return nnx.merge(self.graphdef, params)(x, *args)


def network(build: Callable[[jax.Array], nnx.Module]) -> Network:
    """The `Network` that `build(key)` makes (its structure, from one instance)."""
    return Network(build, nnx.graphdef(build(jax.random.key(0))))


# (params, x (batch, width), y (batch, k), key or None) -> the member's mean loss
MemberLoss = Callable[[nnx.State, jax.Array, jax.Array, jax.Array | None], jax.Array]
# (step index, (params, opt_state)) -> (params, opt_state), for `jax.lax.fori_loop`
Step = Callable[[jax.Array, tuple], tuple]
# (step, params, opt_state, steps, x_buf, y_buf, held_out weights (capacity,), patience)
#   -> (params, opt_state, steps run)
MemberLoop = Callable[..., tuple]


def all_steps(step: Step, params, opt_state, steps, x_buf, y_buf, held_out, patience) -> tuple:
    """A `MemberLoop` that runs all `steps` and returns the last parameters."""
    return (*jax.lax.fori_loop(0, steps, step, (params, opt_state)), steps)


def cosine_rate(i: jax.Array, decay_steps: jax.Array, peak_lr: jax.Array, final_lr: jax.Array) -> jax.Array:
    """The learning rate at step i of a fit: cosine decay from peak_lr to final_lr over
    decay_steps, so a warm start resumes at its own peak and then settles."""
    frac = i.astype(jnp.float32) / decay_steps
    return final_lr + 0.5 * (peak_lr - final_lr) * (1.0 + jnp.cos(jnp.pi * frac))


class Programs(NamedTuple):
    """The jitted programs of one ensemble architecture.

    init(key) -> (params, opt_state), leaves (members, ...).
    train(params, opt_state, x_buf (capacity, width), y_buf (capacity, k), rows (members,
        capacity) int32, n_rows (members,) int32, held_out (members, capacity) float32, steps,
        patience, peak_lr, final_lr, key) -> (params, opt_state, steps_run (members,)).
    predict(params, z (rows, width) standardised inputs, y_mean, y_scale) -> (members, rows,
        n_outputs) in output units, or (members, rows, n_classes) probabilities. The inputs
        are standardised on the host, in float64 (see `standardised`).
    """

    members: int
    init: Callable
    train: Callable
    predict: Callable


def compile_programs(net: Network, *, members: int, loss: MemberLoss, weight_decay: float, batch_size: int,
                     classification: bool, loss_draws_key: bool = False,
                     forward: Callable[[nnx.State, jax.Array], jax.Array] | None = None,
                     untransform: Callable[[jax.Array], jax.Array] | None = None,
                     member_loop: MemberLoop = all_steps) -> Programs:
    """Build the jitted init, train and predict programs of an ensemble of `net`.

    Args:
        net: one member's network.
        members: ensemble size.
        loss: one member's loss on a minibatch of standardised rows; it gets a key of its own
            when `loss_draws_key` (dropout), else None.
        weight_decay, batch_size: Adam's decoupled weight decay; rows per member and step.
        classification: predict softmax probabilities rather than values.
        forward: (params, standardised x (rows, width)) -> outputs, for prediction; by default
            `net.apply`.
        untransform: maps predicted values back to the simulator's units (regression only).
        member_loop: runs one member's steps (see `MemberLoop`); by default all of them.
    """
    tx = adam(weight_decay)
    forward = net.apply if forward is None else forward

    @jax.jit
    def init(key):
        keys = jax.random.split(key, members)
        params = jax.vmap(lambda k: nnx.state(net.build(k), nnx.Param))(keys)
        return params, jax.vmap(tx.init)(params)

    @jax.jit
    def train(params, opt_state, x_buf, y_buf, rows, n_rows, held_out, steps, patience, peak_lr, final_lr, key):
        TRACES["train"] += 1

        def one_member(p, o, k, member_rows, n_member, weights):
            _, k = jax.random.split(k)  # the first half drew the bootstrap rows (see `member_rows`)
            decay_steps = jnp.maximum(steps, 1).astype(jnp.float32)

            def step(i, carry):
                p, o = carry
                step_key = jax.random.fold_in(k, i)
                # A loss that draws nothing leaves the step's key whole to the minibatch.
                k_pick, k_loss = jax.random.split(step_key) if loss_draws_key else (step_key, None)
                idx = member_rows[jax.random.randint(k_pick, (batch_size,), 0, n_member)]
                grads = jax.grad(loss)(p, x_buf[idx], y_buf[idx], k_loss)
                updates, o = tx.update(grads, o, p)
                lr = cosine_rate(i, decay_steps, peak_lr, final_lr)
                return optax.apply_updates(p, jax.tree.map(lambda u: -lr * u, updates)), o

            return member_loop(step, p, o, steps, x_buf, y_buf, weights, patience)

        keys = jax.random.split(key, members)
        return jax.vmap(one_member)(params, opt_state, keys, rows, n_rows, held_out)

    @jax.jit
    def predict(params, z, y_mean, y_scale):
        TRACES["predict"] += 1
        out = jax.vmap(lambda p: forward(p, z))(params)
        if classification:
            return jax.nn.softmax(out, axis=-1)
        out = out * y_scale + y_mean
        return out if untransform is None else untransform(out)

    return Programs(members, init, train, predict)


# -- fitting --------------------------------------------------------------------------------

def member_rows(n: int, members: int, capacity: int, key: jax.Array, *, bootstrap: bool,
                folds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which of n training rows each member trains on, and which it is validated on.

    Returns rows (members, capacity) int32 (member m draws from the first n_rows[m]),
    n_rows (members,) int32 and held_out (members, capacity) float32 weights. With folds
    (n,) in [0, members), member m holds out fold m; with `bootstrap`, it trains on a
    resample (of its training rows) drawn with the first half of its key.
    """
    rows = np.zeros((members, capacity), np.int32)
    n_rows = np.zeros(members, np.int32)
    held_out = np.zeros((members, capacity), np.float32)
    keys = jax.random.split(key, members)
    for m in range(members):
        train_rows = np.arange(n) if folds is None else np.flatnonzero(folds != m)
        if folds is not None:
            held_out[m, np.flatnonzero(folds == m)] = 1.0
        if bootstrap:
            k_boot = jax.random.split(keys[m])[0]
            pick = np.asarray(jax.random.randint(k_boot, (capacity,), 0, len(train_rows)))
            rows[m] = train_rows[pick]
        else:
            rows[m, :len(train_rows)] = train_rows
        n_rows[m] = len(train_rows)
    return rows, n_rows, held_out


def grown_capacity(n: int, capacity: int, *, minimum: int, rows_name: str) -> int:
    """The buffer rows a fit on n rows needs: `capacity`, or (with a warning, since it
    recompiles the programs) the next power of two >= n and >= minimum."""
    if n <= capacity:
        return capacity
    grown = bucket(n, minimum)
    warnings.warn(f"training set of {n}{rows_name} exceeds the committee capacity {capacity}; growing it to "
                  f"{grown} (one recompilation). Set capacity >= the largest training set (in a loop, the "
                  "budget) to avoid this.", stacklevel=4)
    return grown


def standardised(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(x - mean) / scale in float64, x (n, width): before the cast to float32, so that inputs
    far from zero (1e6 +- 1) or spanning a tiny range (1e-9) keep their resolution."""
    return (np.asarray(x, np.float64) - np.asarray(mean, np.float64)) / np.asarray(scale, np.float64)


def padded(rows: np.ndarray, capacity: int) -> np.ndarray:
    """rows (n, width) in the first n rows of a zero float32 buffer (capacity, width)."""
    buffer = np.zeros((capacity, rows.shape[1]), np.float32)
    buffer[:len(rows)] = rows
    return buffer


def fit_ensemble(programs: Programs, schedule: Schedule, state: Fitted | None, x: np.ndarray, y: np.ndarray,
                 key: jax.Array, *, capacity: int, min_capacity: int, classification: bool,
                 input_stats: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], bootstrap: bool = False,
                 folds: np.ndarray | None = None, patience: int = NO_PATIENCE, rows_name: str = "") -> Fitted:
    """Fit every member on x (n, width) and y (n, k) (labels (n, 1) for classification),
    warm-started from `state` where `schedule` says so, else from scratch.

    A fit from scratch standardises inputs by `input_stats(x)` -> (mean, scale) and values
    by their per-output mean and standard deviation; a warm fit keeps the standardisation it
    started from. `capacity` is the buffer size of a committee never fitted (later fits keep
    theirs unless the data outgrow it). `folds` and `bootstrap` choose each member's rows
    (see `member_rows`); `patience` is the member loop's.
    """
    n = len(x)
    key_init, key_train = jax.random.split(key)
    warm = schedule.continues(state, n)
    if warm and x.shape[1] != state.n_inputs:
        raise ValueError(f"fit got {x.shape[1]} inputs, the committee was fitted on {state.n_inputs}")
    if warm and y.shape[1] != state.y_mean.shape[0]:
        raise ValueError(f"fit got {y.shape[1]} outputs, the committee was fitted on {state.y_mean.shape[0]}")
    if warm:
        x_mean, x_scale, y_mean, y_scale = state.x_mean, state.x_scale, state.y_mean, state.y_scale
        params, opt_state = state.params, state.opt_state
    else:
        x_mean, x_scale = input_stats(x)
        if classification:
            y_mean, y_scale = np.zeros(1, np.float32), np.ones(1, np.float32)
        else:
            y_mean, y_scale = standardisation(y)
        params, opt_state = programs.init(key_init)
    capacity = grown_capacity(n, capacity if state is None else state.capacity, minimum=min_capacity,
                              rows_name=rows_name)
    x_buf = padded(standardised(x, x_mean, x_scale), capacity)
    y_buf = padded(y if classification else (y - y_mean) / y_scale, capacity)
    rows, n_rows, held_out = member_rows(n, programs.members, capacity, key_train, bootstrap=bootstrap, folds=folds)
    steps = schedule.steps_warm if warm else schedule.cold_steps(n)
    peak_lr = schedule.warm_learning_rate if warm else schedule.learning_rate
    params, opt_state, steps_run = programs.train(
        params, opt_state, x_buf, y_buf, rows, n_rows, held_out, jnp.int32(steps), jnp.int32(patience),
        jnp.float32(peak_lr), jnp.float32(schedule.final_learning_rate), key_train)
    as32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    as64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    return Fitted(params, opt_state, as64(x_mean), as64(x_scale), as32(y_mean), as32(y_scale), capacity,
                  state.n_at_cold_fit if warm else n, x.shape[1], steps_run=np.asarray(steps_run))


def predict_padded(programs: Programs, state: Fitted, x: np.ndarray, *, min_rows: int,
                   max_rows: int | None = None) -> jax.Array:
    """Every member's prediction on x (n, width): (members, n, n_outputs) values or
    (members, n, n_classes) probabilities. Rows go in padded blocks of a power of two (at
    least `min_rows`, at most `max_rows`), so a new n compiles nothing within its bucket."""
    n = len(x)
    block = bucket(n, min_rows) if max_rows is None else min(bucket(n, min_rows), max_rows)
    parts = []
    for start in range(0, max(n, 1), block):
        chunk = x[start:start + block]
        out = programs.predict(state.params, padded(standardised(chunk, state.x_mean, state.x_scale), block),
                               state.y_mean, state.y_scale)
        # Slice on the host: slicing the device array would compile once per n.
        parts.append(np.asarray(out)[:, :len(chunk)])
    return jax.device_put(np.concatenate(parts, axis=1))
