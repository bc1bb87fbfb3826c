"""Another library's active-learning loop, driven one batch at a time through alframe's core.

A `Peer` is the other library's loop: it learns from runs (`tell`), chooses the next queries
(`ask`) and predicts with its own model (`members`). `PeerCommittee` and `PeerStrategy` put
those behind alframe's committee and strategy protocols, so that an
`alframe.active_learner.ActiveLearner` drives the peer (the same candidates, budget, rounds
and metrics as alframe's own runs) and an `alframe.recorder.Recorder` writes its runs like
any other.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import jax
import numpy as np

from alframe.strategies.selection import Selection


def as_column(y: np.ndarray) -> np.ndarray:
    """Values (n,) or (n, k) as float64 (n, k)."""
    return np.asarray(y, dtype=np.float64).reshape(len(y), -1)


class Peer(Protocol):
    """A peer's own loop, driven one batch at a time."""

    def tell(self, x: np.ndarray, y: np.ndarray) -> None:
        """Learn from new runs x (n, dim), y (n, n_outputs) (labels (n, 1) for classification)."""

    def ask(self, k: int, candidates: np.ndarray) -> np.ndarray:
        """The next `k` queries (k, dim); pool-based peers pick rows of `candidates` (n, dim)."""

    def members(self, x: np.ndarray) -> np.ndarray:
        """Member predictions (members, m, n_outputs) or probabilities (members, m, n_classes)."""


class PeerFailed(RuntimeError):
    """The peer raised while learning; the message (`failure_reason`) says what and where."""


def failure_reason(exc: BaseException) -> str:
    """A one-line stop reason for a peer that raised `exc`: its type, message and the line."""
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return f"peer failed: {type(exc).__name__}: {exc} ({Path(frame.filename).name}:{frame.lineno})".replace("\n", " ")


class SeededPeer:
    """A peer whose `tell` and `ask` run with numpy's global generator seeded per call (modAL
    and emukit draw their bootstrap rows, tie breaks and anchor points from it), so the same
    seed and calls give the same queries."""

    def __init__(self, peer: Peer, seed: int):
        self.peer, self.seed, self.calls = peer, seed, 0

    def _call(self, name: str, *args: Any) -> Any:
        from alframe.interop.modal import numpy_global_seed

        self.calls += 1
        with numpy_global_seed(self.seed * 100_003 + self.calls):
            return getattr(self.peer, name)(*args)

    def tell(self, x: np.ndarray, y: np.ndarray) -> None:
        return self._call("tell", x, y)

    def ask(self, k: int, candidates: np.ndarray) -> np.ndarray:
        return self._call("ask", k, candidates)

    def members(self, x: np.ndarray) -> np.ndarray:
        return self.peer.members(x)


class PeerCommittee:
    """A peer's model as an alframe committee.

    The first `fit` starts the peer on the runs so far (`start(x, y)` returns the peer, x
    (n, dim), y (n, n_outputs)); each later fit tells it only the rows it has not seen, since
    the successful runs an `ActiveLearner` fits on only ever grow at the end. Unlike alframe's
    committees, a peer learns in place: `fit` returns the receiver, changed, so one committee
    belongs to one run. A peer that raises raises `PeerFailed`.

    `predict_members(x)`: the peer's member predictions, (members, m, n_outputs) values or
    (members, m, n_classes) probabilities.
    """

    def __init__(self, start: Callable[[np.ndarray, np.ndarray], Peer]):
        self.start = start
        self.peer: Peer | None = None
        self.n_told = 0

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> PeerCommittee:
        try:
            if self.peer is None:
                self.peer = self.start(x, y)
            else:
                self.peer.tell(x[self.n_told:], y[self.n_told:])
        except Exception as exc:  # noqa: BLE001 - a peer's failure is a result too
            raise PeerFailed(failure_reason(exc)) from exc
        self.n_told = len(x)
        return self

    def predict_members(self, x: np.ndarray) -> np.ndarray:
        if self.peer is None:
            raise RuntimeError("predict_members called on a peer that was never started")
        return self.peer.members(x)


class PeerStrategy:
    """A peer's own choice of queries as an alframe strategy, for a `PeerCommittee`.

    `select` asks the committee's peer for k queries: pool-based peers pick rows of the
    candidates, others choose anywhere in the space. A peer that raises, or chooses nothing,
    ends the run: the Selection is empty and its stop reason says why.
    """

    def select(self, committee: PeerCommittee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None, failed: np.ndarray | None = None) -> Selection:
        dim = candidates.shape[1]
        try:
            points = np.asarray(committee.peer.ask(k, candidates), dtype=np.float64).reshape(-1, dim)
        except Exception as exc:  # noqa: BLE001 - a peer's failure is a result too
            return Selection.stop(dim, failure_reason(exc))
        return Selection(points) if len(points) else Selection.stop(dim, "the peer chose no queries")
