"""MOCCA models as a pool oracle: a table lookup stands in for a simulation that takes days.

The models are a `Pool`; running a query reveals the label of the model with exactly those
features, at a notional cost per model. A stratified share of the models is held out (never in
the pool) to score the committee; the split is a pure function of the table, the held-out
fraction and the split seed, so the oracle (`make_oracle`) and its test set (`held_out_set`)
built from the same settings agree.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from alframe.oracle import Outcome, OutputSpec
from alframe.space import Pool
from simulators.mocca.data import (
    BHS_THRESHOLD,
    CLASSES,
    DEFAULT_SHA256,
    DEFAULT_URL,
    MoccaTable,
    RelaxationTime,
    load_models,
)

SECONDS_PER_DAY = 86400.0


@dataclasses.dataclass(frozen=True, eq=False)
class PoolOracle:
    """Labels of a finite set of candidates, revealed on demand.

    Args:
        space: the candidates, a `Pool` of shape (n, dim).
        labels: (n,) integer labels, row-aligned with `space.values`.
        outputs: the label's OutputSpec (classification).
        cost_per_run_s: the notional cost of one run, reported as each run's `cost_s`.

    A query that is not a row of the pool fails with an error naming it; it is not labelled.
    """

    space: Pool
    labels: np.ndarray
    outputs: OutputSpec
    cost_per_run_s: float = 0.0

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(labels) != len(self.space):
            raise ValueError(f"PoolOracle has {len(self.space)} candidates but {len(labels)} labels")
        n_classes = len(self.outputs.classes or ())
        if self.outputs.task != "classification" or np.any((labels < 0) | (labels >= n_classes)):
            raise ValueError(f"PoolOracle labels must be classes 0..{n_classes - 1} of a classification OutputSpec")
        labels.setflags(write=False)
        object.__setattr__(self, "labels", labels)

    def run(self, queries: np.ndarray) -> Outcome:
        """Labels of `queries` (n, dim) as Outcome.y (n, 1); queries outside the pool fail."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        if queries.shape[1] != self.space.dim:
            raise ValueError(f"queries have {queries.shape[1]} columns, "
                             f"the pool {list(self.space.names)} has {self.space.dim}")
        rows = self.space.index_of(queries)
        found = rows >= 0
        y = np.where(found, self.labels[np.where(found, rows, 0)], np.nan).astype(np.float64)[:, None]
        error = np.array(["" if ok else f"not a model of the pool: {q.tolist()}" for ok, q in zip(found, queries)],
                         dtype=object)
        return Outcome(y, found, error, np.full(len(queries), float(self.cost_per_run_s)))


def stratified_split(labels: np.ndarray, held_out_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split rows into (kept (n - m,), held_out (m,)) sorted row numbers, stratified by label.

    Each class contributes round(fraction x its size) rows to the held-out part, at least
    one while the class has two or more rows, chosen by `np.random.default_rng(seed)`.
    """
    if not 0.0 < held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction}")
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    held_out = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        # Both parts keep every class that has two rows or more.
        n = min(max(int(round(held_out_fraction * len(rows))), 1), len(rows) - 1) if len(rows) >= 2 else 0
        held_out.append(rng.permutation(rows)[:n])
    held_out = np.sort(np.concatenate(held_out)).astype(np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_out).astype(np.int64)
    return kept, held_out


def split_table(table: MoccaTable, held_out_fraction: float, seed: int) -> tuple[MoccaTable, MoccaTable]:
    """(pool models, held-out models) of `table`, stratified by label (see `stratified_split`)."""
    kept, held_out = stratified_split(table.labels, held_out_fraction, seed)
    return table.take(kept), table.take(held_out)


def output_spec() -> OutputSpec:
    """The label: class 0 `no_bhs`, class 1 `bhs`."""
    return OutputSpec(names=("bhs",), task="classification", classes=CLASSES)


def _settings_table(path, url, sha256, relaxation_time, bhs_threshold, fallback_only,
                    velocity_dispersion) -> MoccaTable:
    return load_models(path, url=url, sha256=sha256, relaxation_time=relaxation_time, bhs_threshold=bhs_threshold,
                       fallback_only=fallback_only, velocity_dispersion=velocity_dispersion)


def make_oracle(
    path: str | Path | None = None,
    *,
    url: str = DEFAULT_URL,
    sha256: str = DEFAULT_SHA256,
    relaxation_time: RelaxationTime = "harris",
    bhs_threshold: float = BHS_THRESHOLD,
    fallback_only: bool = False,
    velocity_dispersion: bool = True,
    held_out_fraction: float = 0.3,
    split_seed: int = 0,
    cost_per_model_days: float = 3.0,
) -> PoolOracle:
    """The MOCCA pool oracle: every model not held out, labelled on demand.

    Loader settings as for `simulators.mocca.load_models`; `held_out_fraction` and
    `split_seed` fix the held-out models (see `held_out_set`); `cost_per_model_days` is the
    notional cost of one MOCCA model, reported in seconds.
    """
    table = _settings_table(path, url, sha256, relaxation_time, bhs_threshold, fallback_only, velocity_dispersion)
    pool, _ = split_table(table, held_out_fraction, split_seed)
    return PoolOracle(
        space=Pool(names=pool.names, values=pool.features, ids=pool.ids),
        labels=pool.labels,
        outputs=output_spec(),
        cost_per_run_s=cost_per_model_days * SECONDS_PER_DAY,
    )


def held_out_set(
    path: str | Path | None = None,
    *,
    url: str = DEFAULT_URL,
    sha256: str = DEFAULT_SHA256,
    relaxation_time: RelaxationTime = "harris",
    bhs_threshold: float = BHS_THRESHOLD,
    fallback_only: bool = False,
    velocity_dispersion: bool = True,
    held_out_fraction: float = 0.3,
    split_seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The held-out models kept out of `make_oracle`'s pool with the same settings.

    Returns x (m, n_features) float64 and labels (m,) int64.
    """
    table = _settings_table(path, url, sha256, relaxation_time, bhs_threshold, fallback_only, velocity_dispersion)
    _, held_out = split_table(table, held_out_fraction, split_seed)
    return held_out.features, held_out.labels
