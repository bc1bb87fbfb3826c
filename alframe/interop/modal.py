"""modAL and alframe, both ways.

- `ModalQuery`: a modAL query strategy (`modAL.disagreement.max_std_sampling`,
  `vote_entropy_sampling`, `consensus_entropy_sampling`, `max_disagreement_sampling`,
  `modAL.uncertainty.uncertainty_sampling`, `margin_sampling`, `entropy_sampling`, or any
  function with modAL's signature `query(model, X, n_instances=1, **kwargs)`) is an alframe
  strategy: it sees the alframe committee through `ModalView`, modAL's committee interface.
- `ModalCommittee`: modAL learners (`modAL.models.ActiveLearner`s, or the learners of a modAL
  `Committee` / `CommitteeRegressor`) are the members of an alframe committee.
- `ModalPeer`: a modAL learner or committee running its own loop (`query`, `teach`) as an
  `alframe.interop.peer.Peer`, for benchmarks against modAL itself.

modAL 0.4.2.1 (its latest release) validates data in `ActiveLearner.fit` and `teach` with
scikit-learn's `check_X_y(..., force_all_finite=...)`; scikit-learn 1.6 renamed that argument
`ensure_all_finite` and 1.8 removed the old name, so every `teach` raises a TypeError there.
`patch_check_X_y()` gives modAL's learners module a `check_X_y` that passes the value on under
the new name; scikit-learn itself is left alone and no version is pinned. `ModalCommittee`
applies it before fitting; loops that call modAL's `teach` directly call it once first.

    >>> from modAL.disagreement import max_std_sampling
    >>> strategy = ModalQuery(max_std_sampling)                  # or "modAL.disagreement.max_std_sampling"
    >>> picks = strategy.select(committee, candidates, 10, key=jax.random.key(0))   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from alframe.learners.base import Committee
from alframe.learners.sklearn import training_data
from alframe.strategies.base import check_k, not_pending

Task = Literal["regression", "classification"]


class ModalQueryError(ValueError):
    """A modAL query function gave something other than `k` distinct candidate indices."""


def patch_check_X_y() -> bool:
    """Let modAL 0.4.2.1's learners validate data on scikit-learn >= 1.8.

    Replaces the name `check_X_y` inside `modAL.models.learners` (only there) with a function
    that renames `force_all_finite` to `ensure_all_finite`. Does nothing on a scikit-learn
    that still accepts `force_all_finite`. Idempotent; returns whether the shim is in place.
    """
    from modAL.models import learners
    from sklearn.utils import check_X_y

    if "force_all_finite" in inspect.signature(check_X_y).parameters:
        return False
    if getattr(learners.check_X_y, "alframe_shim", False):
        return True

    def check_X_y_renamed(*args: Any, force_all_finite: bool | str = True, **kwargs: Any):
        kwargs.setdefault("ensure_all_finite", force_all_finite)
        return check_X_y(*args, **kwargs)

    check_X_y_renamed.alframe_shim = True
    learners.check_X_y = check_X_y_renamed
    return True


@contextlib.contextmanager
def numpy_global_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for the block, then restore its state.

    modAL draws bootstrap rows and tie breaks from `np.random`; seeding it from the caller's
    key makes those draws reproducible without disturbing anyone else's use of it.
    """
    state = np.random.get_state()
    np.random.seed(int(seed) % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


def seed_from_key(key: jax.Array) -> int:
    """One integer seed in [0, 2^32) from a JAX key."""
    return int(np.asarray(jax.random.bits(key, (), dtype=jnp.uint32)))


def resolve_callable(spec: Callable | str) -> Callable:
    """`spec` itself, or the function a dotted path such as "modAL.disagreement.max_std_sampling" names."""
    if callable(spec):
        return spec
    module_name, _, attr = str(spec).rpartition(".")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"cannot import the query function {spec!r}") from None
    if not callable(fn):
        raise TypeError(f"{spec!r} is not callable")
    return fn


class _Member:
    """One member of a `ModalView`, for query functions that iterate over the committee."""

    def __init__(self, view: ModalView, index: int):
        self._view, self._index = view, index

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = self._view.members(x)[self._index]
        return out.argmax(axis=-1) if self._view.task == "classification" else out[:, 0] if out.shape[1] == 1 else out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self._view.members(x)[self._index]


class ModalView:
    """An alframe committee behind modAL's committee interface (read-only).

    For regression, modAL's `CommitteeRegressor` API: `predict(X, return_std=False)` gives the
    members' mean (n,) and, with `return_std`, their standard deviation (n,) (with several
    outputs, the root of the mean variance over outputs); `vote(X)` gives (n, members).
    For classification, modAL's `Committee` API: `predict_proba(X)` (n, n_classes),
    `vote_proba(X)` (n, members, n_classes), `vote(X)` (n, members) labels, `predict(X)` (n,),
    `classes_` and `n_classes_`. Iterating yields one object per member.

    Args:
        committee: a fitted alframe committee.
        task: "regression" or "classification".
        n_members: the committee's size (len(view)).
        cache: X (n, dim) and the committee's predictions on it (members, n, out), reused
            when a query function asks about that same X again.
    """

    def __init__(self, committee: Committee, task: Task, n_members: int,
                 cache: tuple[np.ndarray, np.ndarray] | None = None):
        if task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
        self.committee, self.task, self.n_members = committee, task, int(n_members)
        self._cache = cache
        self.classes_ = None
        if task == "classification" and cache is not None:
            self.classes_ = np.arange(cache[1].shape[-1])
        self.n_classes_ = 0 if self.classes_ is None else len(self.classes_)

    def members(self, x: np.ndarray) -> np.ndarray:
        """Member predictions (members, n, out) for x (n, dim), float64."""
        if self._cache is not None and x is self._cache[0]:
            return self._cache[1]
        return np.asarray(self.committee.predict_members(np.asarray(x)), dtype=np.float64)

    def __len__(self) -> int:
        return self.n_members

    def __iter__(self) -> Iterator[_Member]:
        return (_Member(self, i) for i in range(self.n_members))

    # -- regression (modAL CommitteeRegressor) ------------------------------------------

    def predict(self, x: np.ndarray, return_std: bool = False, **_: Any):
        members = self.members(x)
        if self.task == "classification":
            return members.mean(axis=0).argmax(axis=-1)
        mean = members.mean(axis=0)
        mean = mean[:, 0] if mean.shape[1] == 1 else mean
        if not return_std:
            return mean
        return mean, np.sqrt(members.var(axis=0).mean(axis=-1))

    def vote(self, x: np.ndarray, **_: Any) -> np.ndarray:
        members = self.members(x)
        if self.task == "classification":
            return members.argmax(axis=-1).T.astype(np.float64)
        return members.mean(axis=-1).T

    # -- classification (modAL Committee) -----------------------------------------------

    def predict_proba(self, x: np.ndarray, **_: Any) -> np.ndarray:
        return self.members(x).mean(axis=0)

    def vote_proba(self, x: np.ndarray, **_: Any) -> np.ndarray:
        return np.transpose(self.members(x), (1, 0, 2))


@dataclasses.dataclass(frozen=True)
class ModalQuery:
    """A modAL query strategy choosing among alframe candidates with an alframe committee.

    Args:
        query: a modAL query function, `query(model, X, n_instances=k, **options)` returning
            indices (k,) or (indices, scores), or its dotted import path.
        task: "regression" (the committee predicts values) or "classification" (class
            probabilities); decides which modAL interface the committee is shown through.
        options: further keyword arguments to the query function, e.g. `random_tie_break`.

    modAL's random choices (tie breaks) are drawn from numpy's global generator, seeded here
    from the `key`, so the same key gives the same picks.
    """

    query: Callable | str
    task: Task = "regression"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        resolve_callable(self.query)
        if self.task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {self.task!r}")

    @property
    def name(self) -> str:
        fn = resolve_callable(self.query)
        return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__name__', repr(fn))}"

    def select(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None, failed: np.ndarray | None = None) -> np.ndarray:
        available = np.flatnonzero(not_pending(candidates, pending))
        check_k(k, len(available))
        if k == 0:
            return np.empty(0, dtype=np.int64)
        pool = np.asarray(candidates, dtype=np.float64)[available]
        members = np.asarray(committee.predict_members(pool), dtype=np.float64)
        view = ModalView(committee, self.task, members.shape[0], cache=(pool, members))
        with numpy_global_seed(seed_from_key(key)):
            result = resolve_callable(self.query)(view, pool, n_instances=k, **dict(self.options))
        picked = np.asarray(result[0] if isinstance(result, tuple) else result).reshape(-1)
        if (len(picked) != k or not np.issubdtype(picked.dtype, np.integer)
                or len(np.unique(picked)) != k or picked.min() < 0 or picked.max() >= len(pool)):
            raise ModalQueryError(f"modAL query {self.name} returned {picked[:10].tolist()}; "
                                  f"expected {k} distinct indices into {len(pool)} candidates")
        return available[picked.astype(np.int64)]


def _member_seeds(key: jax.Array, n: int) -> np.ndarray:
    return np.asarray(jax.random.bits(key, (n,), dtype=jnp.uint32)).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class ModalCommittee:
    """modAL learners as the members of an alframe committee.

    Args:
        learners: modAL `ActiveLearner`s (anything with modAL's `fit(X, y, bootstrap=...)` and
            `predict` / `predict_proba`); each is copied at every fit, so the originals are
            never changed. `ModalCommittee.of(modal_committee)` takes a modAL `Committee` or
            `CommitteeRegressor`'s learners.
        task: "regression" or "classification".
        n_classes: number of classes (classification only).
        bootstrap: each member fits a bootstrap resample of the data (modAL's bagging).

    Each member's estimator gets `random_state` (where it has one) and modAL's bootstrap gets
    numpy's global seed from the key, so the same key and data give the same committee.
    `fit(x, y, key=...)` takes x (n, dim), y (n, n_outputs) or labels (n,);
    `predict_members(x)` returns (members, n, n_outputs) values or (members, n, n_classes)
    probabilities, float32.
    """

    learners: Sequence[Any]
    task: Task = "regression"
    n_classes: int | None = None
    bootstrap: bool = False
    fitted: tuple[Any, ...] = dataclasses.field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "learners", tuple(self.learners))
        if not self.learners:
            raise ValueError("a ModalCommittee needs at least one learner")
        if self.task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {self.task!r}")
        if self.task == "classification" and (self.n_classes is None or self.n_classes < 2):
            raise ValueError(f"classification needs n_classes >= 2, got {self.n_classes}")

    @classmethod
    def of(cls, modal_committee: Any, **kwargs: Any) -> ModalCommittee:
        """The learners of a modAL `Committee` or `CommitteeRegressor` as an alframe committee."""
        return cls(learners=tuple(modal_committee.learner_list), **kwargs)

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> ModalCommittee:
        patch_check_X_y()
        x, y = training_data(x, y, self.task, self.n_classes)
        fitted = []
        for learner, seed in zip(self.learners, _member_seeds(key, len(self.learners))):
            member = copy.deepcopy(learner)
            estimator = getattr(member, "estimator", None)
            if estimator is not None and "random_state" in estimator.get_params(deep=False):
                estimator.set_params(random_state=int(seed))
            with numpy_global_seed(int(seed)):
                member.fit(x, y, bootstrap=self.bootstrap)
            fitted.append(member)
        return dataclasses.replace(self, fitted=tuple(fitted))

    def predict_members(self, x: np.ndarray) -> jax.Array:
        if not self.fitted:
            raise RuntimeError("predict_members called on a committee that was never fitted")
        n_classes = self.n_classes if self.task == "classification" else None
        return jnp.asarray(learner_predictions(self.fitted, x, n_classes), dtype=jnp.float32)


def learner_predictions(learners: Sequence[Any], x: np.ndarray, n_classes: int | None) -> np.ndarray:
    """Each fitted modAL learner's prediction on x (n, dim), float64: values (learners, n,
    n_outputs), or with `n_classes` probabilities (learners, n, n_classes), zero for a class
    a learner never saw."""
    x = np.asarray(x, dtype=np.float64)
    out = []
    for learner in learners:
        if n_classes is not None:
            probs = np.zeros((len(x), n_classes))
            classes = np.asarray(learner.estimator.classes_).astype(np.int64)
            if len(x):
                probs[:, classes] = learner.predict_proba(x)
            out.append(probs)
        else:
            out.append(np.asarray(learner.predict(x), dtype=np.float64).reshape(len(x), -1))
    return np.stack(out)


def modal_targets(y: np.ndarray, classification: bool) -> np.ndarray:
    """Outcome values (n, 1) as modAL's learners take them: labels (n,) int or values (n,)."""
    y = np.asarray(y)
    return y[:, 0].astype(np.int64) if classification else y[:, 0]


def warm_start_kernel(estimator: Any) -> None:
    """Start a fitted Gaussian process's next hyperparameter search from its last optimum.

    From scratch, scikit-learn's search takes ~10x longer at a thousand points (about 120
    likelihood evaluations instead of ~13) and ends at the same hyperparameters: without
    this, a GP peer could not run a budget of 1,000 on two cores.
    """
    if hasattr(estimator, "kernel_"):
        estimator.set_params(kernel=estimator.kernel_)


class ModalPeer:
    """A modAL `ActiveLearner`, `Committee` or `CommitteeRegressor` running its own loop, as an
    `alframe.interop.peer.Peer`: `ask` is its `query` on the candidates, `tell` its `teach`.

    Args:
        model: the modAL learner or committee, fitted on the initial runs.
        bootstrap: `teach` refits each learner on a bootstrap resample (modAL's bagging).
        classes: number of classes (classification), or None (regression).

    modAL's learners module must validate with this scikit-learn (`patch_check_X_y`).
    """

    def __init__(self, model: Any, *, bootstrap: bool, classes: int | None):
        self.model, self.bootstrap, self.classes = model, bootstrap, classes

    def _learners(self) -> list[Any]:
        return list(getattr(self.model, "learner_list", [self.model]))

    def tell(self, x: np.ndarray, y: np.ndarray) -> None:
        if len(x):
            for learner in self._learners():
                warm_start_kernel(learner.estimator)
            self.model.teach(x, modal_targets(y, self.classes is not None), bootstrap=self.bootstrap)

    def ask(self, k: int, candidates: np.ndarray) -> np.ndarray:
        picked, _ = self.model.query(candidates, n_instances=k)
        return candidates[np.asarray(picked).reshape(-1)]

    def members(self, x: np.ndarray) -> np.ndarray:
        return learner_predictions(self._learners(), x, self.classes or None)
